import SessionStore
@testable import SessionStoreMySQL
import Testing

/// Issue 12, latency: a load on a warm connection is sent by its caller through Connector/C's
/// non-blocking API and its reply read by the slot's thread, woken by the socket (no job
/// hand-off); these tests pin what that path must keep: timeouts, cancellation, close, and
/// the slot's thread taking over after a failure.
@Suite("MySQL load path", .mysqlServer)
struct MySQLLoadPathTests {
    private static let record = SessionRecord(data: Array("payload".utf8), version: 1, createdAt: 1_000, expiresAt: 1_000_000)

    /// A backend with one pooled connection through a proxy and a table of its own.
    private static func withProxiedBackend(
        _ prefix: String, _ customize: (inout MySQLConfiguration) -> Void = { _ in },
        _ body: (MySQLBackend, CuttingProxy) async throws -> Void
    ) async throws {
        var configuration = try MySQLTestServer.configuration(table: prefix)
        let proxy = try CuttingProxy(targetPort: UInt16(configuration.port))
        defer { proxy.stop() }
        configuration.host = "127.0.0.1"
        configuration.port = Int(proxy.port)
        configuration.poolSize = 1
        configuration.healthCheckInterval = .seconds(3600)
        customize(&configuration)
        try await MySQLTestServer.withBackend(prefix, { $0 = configuration }) { backend in
            try await body(backend, proxy)
        }
    }

    @Test func loadsOnAWarmConnectionAreSentByTheirCaller() async throws {
        try await MySQLTestServer.withBackend("lp_loop", { $0.poolSize = 1 }) { backend in
            let key = SessionKey(value: "warm")
            #expect(try await backend.insert(key, Self.record))
            _ = try await backend.load(key, now: 2_000) // prepares the statement on the slot's thread
            let before = backend.pool.resources.callerSentLoads.load(ordering: .relaxed)
            for _ in 0..<20 {
                #expect(try await backend.load(key, now: 2_000) == Self.record)
                #expect(try await backend.load(SessionKey(value: "missing"), now: 2_000) == nil)
            }
            #expect(backend.pool.resources.callerSentLoads.load(ordering: .relaxed) - before == 40)
            #expect(backend.connectionsOpened == 1)
        }
    }

    @Test func loadWhoseReplyIsLostRunsAgainOnANewConnection() async throws {
        try await Self.withProxiedBackend("lp_lost") { backend, proxy in
            let key = SessionKey(value: "lost")
            #expect(try await backend.insert(key, Self.record))
            _ = try await backend.load(key, now: 2_000)
            let lost = backend.connectionsLost
            proxy.arm(CuttingProxy.execute, .replyLost)
            #expect(try await backend.load(key, now: 2_000) == Self.record)
            #expect(proxy.fired == 1)
            #expect(backend.connectionsLost == lost + 1, "the cut connection was replaced")
            #expect(backend.pool.inUseCount == 0)
            #expect(try await backend.load(key, now: 2_000) == Self.record)
        }
    }

    @Test func loadFromAServerThatStopsAnsweringTimesOutWithAConnectionError() async throws {
        try await Self.withProxiedBackend("lp_stall", { $0.queryTimeout = .seconds(1) }) { backend, proxy in
            let key = SessionKey(value: "stalled")
            #expect(try await backend.insert(key, Self.record))
            _ = try await backend.load(key, now: 2_000)
            let loopBefore = backend.pool.resources.callerSentLoads.load(ordering: .relaxed)
            proxy.arm(CuttingProxy.execute, .stall)
            // The first attempt (sent by the caller) and its retry on a new connection (a job
            // on the slot's thread) both wait out the read timeout.
            let error = await #expect(throws: StorageError.self) { try await backend.load(key, now: 2_000) }
            #expect(error?.kind == .connection, "got \(String(describing: error))")
            #expect(error?.operation == "load")
            #expect(proxy.fired == 2, "both attempts were sent")
            #expect(backend.pool.resources.callerSentLoads.load(ordering: .relaxed) == loopBefore + 1)
            #expect(backend.pool.inUseCount == 0)
            proxy.disarm()
            #expect(try await backend.load(key, now: 2_000) == Self.record, "a new connection serves again")
        }
    }

    @Test func loadCancelledWhileItsReplyIsPendingLeaksNothingAndLeavesTheConnectionClean() async throws {
        try await MySQLTestServer.withBackend("lp_cancel", { $0.poolSize = 1 }) { backend in
            let key = SessionKey(value: "pending")
            let other = SessionKey(value: "other")
            #expect(try await backend.insert(key, Self.record))
            _ = try await backend.load(key, now: 2_000)
            let opened = backend.connectionsOpened
            let table = backend.configuration.table
            // A second backend's only connection holds the table's write lock: the load's
            // SELECT waits for it on the server, its reply pending.
            let locker = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "lp_locker") {
                $0.poolSize = 1
                $0.table = table
            })
            let watcher = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "lp_watch") {
                $0.table = table
            })
            try await locker.call("lock", retry: .never) { connection, _ in try connection.run("LOCK TABLES `\(table)` WRITE") }
            let load = Task { try await backend.load(key, now: 2_000) }
            var waiting = false
            while !waiting {
                let rows = try await MySQLTestServer.rows(
                    watcher, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%metadata lock%'")
                waiting = rows.first?.first.flatMap { $0.flatMap { Int($0) } }.map { $0 > 0 } ?? false
                if !waiting { try await Task.sleep(for: .milliseconds(10)) }
            }
            load.cancel()
            try await locker.call("unlock", retry: .never) { connection, _ in try connection.run("UNLOCK TABLES") }
            // A query already sent is read to its end: cancelling the task does not cut it off.
            #expect(try await load.value == Self.record)
            #expect(backend.pool.inUseCount == 0)
            #expect(try await backend.load(other, now: 2_000) == nil, "the next call reads its own reply")
            #expect(try await backend.load(key, now: 2_000) == Self.record)
            #expect(backend.connectionsOpened == opened, "the connection was kept")
            try await locker.close()
            try await watcher.close()
        }
    }

    @Test func closeWaitsForALoadWhoseReplyIsPending() async throws {
        let backend = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "lp_close") { $0.poolSize = 1 })
        let key = SessionKey(value: "k")
        #expect(try await backend.insert(key, Self.record))
        _ = try await backend.load(key, now: 2_000)
        let table = backend.configuration.table
        let locker = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "lp_closelock") {
            $0.poolSize = 1
            $0.table = table
        })
        try await locker.call("lock", retry: .never) { connection, _ in try connection.run("LOCK TABLES `\(table)` WRITE") }
        let load = Task { try await backend.load(key, now: 2_000) }
        while backend.pool.resources.callerSentLoads.load(ordering: .relaxed) == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        let closing = Task { try await backend.close() }
        try await Task.sleep(for: .milliseconds(100))
        try await locker.call("unlock", retry: .never) { connection, _ in try connection.run("UNLOCK TABLES") }
        try await closing.value
        #expect(try await load.value == Self.record, "the load in flight finished")
        #expect(backend.pool.resources.threads.load(ordering: .relaxed) == 0)
        #expect(backend.pool.resources.connections.load(ordering: .relaxed) == 0)
        try await MySQLTestServer.drop(locker)
        try await locker.close()
    }
}
