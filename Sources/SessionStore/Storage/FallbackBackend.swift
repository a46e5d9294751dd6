import CoreMetrics

/// Moves a site to a new store without logging anyone out: reads the new backend and, on
/// a miss, a legacy one; writes only to the new one.
///
/// A session found only in the legacy backend is copied into the new one by its first
/// write (a touch, a save or a regeneration). Destroying such a session leaves a
/// tombstone in the new backend, so the legacy copy can never come back. The legacy
/// backend is never written to; drop it once `legacyHits` stays at zero for longer than
/// the idle timeout. Both backends must key rows the same way (same ``IDHashing``).
public final class FallbackBackend: StorageBackend {
    /// Where sessions are read first and all writes go.
    public let primary: any StorageBackend
    /// Read on a miss in ``primary``; never written.
    public let legacy: any StorageBackend
    private let legacyHitCounter: Counter

    /// The version of a tombstone: a session destroyed while it lived only in the legacy
    /// backend.
    static let tombstoneVersion: Int64 = -1

    /// Reads `primary`, then `legacy`.
    /// - Parameters:
    ///   - primary: The new store, which takes every write.
    ///   - legacy: The store a site moves away from; read on a miss, never written.
    ///   - metricsLabel: Prefix of the `legacy_hits_total` counter.
    public init(primary: any StorageBackend, legacy: any StorageBackend, metricsLabel: String = "session_store") {
        self.primary = primary
        self.legacy = legacy
        legacyHitCounter = Counter(label: "\(metricsLabel)_legacy_hits_total")
    }

    /// Loads from the primary; a tombstone there means "destroyed", so the legacy backend is
    /// consulted only when the primary has no row at all.
    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        if let record = try await primary.load(key, now: now) {
            return record.version == Self.tombstoneVersion ? nil : record
        }
        guard let record = try await legacy.load(key, now: now) else { return nil }
        legacyHitCounter.increment()
        return record
    }

    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        try await primary.insert(key, record)
    }

    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        if try await primary.update(key, data: data, expectedVersion: expectedVersion, expiresAt: expiresAt, now: now) {
            return true
        }
        guard let old = try await legacyOnly(key, now: now), old.version == expectedVersion else { return false }
        let copy = SessionRecord(
            data: data, version: expectedVersion + 1, createdAt: old.createdAt, expiresAt: max(old.expiresAt, expiresAt),
            owner: old.owner, details: old.details, lastSeen: now)
        return try await primary.insert(key, copy)
    }

    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        if try await primary.rebind(
            key, data: data, owner: owner, details: details, expiresAt: expiresAt, expectedVersion: expectedVersion, now: now)
        {
            return true
        }
        guard let old = try await legacyOnly(key, now: now), old.version == expectedVersion else { return false }
        let copy = SessionRecord(
            data: data, version: expectedVersion + 1, createdAt: old.createdAt, expiresAt: expiresAt,
            owner: owner, details: details, lastSeen: now)
        return try await primary.insert(key, copy)
    }

    /// Lists the primary's sessions only: a session still only in the legacy backend has
    /// no owner until its first write copies it (binding is a write).
    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        try await primary.ownedSessions(owner: owner, now: now, after: position, limit: limit)
    }

    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        try await primary.deleteOwned(owner: owner, only: only, except: except, limit: limit)
    }

    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        try await primary.trimOwned(owner: owner, keep: keep, now: now)
    }

    /// Merges on the primary; a session that lives only in the legacy backend is decided on
    /// its legacy row and copied into the primary (a tombstone in the primary means gone).
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        while true {
            guard let old = try await legacyOnly(key, now: now) else {
                return try await primary.merge(key, now: now) { current in
                    try decide(current?.version == Self.tombstoneVersion ? nil : current)
                }
            }
            let (write, result) = try decide(old)
            let copy: SessionRecord
            switch write {
            case .none:
                return result
            case .replace(let data, let expiresAt):
                copy = SessionRecord(
                    data: data, version: old.version + 1, createdAt: old.createdAt, expiresAt: max(old.expiresAt, expiresAt),
                    owner: old.owner, details: old.details, lastSeen: now)
            case .delete:
                copy = SessionRecord(data: [], version: Self.tombstoneVersion, createdAt: old.createdAt, expiresAt: old.expiresAt)
            }
            // Lost to a concurrent first write into the primary: decide again on that row.
            if try await primary.insert(key, copy) { return result }
        }
    }

    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        if try await primary.touch(key, expiresAt: expiresAt, now: now) { return true }
        guard var old = try await legacyOnly(key, now: now), old.expiresAt < expiresAt else { return false }
        old.expiresAt = expiresAt
        old.lastSeen = now
        return try await primary.insert(key, old)
    }

    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        if try await primary.retire(key, expiresAt: expiresAt) { return true }
        guard var old = try await legacyOnly(key, now: Int64.min) else { return false }
        old.version = 0
        old.expiresAt = min(old.expiresAt, expiresAt)
        return try await primary.insert(key, old)
    }

    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        if try await primary.delete(key, expectedVersion: expectedVersion) { return true }
        guard let old = try await legacyOnly(key, now: Int64.min) else { return false }
        if let expectedVersion, old.version != expectedVersion { return false }
        let tombstone = SessionRecord(data: [], version: Self.tombstoneVersion, createdAt: old.createdAt, expiresAt: old.expiresAt)
        return try await primary.insert(key, tombstone)
    }

    /// Cleans the primary only; the legacy backend is never written.
    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        try await primary.deleteExpired(before: before, limit: limit)
    }

    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        try await primary.acquireCleanupLease(holder: holder, now: now, duration: duration)
    }

    public func releaseCleanupLease(holder: String) async throws {
        try await primary.releaseCleanupLease(holder: holder)
    }

    /// Closes both backends; the first error is thrown after both were tried.
    public func close() async throws {
        var failure: (any Error)?
        do { try await primary.close() } catch { failure = error }
        do { try await legacy.close() } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    /// The legacy row, when the primary has none at all (live, expired or tombstone).
    private func legacyOnly(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        guard try await primary.load(key, now: Int64.min) == nil else { return nil }
        return try await legacy.load(key, now: now)
    }
}
