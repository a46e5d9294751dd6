import Synchronization

/// A backend that keeps rows in memory: for tests, prototypes and the conformance suite.
///
/// It honours the full ``StorageBackend`` contract; data is lost when the process ends.
public final class InMemoryBackend: StorageBackend {
    private struct State {
        var rows: [SessionKey: SessionRecord] = [:]
        var lease: (holder: String, expiresAt: Int64)?
        var closed = false

        /// Deletes at most `limit` rows that `matches` accepts; returns how many.
        mutating func removeRows(limit: Int, where matches: (SessionKey, SessionRecord) -> Bool) -> Int {
            var keys: [SessionKey] = []
            for (key, row) in rows {
                if keys.count >= limit { break }
                if matches(key, row) { keys.append(key) }
            }
            for key in keys { rows.removeValue(forKey: key) }
            return keys.count
        }
    }

    private let state = Mutex(State())

    /// An empty backend.
    public init() {}

    /// The number of rows held, expired or not; for tests.
    public var rowCount: Int { state.withLock { $0.rows.count } }

    private func withOpenState<T>(_ operation: String, _ body: (inout State) -> T) throws -> T {
        try state.withLock { state in
            guard !state.closed else {
                throw StorageError(kind: .closed, engine: "memory", operation: operation, message: "backend is closed")
            }
            return body(&state)
        }
    }

    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        try withOpenState("load") { state in
            guard let record = state.rows[key], record.expiresAt > now else { return nil }
            return record
        }
    }

    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        try withOpenState("insert") { state in
            if let existing = state.rows[key], existing.expiresAt > record.createdAt { return false }
            state.rows[key] = record
            return true
        }
    }

    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        try withOpenState("update") { state in
            guard var record = state.rows[key], record.expiresAt > now, record.version == expectedVersion else {
                return false
            }
            record.data = data
            record.version += 1
            record.expiresAt = max(record.expiresAt, expiresAt)
            record.lastSeen = now
            state.rows[key] = record
            return true
        }
    }

    /// Decides and writes under the backend's lock, so no other write can interleave.
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        try state.withLock { state in
            guard !state.closed else {
                throw StorageError(kind: .closed, engine: "memory", operation: "merge", message: "backend is closed")
            }
            let current = state.rows[key].flatMap { $0.expiresAt > now ? $0 : nil }
            let (write, result) = try decide(current)
            guard var record = current else { return result }
            switch write {
            case .none:
                break
            case .replace(let data, let expiresAt):
                record.data = data
                record.version += 1
                record.expiresAt = max(record.expiresAt, expiresAt)
                record.lastSeen = now
                state.rows[key] = record
            case .delete:
                state.rows.removeValue(forKey: key)
            }
            return result
        }
    }

    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        try withOpenState("touch") { state in
            guard var record = state.rows[key], record.expiresAt > now, record.expiresAt < expiresAt else {
                return false
            }
            record.expiresAt = expiresAt
            record.lastSeen = now
            state.rows[key] = record
            return true
        }
    }

    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        try withOpenState("rebind") { state in
            guard var record = state.rows[key], record.expiresAt > now, record.version == expectedVersion else {
                return false
            }
            record.data = data
            record.owner = owner
            record.details = details
            record.version += 1
            record.expiresAt = expiresAt
            record.lastSeen = now
            state.rows[key] = record
            return true
        }
    }

    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        try withOpenState("ownedSessions") { state in
            let newestFirst = state.rows.lazy
                .filter { $0.value.owner == owner && $0.value.expiresAt > now && $0.value.version != 0 }
                .map { OwnedRecord(key: $0.key, createdAt: $0.value.createdAt, lastSeen: $0.value.lastSeen,
                                   expiresAt: $0.value.expiresAt, details: $0.value.details) }
                .sorted { a, b in
                    Self.isOlder(b, than: OwnedRecordPosition(createdAt: a.createdAt, key: a.key))
                }
            let after = newestFirst.drop { row in
                guard let position else { return false }
                return !Self.isOlder(row, than: position)
            }
            return Array(after.prefix(limit))
        }
    }

    /// Whether `row` comes after `position` in newest-first order.
    private static func isOlder(_ row: OwnedRecord, than position: OwnedRecordPosition) -> Bool {
        if row.createdAt != position.createdAt { return row.createdAt < position.createdAt }
        return row.key.value.utf8.lexicographicallyPrecedes(position.key.value.utf8)
    }

    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        try withOpenState("deleteOwned") { state in
            state.removeRows(limit: limit) { key, row in row.owner == owner && (only == nil || key == only) && key != except }
        }
    }

    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        try withOpenState("trimOwned") { state in
            let ranked = state.rows
                .filter { $0.value.owner == owner && $0.value.expiresAt > now && $0.value.version != 0 }
                .sorted { a, b in
                    if a.value.lastSeen != b.value.lastSeen { return a.value.lastSeen > b.value.lastSeen }
                    if a.value.createdAt != b.value.createdAt { return a.value.createdAt > b.value.createdAt }
                    return b.key.value.utf8.lexicographicallyPrecedes(a.key.value.utf8)
                }
            for (key, _) in ranked.dropFirst(keep) { state.rows.removeValue(forKey: key) }
            return max(0, ranked.count - keep)
        }
    }

    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        try withOpenState("retire") { state in
            guard var record = state.rows[key] else { return false }
            record.version = 0
            record.expiresAt = min(record.expiresAt, expiresAt)
            state.rows[key] = record
            return true
        }
    }

    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        try withOpenState("delete") { state in
            guard let record = state.rows[key] else { return false }
            if let expectedVersion, record.version != expectedVersion { return false }
            state.rows.removeValue(forKey: key)
            return true
        }
    }

    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        try withOpenState("deleteExpired") { state in
            state.removeRows(limit: limit) { _, row in row.expiresAt < before }
        }
    }

    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        try withOpenState("acquireCleanupLease") { state in
            if let lease = state.lease, lease.holder != holder, lease.expiresAt > now { return false }
            state.lease = (holder, now + duration)
            return true
        }
    }

    public func releaseCleanupLease(holder: String) async throws {
        try withOpenState("releaseCleanupLease") { state in
            if state.lease?.holder == holder { state.lease = nil }
        }
    }

    /// Marks the backend closed; a second call does nothing.
    public func close() async throws {
        state.withLock { $0.closed = true }
    }
}
