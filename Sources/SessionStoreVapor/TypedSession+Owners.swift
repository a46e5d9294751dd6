#if Vapor
public import SessionStoreCore
import Vapor

extension TypedSession {
    /// Signs the session in: a new id bound to `owner` with the device's facts and, for
    /// "remember me", a lifetime of its own, in one write (see
    /// ``SessionStore/logIn(_:owner:device:lifetime:)``). The response's cookie carries the
    /// new id, with a `Max-Age` when the lifetime asks for a persistent cookie.
    /// - Throws: ``SessionStoreError`` `invalidOwner` (nothing written), ``StorageError``.
    public func logIn(owner: String, device: SessionDevice = SessionDevice(), lifetime: SessionLifetime? = nil) async throws {
        try await rebinding { session in try await store.logIn(&session, owner: owner, device: device, lifetime: lifetime) }
    }

    /// Ends the binding (sign-out that keeps the session's other attributes).
    public func unbind() async throws {
        try await rebinding { session in _ = try await store.unbind(&session) }
    }

    /// Gives the session a lifetime of its own, or back the store's with `nil`.
    public func setLifetime(_ lifetime: SessionLifetime?) async throws {
        try await rebinding { session in _ = try await store.setLifetime(&session, lifetime) }
    }

    /// The owner the session is bound to, if any.
    public var owner: String? {
        get throws { try state().content.withLock { $0.session.owner } }
    }

    /// A page of the signed-in owner's live sessions, newest first, this one marked; empty
    /// when the session is not bound.
    public func ownerSessions(after cursor: String? = nil, limit: Int = 50) async throws -> OwnedSessionPage {
        let session = try state().content.withLock { $0.session }
        guard let owner = session.owner else { return OwnedSessionPage(sessions: [], nextCursor: nil) }
        return try await store.sessions(ownedBy: owner, current: session, after: cursor, limit: limit)
    }

    /// Ends one of the signed-in owner's sessions by its handle ("sign out that device").
    /// Returns how many ended (0 when the handle is not one of the owner's).
    @discardableResult
    public func revoke(handle: String) async throws -> Int {
        guard let owner = try owner else { return 0 }
        return try await store.revoke(handle: handle, ownedBy: owner)
    }

    /// Ends every other session of the signed-in owner (after a password change). Returns
    /// how many rows ended.
    @discardableResult
    public func revokeOthers() async throws -> Int {
        let session = try state().content.withLock { $0.session }
        guard let owner = session.owner else { return 0 }
        return try await store.revokeOthers(ownedBy: owner, keeping: session)
    }

    /// Runs a store call that may renew the id, then points Vapor's session at the result.
    private func rebinding(_ body: (inout SessionStoreCore.Session) async throws -> Void) async throws {
        let state = try state()
        try await state.withSession { session in try await body(&session) }
        let vaporSession = request.session
        vaporSession.id = Vapor.SessionID(string: state.id)
        vaporSession.data = SessionData(initialData: state.vaporSnapshot())
    }
}
#endif
