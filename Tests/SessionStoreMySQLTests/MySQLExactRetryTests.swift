import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// Exact retries: a write whose connection is cut after the server committed it
/// and before the reply arrived (or before the server saw it) reports what actually
/// happened. The backend talks to the test server through a ``CuttingProxy`` that cuts one
/// connection at the chosen command; the retry runs on a new connection through it.
@Suite("MySQL exact retries", .mysqlServer)
struct MySQLExactRetryTests {
    private static func record(
        _ text: String, version: Int64 = 1, expiresAt: Int64 = 1_000_000, lastSeen: Int64 = 1_000
    ) -> SessionRecord {
        SessionRecord(data: Array(text.utf8), version: version, createdAt: 1_000, expiresAt: expiresAt, lastSeen: lastSeen)
    }

    /// Checks the cut happened once and cost the connection.
    private static func expectOneCut(_ proxy: CuttingProxy, _ backend: MySQLBackend, lostBefore: Int) {
        #expect(proxy.fired == 1, "the proxy cut \(proxy.fired) times")
        #expect(backend.connectionsLost > lostBefore, "the connection was replaced")
    }

    @Test func insertWhoseReplyIsLostReportsTheRowCreated() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_insert") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "fresh")
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await backend.insert(key, Self.record("mine")))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("mine"))
        }
    }

    @Test func insertOfALiveDuplicateWhoseReplyIsLostStillReportsFalse() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_dup") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "taken")
            #expect(try await backend.insert(key, Self.record("first")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await !backend.insert(key, Self.record("second")))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("first"))
        }
    }

    @Test func updateWhoseReplyIsLostReportsItWritten() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_update") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "u")
            #expect(try await backend.insert(key, Self.record("v1")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await backend.update(key, data: Array("v2".utf8), expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("v2", version: 2, lastSeen: 2_000))
        }
    }

    @Test func updateWhoseRequestIsLostRunsOnceMore() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_update_req") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "u")
            #expect(try await backend.insert(key, Self.record("v1")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .requestLost)
            #expect(try await backend.update(key, data: Array("v2".utf8), expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("v2", version: 2, lastSeen: 2_000), "applied exactly once")
        }
    }

    @Test func staleUpdateWhoseReplyIsLostStillReportsFalse() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_stale") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "u")
            #expect(try await backend.insert(key, Self.record("v1", version: 3)))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await !backend.update(key, data: Array("v2".utf8), expectedVersion: 2, expiresAt: 1_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("v1", version: 3))
        }
    }

    @Test func touchWhoseReplyIsLostReportsTheExpiryMoved() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_touch") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "t")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await backend.touch(key, expiresAt: 2_000_000, now: 2_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000)?.expiresAt == 2_000_000)
        }
    }

    @Test func retireWhoseReplyIsLostReportsTheRow() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_retire") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "r")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await backend.retire(key, expiresAt: 5_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == Self.record("x", version: 0, expiresAt: 5_000))
        }
    }

    @Test func retireOfAMissingRowWhoseReplyIsLostStillReportsFalse() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_retire_missing") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await !backend.retire(SessionKey(value: "missing"), expiresAt: 5_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
        }
    }

    @Test func versionedDeleteWhoseCommitReplyIsLostReportsItDeleted() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_delete") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "d")
            #expect(try await backend.insert(key, Self.record("x")))
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.query, containing: "COMMIT", .replyLost)
            #expect(try await backend.delete(key, expectedVersion: 1))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await backend.load(key, now: 2_000) == nil)
        }
    }

    @Test func deleteOfAMissingRowWhoseCommitReplyIsLostStillReportsFalse() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_delete_missing") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.query, containing: "COMMIT", .replyLost)
            #expect(try await !backend.delete(SessionKey(value: "missing"), expectedVersion: nil))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
        }
    }

    @Test func mergeWhoseWriteReplyIsLostAppliesAndReportsOnce() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_merge") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "m")
            #expect(try await backend.insert(key, Self.record("a")))
            let lost = backend.connectionsLost
            // The merge's read, then its write: the write's reply is lost.
            proxy.arm(CuttingProxy.execute, skip: 1, .replyLost)
            let result = try await backend.merge(key, now: 2_000) { current -> (MergeWrite, String) in
                let text = String(decoding: current?.data ?? [], as: UTF8.self) + "b"
                return (.replace(data: Array(text.utf8), expiresAt: 1_000_000), text)
            }
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(result == "ab")
            #expect(try await backend.load(key, now: 2_000) == Self.record("ab", version: 2, lastSeen: 2_000), "written exactly once")
        }
    }

    /// Other writes land between the merge's optimistic reads and writes until it takes the
    /// row lock; the locked transaction's COMMIT reply is then lost.
    @Test func lockedMergeWhoseCommitReplyIsLostAppliesAndReportsOnce() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_merge_locked") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "m")
            #expect(try await backend.insert(key, Self.record("a")))
            var direct = try MySQLTestServer.configuration(table: "unused")
            direct.table = backend.configuration.table
            let interferer = Interferer(direct, table: direct.table)
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.query, containing: "COMMIT", .replyLost)
            let result = try await backend.merge(key, now: 2_000) { current -> (MergeWrite, String) in
                // The first two decisions (the optimistic attempts) see another write land.
                try interferer.interfere()
                let text = String(decoding: current?.data ?? [], as: UTF8.self) + "b"
                return (.replace(data: Array(text.utf8), expiresAt: 1_000_000), text)
            }
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(interferer.decisions == 3, "two optimistic attempts, then the locked one")
            // "a" plus two interfering "x" writes, then the merge's "b", once, at version 4.
            #expect(result == "axxb")
            #expect(try await backend.load(key, now: 2_000) == Self.record("axxb", version: 4, lastSeen: 2_000))
        }
    }

    @Test func leaseAcquireWhoseReplyIsLostReportsTheLeaseHeld() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_lease") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await backend.acquireCleanupLease(holder: "me", now: 1_000, duration: 60_000))
            Self.expectOneCut(proxy, backend, lostBefore: lost)
            #expect(try await !backend.acquireCleanupLease(holder: "other", now: 2_000, duration: 60_000))
        }
    }

    @Test func cleanupBatchWhoseReplyIsLostFailsSayingItMayHaveCommitted() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_cleanup") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            #expect(try await backend.insert(SessionKey(value: "old"), Self.record("x", expiresAt: 1_500)))
            proxy.arm(CuttingProxy.execute, .replyLost)
            let error = await expectStorageError(.connection) { try await backend.deleteExpired(before: 2_000, limit: 10) }
            #expect(error?.message.contains("may or may not have been committed") == true, "\(String(describing: error))")
            #expect(proxy.fired == 1)
            #expect(try await backend.load(SessionKey(value: "old"), now: 1_000) == nil, "the batch did commit")
        }
    }

    /// The case: the user logs in, the old id's retire commits but its reply is lost;
    /// the user keeps the session under the new id instead of getting an empty one.
    @Test func regenerationWhoseRetireReplyIsLostKeepsTheSession() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_regenerate") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            var configuration = SessionStoreConfiguration()
            configuration.regenerationGracePeriod = .seconds(10)
            let store = try SessionStore(backend: backend, configuration: configuration)
            var session = store.newSession()
            try session.set("cart", "3 items")
            #expect(try await store.save(&session) == .created)
            var loaded = try await store.load(session.id)
            let oldID = loaded.id
            // regenerateID: load the old row, insert the new one, retire the old: cut the retire.
            proxy.arm(CuttingProxy.execute, skip: 2, .replyLost)
            try await store.regenerateID(&loaded)
            #expect(proxy.fired == 1)
            #expect(loaded.id != oldID)
            #expect(try loaded.get("cart", as: String.self) == "3 items")
            #expect(try await store.load(loaded.id).get("cart", as: String.self) == "3 items")
        }
    }

    /// The same with no grace period: the old row is deleted at the version copied, and the
    /// delete's COMMIT reply is lost.
    @Test func regenerationWhoseDeleteCommitReplyIsLostKeepsTheSession() async throws {
        try await MySQLTestServer.withProxiedBackend("rx_regenerate0") { (backend: MySQLBackend, proxy: CuttingProxy) async throws in
            var configuration = SessionStoreConfiguration()
            configuration.regenerationGracePeriod = .zero
            let store = try SessionStore(backend: backend, configuration: configuration)
            var session = store.newSession()
            try session.set("cart", "3 items")
            #expect(try await store.save(&session) == .created)
            var loaded = try await store.load(session.id)
            let oldID = loaded.id
            proxy.arm(CuttingProxy.query, containing: "COMMIT", .replyLost)
            try await store.regenerateID(&loaded)
            #expect(proxy.fired == 1)
            #expect(loaded.id != oldID)
            #expect(try await store.load(loaded.id).get("cart", as: String.self) == "3 items")
            #expect(try await !store.load(oldID).isStored, "the old id is gone")
        }
    }
}

/// Writes to the merged row from a connection of its own, inside the first two merge
/// decisions, so the merge's optimistic writes lose.
private final class Interferer: @unchecked Sendable { // used by one merge, on its worker thread
    private let configuration: MySQLConfiguration
    private let table: String
    private(set) var decisions = 0
    private var connection: MySQLConnection?

    init(_ configuration: MySQLConfiguration, table: String) {
        self.configuration = configuration
        self.table = table
    }

    func interfere() throws {
        decisions += 1
        guard decisions <= 2 else { return }
        if connection == nil { connection = try MySQLConnection(configuration) }
        try connection?.run("UPDATE `\(table)` SET data = CONCAT(data, 'x'), version = version + 1 WHERE id = 'm'")
    }
}
