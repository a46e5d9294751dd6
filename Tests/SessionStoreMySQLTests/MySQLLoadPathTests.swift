import Logging
import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// Latency: a load on a warm connection is sent by its caller through Connector/C's
/// non-blocking API and its reply read by the slot's thread, woken by the socket (no job
/// hand-off); these tests pin what that path must keep: timeouts, cancellation, close, and
/// the slot's thread taking over after a failure.
@Suite("MySQL load path", .mysqlServer)
struct MySQLLoadPathTests {
    private static let record = SessionRecord(data: Array("payload".utf8), version: 1, createdAt: 1_000, expiresAt: 1_000_000)

    @Test func loadsOnAWarmConnectionAreSentByTheirCaller() async throws {
        try await MySQLTestServer.withBackend("lp_loop", Self.warmPool) { backend in
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
        try await MySQLTestServer.withProxiedBackend("lp_lost") { backend, proxy in
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
        try await MySQLTestServer.withBackend("lp_stall") { direct in
            let key = SessionKey(value: "stalled")
            #expect(try await direct.insert(key, Self.record))
            // A pool on the same table through a proxy, with a 1 s read timeout (only loads
            // run on it: the table is made and dropped through `direct`, without one).
            var configuration = direct.configuration
            let proxy = try CuttingProxy(targetPort: UInt16(configuration.port))
            defer { proxy.stop() }
            configuration.host = "127.0.0.1"
            configuration.port = Int(proxy.port)
            Self.warmPool(&configuration)
            configuration.queryTimeout = .seconds(1)
            let pool = MySQLPool(configuration: configuration, logger: Logger(label: "test"))
            let sql = direct.statements.load
            let parameters = direct.statements.keyValues(key) + [.int(2_000)]
            func load() async throws -> SessionRecord? {
                try MySQLBackend.record(
                    try await pool.query("load", sql, parameters, columns: direct.statements.recordColumns), sql, operation: "load")
            }
            do {
                #expect(try await load() == Self.record) // prepares the statement on the slot's thread
                let sentBefore = pool.resources.callerSentLoads.load(ordering: .relaxed)
                proxy.arm(CuttingProxy.execute, .stall)
                // The first attempt (sent by the caller) and its retry on a new connection (a
                // job on the slot's thread) both wait out the read timeout.
                let error = await #expect(throws: StorageError.self) { try await load() }
                #expect(error?.kind == .connection, "got \(String(describing: error))")
                #expect(error?.operation == "load")
                #expect(proxy.fired == 2, "both attempts were sent")
                #expect(pool.resources.callerSentLoads.load(ordering: .relaxed) == sentBefore + 1)
                #expect(pool.inUseCount == 0)
                proxy.disarm()
                #expect(try await load() == Self.record, "a new connection serves again")
            } catch {
                await pool.close()
                throw error
            }
            await pool.close()
        }
    }

    @Test func loadCancelledWhileItsReplyIsPendingLeaksNothingAndLeavesTheConnectionClean() async throws {
        try await MySQLTestServer.withBackend("lp_cancel", Self.warmPool) { backend in
            let key = SessionKey(value: "pending")
            #expect(try await backend.insert(key, Self.record))
            _ = try await backend.load(key, now: 2_000)
            let opened = backend.connectionsOpened
            let sent = backend.pool.resources.callerSentLoads.load(ordering: .relaxed)
            let lock = try await TableLock.take(backend.configuration.table)
            let load = Task { try await backend.load(key, now: 2_000) }
            do {
                try await lock.untilALoadWaits()
                load.cancel()
                try await lock.release()
            } catch {
                try? await lock.release()
                throw error
            }
            // A query already sent is read to its end: cancelling the task does not cut it off.
            #expect(try await load.value == Self.record)
            #expect(backend.pool.resources.callerSentLoads.load(ordering: .relaxed) == sent + 1, "sent by its caller")
            #expect(backend.pool.inUseCount == 0)
            #expect(try await backend.load(SessionKey(value: "other"), now: 2_000) == nil, "the next call reads its own reply")
            #expect(try await backend.load(key, now: 2_000) == Self.record)
            #expect(backend.connectionsOpened == opened, "the connection was kept")
        }
    }

    @Test func closeWaitsForALoadWhoseReplyIsPending() async throws {
        var configuration = try MySQLTestServer.configuration(table: "lp_close")
        Self.warmPool(&configuration)
        let backend = try await MySQLBackend(configuration: configuration)
        let key = SessionKey(value: "k")
        #expect(try await backend.insert(key, Self.record))
        _ = try await backend.load(key, now: 2_000)
        let lock = try await TableLock.take(configuration.table)
        let load = Task { try await backend.load(key, now: 2_000) }
        let closing: Task<Void, any Error>
        do {
            try await lock.untilALoadWaits()
            closing = Task { try await backend.close() }
            try await Task.sleep(for: .milliseconds(100))
            #expect(backend.pool.resources.threads.load(ordering: .relaxed) == 1, "the slot's thread waits for the load")
            try await lock.release()
        } catch {
            try? await lock.release()
            throw error
        }
        try await closing.value
        #expect(try await load.value == Self.record, "the load in flight finished")
        #expect(backend.pool.resources.threads.load(ordering: .relaxed) == 0)
        #expect(backend.pool.resources.connections.load(ordering: .relaxed) == 0)
        let cleaner = try await MySQLBackend(configuration: configuration)
        try await MySQLTestServer.drop(cleaner)
        try await cleaner.close()
    }

    /// One pooled connection that is never pinged before a load, so a load is sent by its
    /// caller however long the test took since the last one.
    private static func warmPool(_ configuration: inout MySQLConfiguration) {
        configuration.poolSize = 1
        configuration.healthCheckInterval = .seconds(3600)
    }
}

/// `LOCK TABLES ... WRITE` held by another backend's only connection, so a load's `SELECT` on
/// the table waits for it on the server, its reply pending.
private final class TableLock: Sendable {
    private let table: String
    private let locker: MySQLBackend
    private let watcher: MySQLBackend

    private init(table: String, locker: MySQLBackend, watcher: MySQLBackend) {
        self.table = table
        self.locker = locker
        self.watcher = watcher
    }

    static func take(_ table: String) async throws -> TableLock {
        let locker = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "lp_locker") {
            $0.poolSize = 1
            $0.table = table
        })
        let watcher: MySQLBackend
        do {
            watcher = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "lp_watch") { $0.table = table })
        } catch {
            try? await locker.close()
            throw error
        }
        do {
            try await locker.call("lock", retry: .never) { connection, _ in try connection.run("LOCK TABLES `\(table)` WRITE") }
        } catch {
            try? await locker.close()
            try? await watcher.close()
            throw error
        }
        return TableLock(table: table, locker: locker, watcher: watcher)
    }

    /// Returns once a statement on the table waits for the lock on the server.
    func untilALoadWaits() async throws {
        while true {
            let rows = try await MySQLTestServer.rows(watcher, """
                SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                WHERE STATE LIKE '%metadata lock%' AND INFO LIKE '%\(table)%' AND INFO NOT LIKE '%PROCESSLIST%'
                """)
            if let text = rows.first?.first ?? nil, let count = Int(text), count > 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Unlocks, then closes both backends.
    func release() async throws {
        try await locker.call("unlock", retry: .never) { connection, _ in try connection.run("UNLOCK TABLES") }
        try await locker.close()
        try await watcher.close()
    }
}
