#if Postgres
import Foundation
import Logging
import SessionStore
@testable import SessionStorePostgres
import Testing

/// Kills and restarts a server while a backend uses it. Each test has a private server
/// (`.ci/postgres.sh start` in a directory of its own), so the suites sharing
/// `SESSION_STORE_POSTGRES_URL` never see the restart.
@Suite("PostgreSQL restart and crash", .serialized)
struct PostgresRestartTests {
    static let quiet = Logger(label: "postgres-restart") { _ in SwiftLogNoOpLogHandler() }

    static func startServer(plain: Bool = false) async throws -> PrivateServer {
        _ = try PostgresTestServer.variable(PrivateServer.Engine.postgres.controlVariable)
        return try await step("starting a private server") { try await onThread { try PrivateServer.start(.postgres, plain: plain) } }
    }

    /// SIGKILL of the postmaster under a saving load (`fsync=on`, `synchronous_commit` at
    /// its default `on`): no save reported successful is lost, and the same backend serves
    /// again once the server is back, without being reopened. Every call is bounded on the
    /// client side (`query_timeout`, `pool_timeout`, `connect_timeout`), so no load task
    /// waits forever on a connection the crash left unanswered.
    @Test func killedPostmasterLosesNoReportedSaveAndThePoolRecovers() async throws {
        let server = try await Self.startServer()
        defer { server.stop() }
        var url = try StoreURL(server.url + "?pool=4&statement_timeout=5s")
        let backend = try await PostgresBackend(configuration: try PostgresConfiguration(url: &url), logger: Self.quiet)
        let settings = try await backend.call("settings", retry: .again) { connection, _ in
            try await PostgresBackend.rows(connection, "SELECT current_setting('fsync'), current_setting('synchronous_commit')", [])
                .map { try $0.decode((String, String).self) }
        }
        // Committed means durable only when the WAL is flushed at every commit.
        #expect(settings.first?.0 == "on" && settings.first?.1 == "on", "fsync, synchronous_commit: \(settings)")
        try await CrashUnderLoad(
            engine: "PostgreSQL", tasks: 8, poolSize: 4,
            durability: "fsync=\(settings.first?.0 ?? "?") synchronous_commit=\(settings.first?.1 ?? "?")",
            callsInFlightFail: false
        ).run(backend: backend, server: server, logger: Self.quiet)
        try await backend.close()
    }

    /// Two independent servers stand for a primary and the standby promoted in its place
    /// (same user, password and table): with both in the URL, the backend keeps saving
    /// when the first stops, without being reopened.
    @Test func severalHostsFailOverToTheNextWhenTheFirstStops() async throws {
        let first = try await Self.startServer()
        defer { first.stop() }
        let second = try await Self.startServer()
        defer { second.stop() }
        var firstURL = try StoreURL(first.url + "?pool=2")
        let firstOnly = try PostgresConfiguration(url: &firstURL)
        var secondURL = try StoreURL(second.url + "?pool=2")
        var secondOnly = try PostgresConfiguration(url: &secondURL)
        // The table on both, and the first server's password on the second too.
        let onSecond = try await PostgresBackend(configuration: secondOnly, logger: Self.quiet)
        let password = try #require(firstOnly.password)
        #expect(password.allSatisfy { $0.isLetter || $0.isNumber }, "the password is spliced into ALTER ROLE")
        try await PostgresTestServer.execute(onSecond, "ALTER ROLE \"\(secondOnly.user)\" PASSWORD '\(password)'")
        secondOnly.password = password
        let onFirst = try await PostgresBackend(configuration: firstOnly, logger: Self.quiet)

        var both = firstOnly
        both.hosts = firstOnly.hosts + secondOnly.hosts
        let backend = try await PostgresBackend(configuration: both, logger: Self.quiet)
        let record = SessionRecord(data: Array("v".utf8), version: 1, createdAt: 1_000, expiresAt: 1_000_000)
        let before = SessionKey(value: "before")
        #expect(try await backend.insert(before, record))
        #expect(try await onFirst.load(before, now: 2_000) == record, "saved on the first host")
        #expect(try await onSecond.load(before, now: 2_000) == nil)
        #expect(backend.pool.hosts.opened(on: 1) == 0, "nothing went to the second host while the first was up")

        _ = try await onThread { try first.kill() }
        // The same backend, not reopened: saves go on, to the second host.
        for index in 0..<20 {
            let key = SessionKey(value: "after\(index)")
            #expect(try await backend.insert(key, record))
            #expect(try await onSecond.load(key, now: 2_000) == record, "saved on the second host")
        }
        #expect(backend.pool.hosts.opened(on: 1) > 0)
        #expect(try await backend.load(before, now: 2_000) == nil, "loads are served by the second host")
        try await backend.close()
        try await onSecond.close()
        try await onFirst.close()
    }

    @Test func backendRecoversAfterServerRestartWithoutBeingReopened() async throws {
        let server = try await Self.startServer()
        defer { server.stop() }
        var url = try StoreURL(server.url + "?pool=3")
        let backend = try await PostgresBackend(configuration: try PostgresConfiguration(url: &url), logger: Self.quiet)
        let key = SessionKey(value: "survivor")
        let record = SessionRecord(data: Array("kept".utf8), version: 1, createdAt: 1_000, expiresAt: 1_000_000)
        #expect(try await backend.insert(key, record))
        // Several pooled connections, idle when the server dies.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 { group.addTask { _ = try await PostgresTestServer.execute(backend, "SELECT pg_sleep(0.05)") } }
            try await group.waitForAll()
        }

        // A statement that is not run again (like a cleanup batch) in flight when the server
        // dies fails with .connection, saying a write may have been committed.
        let inFlight = Task {
            try await backend.call("test", retry: .never) { connection, _ in
                try await PostgresBackend.run(connection, "SELECT pg_sleep(30)")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await onThread { try server.kill() }
        let failure = await expectStorageError(.connection) { try await inFlight.value }
        #expect(failure?.message.contains("may or may not have been committed") == true, "\(String(describing: failure))")

        // While the server stays down, a call tries to connect a few times, then fails with
        // .connection rather than hang.
        await expectStorageError(.connection) { try await backend.load(key, now: 2_000) }

        // Once it is back, the same backend serves again, and the committed row survived.
        try await onThread { try server.startAgain() }
        #expect(try await backend.load(key, now: 2_000) == record)
        #expect(try await backend.update(key, data: Array("after".utf8), expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))

        // A second crash and restart with several pooled connections: every one is replaced.
        _ = try await onThread { try PrivateServer.run(server.control, "restart", server.directory) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask { () async throws in
                    let loaded = try await backend.load(key, now: 2_000)
                    #expect(loaded?.version == 2)
                }
            }
            try await group.waitForAll()
        }
        #expect(try await backend.touch(key, expiresAt: 2_000_000, now: 2_000))
        try await backend.close()
    }
}
#endif
