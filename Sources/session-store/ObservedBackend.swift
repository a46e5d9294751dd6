import SessionStoreCore
import Synchronization

/// Forwards every call to the backend a command opened, and tells the command what the
/// store's own cleanup does through it: each batch deleted, and whether the lease was granted.
final class ObservedBackend: StorageBackend {
    let base: any StorageBackend
    private let onDeleted: @Sendable (Int) -> Void
    private let lease = Mutex<Bool?>(nil)

    init(_ base: any StorageBackend, onDeleted: @escaping @Sendable (Int) -> Void) {
        self.base = base
        self.onDeleted = onDeleted
    }

    /// Whether the last lease request was granted; `nil` before any.
    var leaseGranted: Bool? { lease.withLock { $0 } }

    func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        try await base.load(key, now: now)
    }

    func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        try await base.insert(key, record)
    }

    func update(_ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64) async throws -> Bool {
        try await base.update(key, data: data, expectedVersion: expectedVersion, expiresAt: expiresAt, now: now)
    }

    func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        try await base.merge(key, now: now, decide)
    }

    func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        try await base.touch(key, expiresAt: expiresAt, now: now)
    }

    func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        try await base.retire(key, expiresAt: expiresAt)
    }

    func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        try await base.delete(key, expectedVersion: expectedVersion)
    }

    func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        try await base.rebind(
            key, data: data, owner: owner, details: details, expiresAt: expiresAt, expectedVersion: expectedVersion, now: now)
    }

    func ownedSessions(owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int) async throws -> [OwnedRecord] {
        try await base.ownedSessions(owner: owner, now: now, after: position, limit: limit)
    }

    func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        try await base.deleteOwned(owner: owner, only: only, except: except, limit: limit)
    }

    func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        try await base.trimOwned(owner: owner, keep: keep, now: now)
    }

    func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        let deleted = try await base.deleteExpired(before: before, limit: limit)
        onDeleted(deleted)
        return deleted
    }

    func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        let granted = try await base.acquireCleanupLease(holder: holder, now: now, duration: duration)
        lease.withLock { $0 = granted }
        return granted
    }

    func releaseCleanupLease(holder: String) async throws {
        try await base.releaseCleanupLease(holder: holder)
    }

    func close() async throws {
        try await base.close()
    }
}
