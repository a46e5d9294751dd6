/// One of an owner's live sessions, as a "where you're signed in" page shows it.
public struct OwnedSession: Sendable, Equatable {
    /// Names the session for ``SessionStore/revoke(handle:ownedBy:)``. It can end the
    /// session but never serve as its cookie: it is derived from the stored key, which is a
    /// one-way hash of the id.
    public var handle: String
    /// When the session was first stored, in milliseconds since the Unix epoch.
    public var createdAt: Int64
    /// When it was last used, at the touch interval's granularity.
    public var lastSeen: Int64
    /// When it expires unless used again.
    public var expiresAt: Int64
    /// The device facts given at login.
    public var device: SessionDevice
    /// Its own lifetime, when it has one.
    public var lifetime: SessionLifetime?
    /// Whether this is the session of the request that asked for the list.
    public var isCurrent: Bool
}

/// A page of an owner's sessions, newest first.
public struct OwnedSessionPage: Sendable, Equatable {
    /// The sessions on this page.
    public var sessions: [OwnedSession]
    /// Pass it as `after` for the next page; `nil` on the last page.
    public var nextCursor: String?

    /// A page; drivers use it for the empty page of a session without an owner.
    public init(sessions: [OwnedSession], nextCursor: String?) {
        self.sessions = sessions
        self.nextCursor = nextCursor
    }
}

extension SessionStore {
    // MARK: - Binding

    /// Signs a session in: gives it a new id (against session fixation) bound to `owner`
    /// with the device's facts and, for "remember me" or a kiosk, a lifetime of its own, in
    /// one write, so the new id never exists unbound. Its attributes are kept.
    ///
    /// When the store caps sessions per owner (``SessionStoreConfiguration/maxSessionsPerOwner``),
    /// the owner's least recently used sessions beyond the cap end.
    /// - Throws: ``SessionStoreError`` `invalidOwner` (nothing written), ``StorageError``.
    public func logIn(
        _ session: inout Session, owner: String, device: SessionDevice = SessionDevice(), lifetime: SessionLifetime? = nil
    ) async throws {
        let binding = try makeBinding(owner: owner, device: device, lifetime: lifetime)
        try await regenerate(&session, binding: binding)
        if session.stored == nil {
            // The anonymous session ended meanwhile (destroyed, revoked, expired): the
            // sign-in still succeeds, on a new session.
            try await regenerate(&session, binding: binding)
        }
        try await enforceOwnerCap(owner)
    }

    /// Binds the session to `owner` without changing its id, saving its pending changes
    /// with it. Prefer ``logIn(_:owner:device:lifetime:)``, which also renews the id.
    /// - Throws: ``SessionStoreError`` `invalidOwner` (nothing written), `conflictRetriesExhausted`;
    ///   ``StorageError``.
    /// - Returns: `false` when the session was gone (destroyed, revoked or expired):
    ///   nothing was written and `session` is a new, empty one.
    @discardableResult
    public func bind(
        _ session: inout Session, to owner: String, device: SessionDevice = SessionDevice(), lifetime: SessionLifetime? = nil
    ) async throws -> Bool {
        let binding = try makeBinding(owner: owner, device: device, lifetime: lifetime)
        guard try await rebind(&session, "bind", { _ in binding }) else { return false }
        try await enforceOwnerCap(owner)
        return true
    }

    /// Ends the session's binding (sign-out that keeps the session's other attributes):
    /// owner, device facts and own lifetime go; the store's lifetime applies again.
    /// - Returns: `false` when the session was gone.
    @discardableResult
    public func unbind(_ session: inout Session) async throws -> Bool {
        guard session.stored != nil else { return true }
        return try await rebind(&session, "unbind") { _ in .unbound }
    }

    /// Gives the session a lifetime of its own ("remember me"), or back the store's with
    /// `nil`, keeping its owner and device facts.
    /// - Throws: ``SessionStoreError`` `invalidOwner` for a lifetime beyond the store's maxima.
    /// - Returns: `false` when the session was gone.
    @discardableResult
    public func setLifetime(_ session: inout Session, _ lifetime: SessionLifetime?) async throws -> Bool {
        let stored = try lifetime.map { try SessionBinding.stored($0, configuration) }
        return try await rebind(&session, "setLifetime") { binding in
            var binding = binding
            binding.lifetime = stored
            return binding
        }
    }

    /// The `Max-Age` in seconds a driver gives the session's cookie: set when the session's
    /// own lifetime asks for a persistent cookie, `nil` for a session cookie.
    public func cookieMaxAge(for session: Session) -> Int? {
        guard let stored = session.stored, stored.binding.lifetime?.persistentCookie == true else { return nil }
        return Int(max(0, stored.expiresAt - clock.now()) / 1000)
    }

    // MARK: - Listing and revoking

    /// A page of `owner`'s live sessions, newest first, with their device facts; the one of
    /// `current` (the asking request's session) is marked.
    /// - Parameters:
    ///   - owner: The user whose sessions are listed.
    ///   - current: The asking request's session, marked in the page.
    ///   - cursor: ``OwnedSessionPage/nextCursor`` of the previous page; `nil` for the first.
    ///   - limit: At most this many sessions (1 to 1000).
    /// - Throws: ``SessionStoreError`` `invalidOwner`, `invalidHandle` (a malformed cursor),
    ///   `invalidConfiguration` when ids are not hashed (``IDHashing/none``: a handle would
    ///   be a cookie), `corruptData` for a row's unreadable details; ``StorageError``.
    public func sessions(
        ownedBy owner: String, current: Session? = nil, after cursor: String? = nil, limit: Int = 50
    ) async throws -> OwnedSessionPage {
        try checkOpen()
        try SessionBinding.validate(owner: owner)
        try requireHashedKeys()
        guard (1...1000).contains(limit) else {
            throw SessionStoreError(.invalidOwner, "a page holds 1 to 1000 sessions (asked for \(limit))")
        }
        let position = try cursor.map(Self.position(fromCursor:))
        let currentKey = current.map { storageKey(for: $0.id) }
        let now = clock.now()
        let rows = try await logged("ownedSessions", nil) {
            try await backend.ownedSessions(owner: owner, now: now, after: position, limit: limit)
        }
        let sessions = try rows.map { row in
            let binding = try SessionBinding(owner: owner, details: row.details)
            return OwnedSession(
                handle: Self.handlePrefix + row.key.value, createdAt: row.createdAt, lastSeen: row.lastSeen,
                expiresAt: row.expiresAt, device: binding.device, lifetime: binding.publicLifetime,
                isCurrent: row.key == currentKey)
        }
        let next = rows.count == limit ? rows.last.map { "\(Self.cursorPrefix)\($0.createdAt).\($0.key.value)" } : nil
        return OwnedSessionPage(sessions: sessions, nextCursor: next)
    }

    /// Ends one of `owner`'s sessions by its ``OwnedSession/handle``; a handle of another
    /// owner's session ends nothing. Returns how many sessions ended (0 or 1). A request
    /// still in flight on that session that saves afterwards gets `.gone`.
    /// - Throws: ``SessionStoreError`` `invalidHandle`, `invalidOwner`; ``StorageError``.
    @discardableResult
    public func revoke(handle: String, ownedBy owner: String) async throws -> Int {
        try checkOpen()
        try SessionBinding.validate(owner: owner)
        try requireHashedKeys()
        let key = try Self.key(fromHandle: handle)
        return try await logged("revoke", nil) {
            try await backend.deleteOwned(owner: owner, only: key, except: nil, limit: 1)
        }
    }

    /// Ends every session of `owner` ("sign out everywhere"), in bounded batches. Returns
    /// how many rows ended: each session, and each earlier id of one still readable in its
    /// renewal grace period (see ``SessionStoreConfiguration/regenerationGracePeriod``).
    @discardableResult
    public func revokeAll(ownedBy owner: String) async throws -> Int {
        try await revokeOwned(owner, except: nil)
    }

    /// Ends every session of `owner` but `current` (after a password change), earlier ids
    /// in their grace period included. Returns how many rows ended, counted as
    /// ``revokeAll(ownedBy:)`` does.
    @discardableResult
    public func revokeOthers(ownedBy owner: String, keeping current: Session) async throws -> Int {
        try await revokeOwned(owner, except: storageKey(for: current.id))
    }

    /// Ends every session of `owner` but the one ``OwnedSession/handle`` names, counted as
    /// ``revokeAll(ownedBy:)`` does; for tools, which have a handle rather than a session.
    /// - Throws: ``SessionStoreError`` `invalidHandle`, `invalidOwner`; ``StorageError``.
    @discardableResult
    public func revokeAll(ownedBy owner: String, exceptHandle handle: String) async throws -> Int {
        try requireHashedKeys()
        return try await revokeOwned(owner, except: try Self.key(fromHandle: handle))
    }

    // MARK: - Helpers

    private func revokeOwned(_ owner: String, except: SessionKey?) async throws -> Int {
        try checkOpen()
        try SessionBinding.validate(owner: owner)
        let batch = configuration.cleanupBatchSize
        var total = 0
        while true {
            let deleted = try await logged("revoke", nil) {
                try await backend.deleteOwned(owner: owner, only: nil, except: except, limit: batch)
            }
            total += deleted
            if deleted < batch { return total }
        }
    }

    private func makeBinding(owner: String, device: SessionDevice, lifetime: SessionLifetime?) throws -> SessionBinding {
        try SessionBinding.validate(owner: owner)
        try SessionBinding.validate(device)
        return SessionBinding(
            owner: owner, device: device, lifetime: try lifetime.map { try SessionBinding.stored($0, configuration) })
    }

    private func enforceOwnerCap(_ owner: String) async throws {
        guard let cap = configuration.maxSessionsPerOwner else { return }
        let now = clock.now()
        let ended = try await logged("trimOwned", nil) { try await backend.trimOwned(owner: owner, keep: cap, now: now) }
        if ended > 0 { logger.debug("sessions over the owner's cap ended", metadata: ["ended": "\(ended)"]) }
    }

    /// Writes the session with the binding `change` makes of its current one, at the row's
    /// current version (its pending changes rebased on the stored attributes, as a merge
    /// does). `false`, with `session` a new empty one, when the session was gone.
    private func rebind(
        _ session: inout Session, _ operation: String, _ change: (SessionBinding) -> SessionBinding
    ) async throws -> Bool {
        try checkOpen()
        let id = session.id
        let key = storageKey(for: id)
        guard let stored = session.stored else {
            let binding = change(.unbound)
            if binding.isEmpty { return true }
            // A new session: stored now, bound from its first write.
            try await insertBound(&session, binding)
            return true
        }
        if stored.version == Self.retiredVersion {
            _ = sessionGone(&session, operation)
            return false
        }
        return try await retryingConflicts(
            "concurrent saves kept changing the session; its binding was not changed", session: id
        ) { () -> Bool? in
            let now = clock.now()
            guard let current = try await logged("load", id, { try await backend.load(key, now: now) }),
                  current.version != Self.retiredVersion
            else {
                _ = sessionGone(&session, operation)
                return false
            }
            let values: [String: [UInt8]]
            let binding: SessionBinding
            do {
                values = try session.rebased(on: try AttributeCodec.decodeStored(current.data)).values
                binding = change(try SessionBinding(owner: current.owner, details: current.details))
            } catch var error as SessionStoreError {
                error.session = id.redacted
                throw error
            }
            let data = try encode(values, id)
            let expiresAt = lifetimes.expiry(createdAt: current.createdAt, now: now, binding.lifetime)
            let written = try await logged(operation, id) {
                try await backend.rebind(
                    key, data: data, owner: binding.owner, details: binding.encodedDetails, expiresAt: expiresAt,
                    expectedVersion: current.version, now: now)
            }
            if written {
                session.markSaved(
                    .init(version: current.version + 1, createdAt: current.createdAt, expiresAt: expiresAt, binding: binding),
                    values: values)
                metrics.updated.increment()
                return true
            }
            return nil
        }
    }

    private func requireHashedKeys() throws {
        guard configuration.idHashing == .sha256 else {
            throw SessionStoreError(
                .invalidConfiguration,
                "listing and revoking sessions by handle need hashed ids (id_hash=sha256): with id_hash=none a handle would be a cookie")
        }
    }

    static let handlePrefix = "h1."
    static let cursorPrefix = "c1."

    /// The stored key a handle names: ``handlePrefix`` and a 43-character base64url SHA-256.
    static func key(fromHandle handle: String) throws -> SessionKey {
        guard handle.hasPrefix(handlePrefix) else { throw invalidHandle("handle") }
        let value = handle.dropFirst(handlePrefix.count)
        guard Self.isHashedKey(value) else { throw invalidHandle("handle") }
        return SessionKey(value: String(value))
    }

    static func position(fromCursor cursor: String) throws -> OwnedRecordPosition {
        guard cursor.hasPrefix(cursorPrefix) else { throw invalidHandle("cursor") }
        let parts = cursor.dropFirst(cursorPrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 19, let createdAt = Int64(parts[0]), createdAt >= 0,
              isHashedKey(parts[1])
        else { throw invalidHandle("cursor") }
        return OwnedRecordPosition(createdAt: createdAt, key: SessionKey(value: String(parts[1])))
    }

    private static func isHashedKey(_ text: Substring) -> Bool {
        text.utf8.count == 43 && text.utf8.allSatisfy { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2D || byte == 0x5F
        }
    }

    private static func invalidHandle(_ what: String) -> SessionStoreError {
        SessionStoreError(.invalidHandle, "malformed session \(what): not one this store handed out")
    }
}
