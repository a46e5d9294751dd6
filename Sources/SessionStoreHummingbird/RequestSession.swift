#if Hummingbird
public import SessionStoreCore
import Synchronization

/// The current request's session in a Hummingbird handler: typed attributes, id
/// regeneration with grace, destroy, atomic read-modify-write, and an early save.
///
/// Shared by reference between the middleware and the handler (contexts are copied),
/// so changes made by the handler are what the middleware saves after it.
public final class RequestSession: Sendable {
    struct State: Sendable {
        var store: SessionStore?
        /// The stored session the client presented, or the new one the handler started; `nil`
        /// while the request has no stored session and the handler has not used one, so a
        /// request without a session (a bot, an unknown cookie) mints no id.
        var session: SessionStoreCore.Session?
        /// Whether ``destroy()`` ran.
        var destroyed = false

        /// The session, a new one from the store when there is none yet.
        mutating func materialized() throws -> (SessionStore, SessionStoreCore.Session) {
            guard let store else { throw RequestSession.noMiddleware }
            if let session { return (store, session) }
            let session = store.newSession()
            self.session = session
            return (store, session)
        }
    }

    let state = Mutex(State())

    /// An empty holder; ``SessionStoreMiddleware`` loads the session into it.
    public init() {}

    /// Gives the request its stored session, or none (a new one is started when the handler
    /// first uses the session).
    func attach(store: SessionStore, session: SessionStoreCore.Session?) {
        state.withLock { $0 = State(store: store, session: session) }
    }

    static var noMiddleware: SessionStoreError {
        SessionStoreError(.invalidConfiguration, "no session: add SessionStoreMiddleware in front of this route")
    }

    private func attached() throws -> (SessionStore, SessionStoreCore.Session) {
        try state.withLock { try $0.materialized() }
    }

    /// The session as it is now: id, attributes, whether stored.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` without the middleware.
    public var current: Session {
        get throws { try attached().1 }
    }

    /// Reads an attribute as `type`; `nil` when absent.
    /// - Throws: ``SessionStoreError`` `attributeCoding` when the value is not a `T`.
    public func get<T: Decodable>(_ key: String, as type: T.Type = T.self) throws -> T? {
        let session = try state.withLock { state in
            guard state.store != nil else { throw Self.noMiddleware }
            return state.session
        }
        // No session yet: no attribute, and no id minted for asking.
        return try session?.get(key, as: type)
    }

    /// Sets an attribute; saved by the middleware after the handler.
    /// - Throws: ``SessionStoreError`` `invalidAttributeName`, `attributeCoding`.
    public func set(_ key: String, _ value: some Encodable) throws {
        try change { try $0.set(key, value) }
    }

    /// Removes an attribute.
    public func remove(_ key: String) throws {
        try change { $0.remove(key) }
    }

    /// Adds `delta` to an integer attribute; concurrent increments add up.
    @discardableResult
    public func increment(_ key: String, by delta: Int = 1) throws -> Int {
        try change { try $0.increment(key, by: delta) }
    }

    /// Gives the session a new id, keeping its data: call it after login. The old id works
    /// for the store's grace period, then never again; the response carries the new cookie.
    public func regenerateID() async throws {
        try await withStore { store, session in try await store.regenerateID(&session) }
    }

    /// Deletes the session (logout); the response clears the cookie.
    public func destroy() async throws {
        try await withStore { store, session in try await store.destroy(&session) }
        state.withLock { $0.destroyed = true }
    }

    /// Runs `change` on the session's latest stored state and saves atomically (see
    /// ``SessionStore/modify(_:_:)``).
    @discardableResult
    public func modify(_ change: @escaping @Sendable (inout Session) throws -> Void) async throws -> SaveOutcome {
        try await withStore { store, session in try await store.modify(&session, change) }
    }

    /// Saves now and tells what was written, so the handler can answer `.gone` (the session
    /// ended meanwhile) itself. The middleware then has nothing left to write.
    @discardableResult
    public func save() async throws -> SaveOutcome {
        try await withStore { store, session in try await store.save(&session) }
    }

    private func change<T>(_ body: (inout Session) throws -> T) throws -> T {
        try state.withLock { state in
            var (_, session) = try state.materialized()
            // The only copy while it changes, so its storage is changed in place, not copied.
            state.session = nil
            defer { state.session = session }
            return try body(&session)
        }
    }

    func withStore<T>(_ body: (SessionStore, inout Session) async throws -> T) async throws -> T {
        let (store, loaded) = try attached()
        var session = loaded
        let result = try await body(store, &session)
        state.withLock { $0.session = session }
        return result
    }
}
#endif
