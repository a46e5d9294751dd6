/// Encrypts session data at rest on any backend: wraps a ``StorageBackend`` and seals every
/// row's data with AES-256-GCM under the key ring's active key, opening it again on reads.
///
/// Backends need no code for it: rows keep their keys, versions, times, owner and details
/// in the clear (the store's expiry, touch, cleanup and owner listings work on them as
/// before) and only ``SessionRecord/data`` is sealed, with a fresh random nonce per write and the row's storage key as associated
/// data (see the Encryption article for the format). Rows written before encryption was
/// turned on read as plaintext (unless the ring refuses them) and are sealed on their next
/// write; rows under a decrypt-only key are re-sealed under the active key on their next write.
///
/// A row that cannot be opened (unknown key id, wrong key, truncated or changed bytes)
/// makes ``load(_:now:)`` and the merge's decision throw ``SessionStoreError`` `undecryptable`,
/// which the store treats like corrupt data (`on_corrupt`).
///
/// `SessionStore.open` wraps the backend in one when the URL names a key file
/// (`encryption_keys=/path`); in code:
/// ```swift
/// let ring = try EncryptionKeyRing(contentsOfFile: "/etc/app/session-keys")
/// let store = try SessionStore(backend: EncryptingBackend(wrapping: backend, keys: ring))
/// ```
public final class EncryptingBackend: StorageBackend {
    /// The backend rows are stored in, sealed.
    public let base: any StorageBackend
    /// The keys rows are sealed and opened with.
    public let keys: EncryptionKeyRing

    /// Encrypts the data of every row `base` stores with `keys`.
    public init(wrapping base: any StorageBackend, keys: EncryptionKeyRing) {
        self.base = base
        self.keys = keys
    }

    /// The data as stored: sealed under the active key, or plaintext when the ring writes plaintext.
    package func seal(_ data: [UInt8], for key: SessionKey) throws -> [UInt8] {
        guard let active = keys.active, !data.isEmpty else { return data }
        return try EncryptedRow.seal(data, with: active, for: key)
    }

    /// The encoded attributes of stored data.
    /// - Throws: ``SessionStoreError`` `undecryptable`.
    package func open(_ data: [UInt8], for key: SessionKey) throws -> [UInt8] {
        try EncryptedRow.open(data, with: keys, for: key)
    }

    /// Whether stored data is already in the form a write would give it: sealed under the
    /// active key, or plaintext when the ring writes plaintext. What `rekey` skips.
    package func isCurrent(_ data: [UInt8]) -> Bool {
        switch EncryptedRow.kind(of: data) {
        case .plaintext: keys.active == nil || data.isEmpty
        case .encrypted(let keyID): keyID == keys.active?.id
        case .malformed: false
        }
    }

    /// Rewrites the live row under `key` in the form a write would give it now (sealed under
    /// the active key, or plaintext when the ring writes plaintext) if it is not in that form
    /// yet: what `session-store rekey` does to each row. Its data is unchanged and its version
    /// moves by one, so a request that loaded it before merges its save as after any other
    /// write. Retired and missing rows are left alone.
    ///
    /// When the base backend paces bulk rewrites (SQLite: by its WAL, as its cleanup does),
    /// the rewrite waits for that first, so a `rekey` running beside an app keeps its saves
    /// responsive. A tool rewriting many rows does better with `resealing(_:)`: one paced
    /// scope for all of them.
    /// - Returns: Whether the row was rewritten.
    /// - Throws: ``SessionStoreError`` `undecryptable` when the row cannot be opened (it is
    ///   left as it is), ``StorageError``.
    public func reseal(_ key: SessionKey, now: Int64) async throws -> Bool {
        try await resealing { resealer in
            try await resealer.pacer.pace()
            return try await resealNow(key, now: now)
        }
    }

    /// Runs `body`, a rewrite of many rows with ``Resealer/reseal(_:now:parallel:)`` (what
    /// `session-store rekey` does), as one bulk job of the base backend: on SQLite, one
    /// cleanup-like scope paced by the WAL from its first row to its last, so that the
    /// checkpointer never holds saves back between two rows or two batches.
    /// - Throws: What `body` throws, ``StorageError``.
    package func resealing<Output: Sendable>(_ body: (Resealer) async throws -> Output) async throws -> Output {
        guard let paced = base as? any PacedRewriting else {
            return try await body(Resealer(backend: self, pacer: UnpacedRewrites()))
        }
        return try await paced.pacedRewrites { pacer in try await body(Resealer(backend: self, pacer: pacer)) }
    }

    /// Rewrites rows inside ``EncryptingBackend/resealing(_:)``.
    package struct Resealer: Sendable {
        let backend: EncryptingBackend
        let pacer: any RewritePacer

        /// What ``reseal(_:now:parallel:)`` did.
        package struct Counts: Sendable, Equatable {
            /// Rows rewritten under the active key (or to plaintext).
            package var rewritten: Int64 = 0
            /// Rows that could not be opened (`undecryptable`), left as they are.
            package var failed: Int64 = 0

            package init(rewritten: Int64 = 0, failed: Int64 = 0) {
                self.rewritten = rewritten
                self.failed = failed
            }
        }

        /// Rewrites `keys`' rows as ``EncryptingBackend/reseal(_:now:)`` does, at most
        /// `parallel` at once, pacing before each one (only this task paces, so rows in
        /// flight never wait for each other). A row rewritten by a request meanwhile counts
        /// as neither rewritten nor failed.
        /// - Throws: ``StorageError`` (the rows already rewritten stay so), `CancellationError`.
        package func reseal(_ keys: some Sequence<SessionKey>, now: Int64, parallel: Int) async throws -> Counts {
            let backend = backend
            return try await withThrowingTaskGroup(of: Bool?.self) { group in
                var counts = Counts()
                func collect(_ outcome: Bool?) {
                    switch outcome {
                    case true?: counts.rewritten += 1
                    case nil: counts.failed += 1
                    case false?: break
                    }
                }
                var inFlight = 0
                for key in keys {
                    if inFlight >= max(parallel, 1), let outcome = try await group.next() {
                        collect(outcome)
                        inFlight -= 1
                    }
                    try await pacer.pace()
                    group.addTask {
                        do {
                            return try await backend.resealNow(key, now: now)
                        } catch let error as SessionStoreError where error.code == .undecryptable {
                            return nil
                        }
                    }
                    inFlight += 1
                }
                for try await outcome in group { collect(outcome) }
                return counts
            }
        }
    }

    fileprivate func resealNow(_ key: SessionKey, now: Int64) async throws -> Bool {
        try await base.merge(key, now: now) { [self] current in
            guard let current, current.version > SessionStore.retiredVersion, !isCurrent(current.data) else {
                return (.none, false)
            }
            let data = try open(current.data, for: key)
            return (.replace(data: try seal(data, for: key), expiresAt: current.expiresAt), true)
        }
    }

    /// The record with its data opened (what ``load(_:now:)`` returns for the base's record).
    func opened(_ record: SessionRecord?, _ key: SessionKey) throws -> SessionRecord? {
        guard var record else { return nil }
        record.data = try open(record.data, for: key)
        return record
    }

    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        try opened(try await base.load(key, now: now), key)
    }

    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        var sealed = record
        sealed.data = try seal(record.data, for: key)
        return try await base.insert(key, sealed)
    }

    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        try await base.update(key, data: seal(data, for: key), expectedVersion: expectedVersion, expiresAt: expiresAt, now: now)
    }

    /// Opens the current row before `decide` sees it and seals the data it writes.
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        try await base.merge(key, now: now) { [self] current in
            let (write, result) = try decide(try opened(current, key))
            guard case .replace(let data, let expiresAt) = write else { return (write, result) }
            return (.replace(data: try seal(data, for: key), expiresAt: expiresAt), result)
        }
    }

    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        try await base.touch(key, expiresAt: expiresAt, now: now)
    }

    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        try await base.retire(key, expiresAt: expiresAt)
    }

    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        try await base.delete(key, expectedVersion: expectedVersion)
    }

    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        try await base.deleteExpired(before: before, limit: limit)
    }

    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        try await base.acquireCleanupLease(holder: holder, now: now, duration: duration)
    }

    public func releaseCleanupLease(holder: String) async throws {
        try await base.releaseCleanupLease(holder: holder)
    }

    /// Seals the data; the owner and details stay as they are (listings need them).
    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        try await base.rebind(
            key, data: seal(data, for: key), owner: owner, details: details, expiresAt: expiresAt,
            expectedVersion: expectedVersion, now: now)
    }

    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        try await base.ownedSessions(owner: owner, now: now, after: position, limit: limit)
    }

    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        try await base.deleteOwned(owner: owner, only: only, except: except, limit: limit)
    }

    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        try await base.trimOwned(owner: owner, keep: keep, now: now)
    }

    public func close() async throws {
        try await base.close()
    }
}
