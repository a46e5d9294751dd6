import SessionStore
import SessionStoreTesting
import Testing

@Suite("In-memory backend conformance")
struct InMemoryConformanceTests {
    @Test(arguments: BackendConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        let shared = InMemoryBackend()
        let opened = SharedOpen(backend: shared)
        try await check.run(on: TestDatabase { opened.next() })
    }

    @Test(arguments: BackendConformance.checks)
    func conformanceEncrypted(_ check: ConformanceCheck) async throws {
        let opened = SharedOpen(backend: InMemoryBackend())
        try await check.run(on: TestDatabase { opened.next() }.encrypted())
    }

    /// `StorageBackend.optimisticMerge`, the merge a backend that cannot lock a row builds
    /// from `load` and versioned writes, meets the same contract as a locking merge.
    @Test(arguments: BackendConformance.checks)
    func conformanceWithOptimisticMerge(_ check: ConformanceCheck) async throws {
        let opened = SharedOpen(backend: InMemoryBackend(), optimisticMerge: true)
        try await check.run(on: TestDatabase { opened.next() })
    }
}

/// Several "connections" to one in-memory database: the first open gets the backend,
/// later ones a view that forwards to it (closing a view leaves the data alone).
final class SharedOpen: Sendable {
    let backend: InMemoryBackend
    let optimisticMerge: Bool
    init(backend: InMemoryBackend, optimisticMerge: Bool = false) {
        self.backend = backend
        self.optimisticMerge = optimisticMerge
    }
    func next() -> any StorageBackend { ClosableView(backend, optimisticMerge: optimisticMerge) }
}

/// Forwards to a shared in-memory backend but closes on its own; merges with
/// `optimisticMerge` when asked.
final class ClosableView: StorageBackend {
    let base: InMemoryBackend
    let closed = Closed()
    let optimistic: Bool
    init(_ base: InMemoryBackend, optimisticMerge: Bool = false) {
        self.base = base
        self.optimistic = optimisticMerge
    }

    func open() throws -> InMemoryBackend {
        guard !closed.value else { throw StorageError(kind: .closed, engine: "memory", operation: "view", message: "closed") }
        return base
    }

    func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? { try await open().load(key, now: now) }
    func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool { try await open().insert(key, record) }
    func update(_ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64) async throws -> Bool {
        try await open().update(key, data: data, expectedVersion: expectedVersion, expiresAt: expiresAt, now: now)
    }
    func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64, _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        if optimistic { return try await optimisticMerge(key, now: now, decide) }
        return try await open().merge(key, now: now, decide)
    }
    func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        try await open().touch(key, expiresAt: expiresAt, now: now)
    }
    func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool { try await open().retire(key, expiresAt: expiresAt) }
    func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        try await open().delete(key, expectedVersion: expectedVersion)
    }
    func deleteExpired(before: Int64, limit: Int) async throws -> Int { try await open().deleteExpired(before: before, limit: limit) }
    func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        try await open().rebind(
            key, data: data, owner: owner, details: details, expiresAt: expiresAt, expectedVersion: expectedVersion, now: now)
    }
    func ownedSessions(owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int) async throws -> [OwnedRecord] {
        try await open().ownedSessions(owner: owner, now: now, after: position, limit: limit)
    }
    func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        try await open().deleteOwned(owner: owner, only: only, except: except, limit: limit)
    }
    func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        try await open().trimOwned(owner: owner, keep: keep, now: now)
    }
    func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        try await open().acquireCleanupLease(holder: holder, now: now, duration: duration)
    }
    func releaseCleanupLease(holder: String) async throws { try await open().releaseCleanupLease(holder: holder) }
    func close() async throws { closed.value = true }
}

import Synchronization

final class Closed: Sendable {
    private let flag = Atomic<Bool>(false)
    var value: Bool {
        get { flag.load(ordering: .relaxed) }
        set { flag.store(newValue, ordering: .relaxed) }
    }
}
