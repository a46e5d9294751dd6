#if Vapor
import SessionStoreCore
import Synchronization
import Vapor

/// What the driver loaded for one request: the store's session and the string view of it
/// handed to Vapor, against which Vapor's data is compared to find what the request changed.
final class SessionStoreState: Sendable {
    struct Content: Sendable {
        var session: SessionStoreCore.Session
        /// The attributes Vapor was given (those holding strings), as last synchronised.
        var snapshot: [String: String]
        /// Set once the session was destroyed through ``TypedSession/destroy()``.
        var destroyedID: String?
        /// The id the client's cookie carried, when it named a stored session.
        let presentedID: String?
    }

    let store: SessionStore
    let content: Mutex<Content>
    /// Set when the response must leave the client's cookie as it is (see
    /// ``SessionStoreCookieGuard``).
    let keepsClientCookie = Atomic<Bool>(false)
    /// Whether the session was loaded signed in through Vapor's session authentication
    /// (see ``authenticatedOwner(_:)``), so that a logout in this request unbinds it.
    let loadedAuthenticated: Bool

    /// The state of a request whose session is `session`; `presented` is the cookie's id
    /// when it named that session.
    init(store: SessionStore, session: SessionStoreCore.Session, presented: String? = nil) {
        self.store = store
        let strings = session.strings
        self.content = Mutex(Content(session: session, snapshot: strings, presentedID: presented))
        loadedAuthenticated = session.owner != nil && Self.authenticatedOwner(strings) != nil
    }

    /// The current id's text.
    var id: String { content.withLock { $0.session.id.text } }

    /// Whether this state holds the session Vapor names `id` (or held it until destroyed).
    func holds(_ id: String) -> Bool {
        content.withLock { $0.session.id.text == id || $0.destroyedID == id }
    }

    /// The session's string-valued attributes: Vapor's view of it.
    func vaporSnapshot() -> [String: String] {
        content.withLock { $0.snapshot }
    }

    /// Applies the changes Vapor's data shows against the snapshot to the store's session.
    ///
    /// Vapor hands back the dictionary it was given when the handler changed nothing, so
    /// the comparison usually ends at the buffers' identity.
    /// - Throws: ``SessionStoreAbort`` for an invalid attribute name (nothing applied).
    func synchronize(vaporData data: [String: String]) throws {
        try content.withLock { content in try Self.synchronize(&content, data) }
    }

    private static func synchronize(_ content: inout Content, _ data: [String: String]) throws {
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

    /// What the end of a request has to do once Vapor's data is applied.
    enum Pending {
        /// Nothing to write; the response sets the cookie to the session's (new) id.
        case sendCookie(String)
        /// Nothing to write, and the client's cookie stays as it is (see ``cookieDecision(_:)``).
        case keepCookie
        /// Changes to save.
        case save
    }

    /// Applies Vapor's data and tells whether anything is left to write, without I/O: the
    /// whole end of a read-only request.
    /// - Throws: ``SessionStoreAbort`` for an invalid attribute name.
    func pending(vaporData data: [String: String]) throws -> Pending {
        try content.withLock { content in
            try Self.synchronize(&content, data)
            return content.session.hasChanges ? .save : Self.cookieDecision(content)
        }
    }

    /// The cookie a response carries once nothing is left to write.
    ///
    /// Only an id the client does not have yet is sent: a session created, renewed or
    /// recreated by this request. Sending back the id the client presented would change
    /// nothing, except when another request renewed that id meanwhile: the client then
    /// holds the new id (or is about to receive it) and the old one would replace it and
    /// sign the user out once the grace period ends. Whether that happened cannot be known
    /// without another read, so the presented id is never sent back. A session that is not
    /// stored (a visitor without data, an unknown cookie) and a retired one get no cookie
    /// either.
    static func cookieDecision(_ content: Content) -> Pending {
        let session = content.session
        guard session.isStored, !session.isRetired, session.id.text != content.presentedID else { return .keepCookie }
        return .sendCookie(session.id.text)
    }

    /// Runs a store operation on a copy of the session and keeps the result.
    func withSession<T>(
        _ body: (inout SessionStoreCore.Session) async throws -> T
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
            content.snapshot = session.strings
        }
        return result
    }

    /// Reads the session in place (no copy of it, no I/O).
    func read<T>(_ body: (SessionStoreCore.Session) throws -> T) throws -> T {
        try content.withLock { content in
            do {
                return try body(content.session)
            } catch {
                throw SessionStoreAbort(error)
            }
        }
    }

    /// Changes attribute `key` in place (no I/O) and refreshes Vapor's view of it.
    /// - Returns: `body`'s result and the attribute's text as Vapor now sees it.
    func change<T>(_ key: String, _ body: (inout SessionStoreCore.Session) throws -> T) throws -> (T, String?) {
        try content.withLock { content in
            let result: T
            do {
                result = try body(&content.session)
            } catch {
                throw SessionStoreAbort(error)
            }
            let text = content.session.string(key)
            content.snapshot[key] = text
            return (result, text)
        }
    }

    /// Saves the request's changes (Vapor's data included) and tells what the cookie carries.
    /// - Throws: ``SessionStoreAbort`` (409 when the session ended while this request
    ///   changed it; nothing was written).
    func save(vaporData data: [String: String]) async throws -> Pending {
        try synchronize(vaporData: data)
        let (hadChanges, owner) = content.withLock { ($0.session.hasChanges, $0.session.owner) }
        let outcome: SaveOutcome
        let loggedIn = Self.authenticatedOwner(data)
        if let loggedIn, loggedIn != owner {
            // `req.auth.login` of a `SessionAuthenticatable` user: the session is bound to it.
            outcome = try await withSession { session in try await store.bind(&session, to: loggedIn) ? .updated : .gone }
        } else if loggedIn == nil, loadedAuthenticated, owner != nil {
            // `req.auth.logout`: the binding goes with it.
            outcome = try await withSession { session in try await store.unbind(&session) ? .updated : .gone }
        } else {
            outcome = try await withSession { session in try await store.save(&session) }
        }
        if outcome == .gone && hadChanges {
            throw SessionStoreAbort.sessionEnded
        }
        return content.withLock { Self.cookieDecision($0) }
    }

    /// The user id Vapor's session authentication keeps in the data (`req.auth.login` of a
    /// `SessionAuthenticatable` type `T` stores it under `_TSession`), if any.
    static func authenticatedOwner(_ data: [String: String]) -> String? {
        for (key, value) in data where key.hasPrefix("_") && key.hasSuffix("Session") && key.utf8.count > 8 {
            return value
        }
        return nil
    }

    /// Deletes the stored session, once.
    func destroy() async throws {
        let alreadyDestroyed = content.withLock { $0.destroyedID != nil }
        guard !alreadyDestroyed else { return }
        let id = self.id
        try await withSession { session in try await store.destroy(&session) }
        content.withLock { $0.destroyedID = id }
    }
}

/// Where a request keeps the driver's state.
struct SessionStoreStateKey: StorageKey {
    typealias Value = SessionStoreState
}

/// Marks a request without driver state (a visitor without a cookie or data) whose
/// response must set no session cookie (see ``SessionStoreCookieGuard``).
struct KeepClientCookieKey: StorageKey {
    typealias Value = Bool
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
        if let state = storage[SessionStoreStateKey.self], state.holds(id) {
            return state
        }
        let session: SessionStoreCore.Session
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
