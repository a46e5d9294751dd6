public import SessionStoreCore
import Synchronization

/// Wraps a backend and counts the calls that reach it, so tests can prove that a
/// malformed id or an unchanged session causes no database work.
public final class CountingBackend: StorageBackend {
    /// The wrapped backend.
    public let base: any StorageBackend
    private let counts = Mutex([String: Int]())
    private let nextDelete = Mutex<(@Sendable () async throws -> Void)?>(nil)
    private let cleanupHook = Mutex<(@Sendable () async throws -> Void)?>(nil)

    /// Wraps `base`.
    public init(_ base: any StorageBackend) {
        self.base = base
    }

    /// Calls per operation name (`load`, `insert`, `update`, `merge`, `touch`, `retire`, `delete`,
    /// `deleteExpired`).
    public var calls: [String: Int] { counts.withLock { $0 } }

    /// All calls except `load`: the writes.
    public var writes: Int { counts.withLock { $0.filter { $0.key != "load" }.values.reduce(0, +) } }

    /// Forgets the counts so far.
    public func reset() { counts.withLock { $0 = [:] } }

    private func count(_ operation: String) {
        counts.withLock { $0[operation, default: 0] += 1 }
    }

    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        count("load")
        return try await base.load(key, now: now)
    }

    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        count("insert")
        return try await base.insert(key, record)
    }

    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        count("update")
        return try await base.update(key, data: data, expectedVersion: expectedVersion, expiresAt: expiresAt, now: now)
    }

    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        count("merge")
        return try await base.merge(key, now: now, decide)
    }

    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        count("touch")
        return try await base.touch(key, expiresAt: expiresAt, now: now)
    }

    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        count("retire")
        return try await base.retire(key, expiresAt: expiresAt)
    }

    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        count("rebind")
        return try await base.rebind(
            key, data: data, owner: owner, details: details, expiresAt: expiresAt, expectedVersion: expectedVersion, now: now)
    }

    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        count("load")
        return try await base.ownedSessions(owner: owner, now: now, after: position, limit: limit)
    }

    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        count("deleteOwned")
        return try await base.deleteOwned(owner: owner, only: only, except: except, limit: limit)
    }

    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        count("trimOwned")
        return try await base.trimOwned(owner: owner, keep: keep, now: now)
    }

    /// Runs `body` once, just before the next `delete` reaches the backend: a way to make
    /// another request land inside a multi-step operation.
    func interceptNextDelete(_ body: @escaping @Sendable () async throws -> Void) {
        nextDelete.withLock { $0 = body }
    }

    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        count("delete")
        if let intercept = nextDelete.withLock({ hook in defer { hook = nil }; return hook }) {
            try await intercept()
        }
        return try await base.delete(key, expectedVersion: expectedVersion)
    }

    /// Runs `body` before every `deleteExpired` from now on: a slow or failing cleanup.
    public func beforeEachCleanup(_ body: @escaping @Sendable () async throws -> Void) {
        cleanupHook.withLock { $0 = body }
    }

    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        count("deleteExpired")
        if let hook = cleanupHook.withLock({ $0 }) { try await hook() }
        return try await base.deleteExpired(before: before, limit: limit)
    }

    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        try await base.acquireCleanupLease(holder: holder, now: now, duration: duration)
    }

    public func releaseCleanupLease(holder: String) async throws {
        try await base.releaseCleanupLease(holder: holder)
    }

    public func close() async throws {
        try await base.close()
    }
}
