#if Vapor
public import SessionStoreCore
public import Vapor

extension Request {
    /// The request's session with typed `Codable` attributes, id regeneration and an early
    /// save: the same session as `req.session`, whose `data` shows the attributes holding
    /// strings.
    ///
    /// Needs `app.sessions.use(.sessionStore(store))` and Vapor's sessions middleware.
    public var typedSession: TypedSession {
        get throws {
            // The state the driver keeps for the request names the store; only a request
            // whose session was not loaded yet asks the application for its driver.
            if let state = storage[SessionStoreStateKey.self] {
                return TypedSession(request: self, store: state.store)
            }
            guard let driver = application.sessions.driver as? SessionStoreDriver else {
                throw Abort(.internalServerError, reason: "Sessions are not configured with .sessionStore(store).")
            }
            return TypedSession(request: self, store: driver.store)
        }
    }
}

/// Typed access to the current request's session; see `Request.typedSession`.
///
/// Changes are saved by Vapor's sessions middleware after the handler, like changes made
/// through `req.session.data`, or earlier with ``save()`` when the handler wants to see the
/// outcome before it answers.
public struct TypedSession: Sendable {
    let request: Request
    let store: SessionStore

    /// The state for this request, with Vapor's data applied so both views agree.
    func state() throws -> SessionStoreState {
        // Makes Vapor's middleware save the session even if the handler uses only this view.
        let vaporSession = request.session
        let state = request.sessionStoreState(store)
        try state.synchronize(vaporData: vaporSession.data.snapshot)
        return state
    }

    /// Changes attribute `key` and shows the change in Vapor's view of the session.
    private func change<T>(_ key: String, _ body: (inout SessionStoreCore.Session) throws -> T) throws -> T {
        let (result, text) = try state().change(key, body)
        request.session.data[key] = text
        return result
    }

    /// The session's id text: what the cookie will carry once the session is stored (a
    /// session without data is not stored and gets no cookie).
    public var id: String {
        get throws { try state().id }
    }

    /// Whether the session is stored (a new one is stored at its first save with data).
    public var isStored: Bool {
        get throws { try state().read { $0.isStored } }
    }

    /// Reads an attribute as `type`; `nil` when absent.
    /// - Throws: ``SessionStoreAbort`` (500) when the stored value is not a `T`.
    public func get<T: Decodable>(_ key: String, as type: T.Type = T.self) throws -> T? {
        try state().read { try $0.get(key, as: type) }
    }

    /// Sets an attribute to any `Encodable` value.
    /// - Throws: ``SessionStoreAbort`` (400) for an empty or over-long name.
    public func set(_ key: String, _ value: some Encodable & Sendable) throws {
        try change(key) { session in try session.set(key, value) }
    }

    /// Removes an attribute.
    public func remove(_ key: String) throws {
        try change(key) { session in session.remove(key) }
    }

    /// Adds `delta` to an integer attribute; concurrent increments on the session add up.
    /// - Returns: The new value as this request sees it.
    @discardableResult
    public func increment(_ key: String, by delta: Int = 1) throws -> Int {
        try change(key) { session in try session.increment(key, by: delta) }
    }

    /// Gives the session a new id, keeping its data (call it after login, against session
    /// fixation). The old id keeps working for the store's grace period, then never again;
    /// the response's cookie carries the new id.
    public func regenerateID() async throws {
        let state = try state()
        try await state.withSession { session in try await store.regenerateID(&session) }
        let vaporSession = request.session
        vaporSession.id = Vapor.SessionID(string: state.id)
        vaporSession.data = SessionData(initialData: state.vaporSnapshot())
    }

    /// Deletes the session now (logout); the response clears the cookie.
    public func destroy() async throws {
        let state = try state()
        try await state.destroy()
        request.session.destroy()
    }

    /// Saves the changes now and tells what was written, so a handler can answer a `.gone`
    /// (the session ended meanwhile) before it builds its response. The middleware then
    /// has nothing left to write.
    @discardableResult
    public func save() async throws -> SaveOutcome {
        let state = try state()
        let outcome = try await state.withSession { session in try await store.save(&session) }
        let vaporSession = request.session
        if vaporSession.id != nil || outcome.wroteData {
            vaporSession.id = Vapor.SessionID(string: state.id)
        }
        vaporSession.data = SessionData(initialData: state.vaporSnapshot())
        return outcome
    }
}
#endif
