#if Vapor
import SessionStore
import Synchronization
import Vapor

/// What the driver loaded for one request: the store's session and the string view of it
/// handed to Vapor, against which Vapor's data is compared to find what the request changed.
final class SessionStoreState: Sendable {
    struct Content: Sendable {
        var session: StoreSession
        /// The attributes Vapor was given (those holding strings), as last synchronised.
        var snapshot: [String: String]
        /// Set once the session was destroyed through ``TypedSession/destroy()``.
        var destroyedID: String?
    }

    let store: SessionStore
    let content: Mutex<Content>

    init(store: SessionStore, session: StoreSession) {
        self.store = store
        self.content = Mutex(Content(session: session, snapshot: Self.strings(of: session)))
    }

    /// The current id's text.
    var id: String { content.withLock { $0.session.id.text } }

    /// The session's string-valued attributes: Vapor's view of it.
    func vaporSnapshot() -> [String: String] {
        content.withLock { $0.snapshot }
    }

    /// Applies the changes Vapor's data shows against the snapshot to the store's session.
    /// - Throws: ``SessionStoreAbort`` for an invalid attribute name (nothing applied).
    func synchronize(vaporData data: [String: String]) throws {
        try content.withLock { content in
            guard data != content.snapshot else { return }
            var session = content.session
            for (key, value) in data where content.snapshot[key] != value {
                do {
                    try session.set(key, value)
                } catch {
                    throw SessionStoreAbort(error)
                }
            }
            for key in content.snapshot.keys where data[key] == nil {
                session.remove(key)
            }
            content.session = session
            content.snapshot = data
        }
    }

    /// Runs a store operation on a copy of the session and keeps the result.
    func withSession<T>(
        _ body: (inout StoreSession) async throws -> T
    ) async throws -> T {
        var session = content.withLock { $0.session }
        let result: T
        do {
            result = try await body(&session)
        } catch let error as SessionStoreAbort {
            throw error
        } catch {
            throw SessionStoreAbort(error)
        }
        content.withLock { content in
            content.session = session
            content.snapshot = Self.strings(of: session)
        }
        return result
    }

    /// Changes the session in place (no I/O) and refreshes Vapor's view of it.
    func change<T>(_ body: (inout StoreSession) throws -> T) throws -> T {
        try content.withLock { content in
            var session = content.session
            let result: T
            do {
                result = try body(&session)
            } catch {
                throw SessionStoreAbort(error)
            }
            content.session = session
            content.snapshot = Self.strings(of: session)
            return result
        }
    }

    /// Saves the request's changes (Vapor's data included) and returns the id for the cookie.
    /// - Throws: ``SessionStoreAbort`` (409 when the session ended while this request
    ///   changed it; nothing was written).
    func save(vaporData data: [String: String], request: Request) async throws -> String {
        try synchronize(vaporData: data)
        let hadChanges = content.withLock { $0.session.hasChanges }
        let outcome = try await withSession { session in try await store.save(&session) }
        if outcome == .gone && hadChanges {
            throw SessionStoreAbort.sessionEnded
        }
        return id
    }

    /// Deletes the stored session, once.
    func destroy() async throws {
        let alreadyDestroyed = content.withLock { $0.destroyedID != nil }
        guard !alreadyDestroyed else { return }
        let id = self.id
        try await withSession { session in try await store.destroy(&session) }
        content.withLock { $0.destroyedID = id }
    }

    /// The attributes holding JSON strings, as Vapor's `SessionData` represents them.
    static func strings(of session: StoreSession) -> [String: String] {
        var strings: [String: String] = [:]
        for key in session.keys {
            if let value = string(session, key) { strings[key] = value }
        }
        return strings
    }

    /// The attribute as a string, or `nil` when absent or of another type (such an
    /// attribute is reachable through ``TypedSession`` only).
    static func string(_ session: StoreSession, _ key: String) -> String? {
        do {
            return try session.get(key, as: String.self)
        } catch {
            return nil  // Not a string: outside Vapor's [String: String] view by design.
        }
    }
}

/// Where a request keeps the driver's state.
struct SessionStoreStateKey: StorageKey {
    typealias Value = SessionStoreState
}

extension Request {
    /// The driver's state for this request, created for a new session if there is none.
    func sessionStoreState(_ store: SessionStore) -> SessionStoreState {
        if let state = storage[SessionStoreStateKey.self] { return state }
        let state = SessionStoreState(store: store, session: store.newSession())
        storage[SessionStoreStateKey.self] = state
        return state
    }

    /// The driver's state for the session Vapor names `id`; loads it when the request has
    /// none for that id (an id the app assigned itself is validated and never adopted).
    func sessionStoreState(_ store: SessionStore, matching id: String) async throws -> SessionStoreState {
        if let state = storage[SessionStoreStateKey.self],
           state.id == id || state.content.withLock({ $0.destroyedID == id }) {
            return state
        }
        let session: StoreSession
        do {
            session = try await store.load(id: id)
        } catch {
            throw SessionStoreAbort(error)
        }
        let state = SessionStoreState(store: store, session: session)
        storage[SessionStoreStateKey.self] = state
        return state
    }
}
#endif
