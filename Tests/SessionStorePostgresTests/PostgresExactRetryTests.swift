#if Postgres
import SessionStore
@testable import SessionStorePostgres
import Testing

/// Exact retries: a write whose connection is cut after the server committed it and before
/// the reply arrived (or before the server saw it) reports what actually happened. The
/// backend talks to the test server through a ``CuttingProxy`` that cuts one connection at
/// the chosen statement (its Parse message); the retry runs on a new connection through it.
@Suite("PostgreSQL exact retries")
struct PostgresExactRetryTests {
    private static func record(
        _ text: String, version: Int64 = 1, expiresAt: Int64 = 1_000_000, lastSeen: Int64 = 1_000
    ) -> SessionRecord {
        SessionRecord(data: Array(text.utf8), version: version, createdAt: 1_000, expiresAt: expiresAt, lastSeen: lastSeen)
    }

    /// Checks the cut happened once and cost the call its connection.
    private static func expectOneCut(_ proxy: CuttingProxy, _ backend: PostgresBackend, lostBefore: Int) {
        #expect(proxy.fired == 1, "the proxy cut \(proxy.fired) times")
        #expect(backend.connectionsLost > lostBefore, "the call saw its connection lost")
    }

    @Test func insertWhoseReplyIsLostReportsTheRowCreated() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_insert") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "fresh")
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "INSERT", .replyLost)
            #expect(try await backend.insert(key, Self.record("mine")))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("mine"))
        }
    }

    @Test func insertOfALiveDuplicateWhoseReplyIsLostStillReportsFalse() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_dup") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "taken")
            #expect(try await backend.insert(key, Self.record("first")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "INSERT", .replyLost)
            #expect(try await !backend.insert(key, Self.record("second")))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("first"))
        }
    }

    @Test func updateWhoseReplyIsLostReportsItWrittenOnce() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_update") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "u")
            #expect(try await backend.insert(key, Self.record("v1")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "UPDATE", .replyLost)
            #expect(try await backend.update(key, data: Array("v2".utf8), expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("v2", version: 2, lastSeen: 2_000))
        }
    }

    @Test func updateWhoseRequestIsLostRunsOnceMore() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_update_req") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "u")
            #expect(try await backend.insert(key, Self.record("v1")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "UPDATE", .requestLost)
            #expect(try await backend.update(key, data: Array("v2".utf8), expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("v2", version: 2, lastSeen: 2_000), "applied exactly once")
        }
    }

    @Test func staleUpdateWhoseReplyIsLostStillReportsFalse() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_stale") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "u")
            #expect(try await backend.insert(key, Self.record("v1", version: 3)))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "UPDATE", .replyLost)
            #expect(try await !backend.update(key, data: Array("v2".utf8), expectedVersion: 2, expiresAt: 1_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("v1", version: 3))
        }
    }

    @Test func touchWhoseReplyIsLostReportsTheExpiryMoved() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_touch") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "t")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "UPDATE", .replyLost)
            #expect(try await backend.touch(key, expiresAt: 2_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000)?.expiresAt == 2_000_000)
        }
    }

    @Test func retireWhoseReplyIsLostReportsTheRow() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_retire") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "r")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "version = 0", .replyLost)
            #expect(try await backend.retire(key, expiresAt: 5_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("x", version: 0, expiresAt: 5_000))
        }
    }

    @Test func versionedDeleteWhoseReplyIsLostReportsItDeleted() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_delete") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "d")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "DELETE", .replyLost)
            #expect(try await backend.delete(key, expectedVersion: 1))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == nil)
        }
    }

    @Test func deleteWhoseRequestIsLostRunsOnceMore() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_delete_req") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "d")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "DELETE", .requestLost)
            #expect(try await backend.delete(key, expectedVersion: nil))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == nil)
        }
    }

    @Test func mergeWhoseWriteReplyIsLostAppliesAndReportsOnce() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_merge") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "m")
            #expect(try await backend.insert(key, Self.record("a")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "UPDATE", .replyLost)
            let result = try await backend.merge(key, now: 2_000) { current -> (MergeWrite, String) in
                let text = String(decoding: current?.data ?? [], as: UTF8.self) + "b"
                return (.replace(data: Array(text.utf8), expiresAt: 1_000_000), text)
            }
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(result == "ab")
            #expect(try await backend.load(key, now: 2_000) == Self.record("ab", version: 2, lastSeen: 2_000), "written exactly once")
        }
    }

    @Test func mergeDeleteWhoseReplyIsLostReportsOnce() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_merge_delete") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "m")
            #expect(try await backend.insert(key, Self.record("a")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "DELETE", .replyLost)
            let result = try await backend.merge(key, now: 2_000) { current -> (MergeWrite, Int) in
                (.delete, current == nil ? 0 : 1)
            }
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(result == 1, "the result of the decision whose write committed")
            #expect(try await backend.load(key, now: 2_000) == nil)
        }
    }

    @Test func leaseAcquireWhoseReplyIsLostReportsTheLeaseHeld() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_lease") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.parse, containing: "session_store_lease", .replyLost)
            #expect(try await backend.acquireCleanupLease(holder: "me", now: 1_000, duration: 60_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await !backend.acquireCleanupLease(holder: "other", now: 2_000, duration: 60_000))
        }
    }

    @Test func cleanupBatchWhoseReplyIsLostFailsSayingItMayHaveCommitted() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_cleanup") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            #expect(try await backend.insert(SessionKey(value: "old"), Self.record("x", expiresAt: 1_500)))
            proxy.arm(CuttingProxy.parse, containing: "WITH gone", .replyLost)
            let error = await expectStorageError(.connection) { try await backend.deleteExpired(before: 2_000, limit: 10) }
            #expect(error?.message.contains("may or may not have been committed") == true, "\(String(describing: error))")
            #expect(proxy.fired == 1)
            #expect(try await backend.countExpired(before: 2_000) == 0, "the batch did commit")
        }
    }

    /// The user logs in, the old id's retire commits but its reply is lost; the user keeps
    /// the session under the new id instead of getting an empty one.
    @Test func regenerationWhoseRetireReplyIsLostKeepsTheSession() async throws {
        try await PostgresTestServer.withProxiedBackend("rx_regenerate") { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            var configuration = SessionStoreConfiguration()
            configuration.regenerationGracePeriod = .seconds(10)
            let store = try SessionStore(backend: backend, configuration: configuration)
            var session = store.newSession()
            try session.set("cart", "3 items")
            #expect(try await store.save(&session) == .created)
            var loaded = try await store.load(session.id)
            let oldID = loaded.id
            proxy.arm(CuttingProxy.parse, containing: "version = 0", .replyLost)
            try await store.regenerateID(&loaded)
            #expect(proxy.fired == 1)
            #expect(loaded.id != oldID)
            #expect(try loaded.get("cart", as: String.self) == "3 items")
            #expect(try await store.load(loaded.id).get("cart", as: String.self) == "3 items")
        }
    }
}
#endif
