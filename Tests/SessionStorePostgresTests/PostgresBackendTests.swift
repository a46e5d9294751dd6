#if Postgres
import Foundation
import PostgresNIO
import SessionStoreCore
@testable import SessionStorePostgres
import Testing

/// PostgreSQL-specific behaviour beyond the conformance suite: bounded cleanup, schema
/// versions, error classification with SQLSTATEs, the statement timeout, the lease, the
/// Unix socket form.
@Suite("PostgreSQL backend")
struct PostgresBackendTests {
    private static func record(_ text: String, version: Int64 = 1, expiresAt: Int64 = 1_000_000) -> SessionRecord {
        SessionRecord(data: Array(text.utf8), version: version, createdAt: 1_000, expiresAt: expiresAt)
    }

    @Test func cleanupDeletesInBatchesOfAtMostTheLimit() async throws {
        try await PostgresTestServer.withBackend("batches") { (backend: PostgresBackend) async throws in
            let table = backend.configuration.table
            // 2,500 expired rows and 10 live ones, written in one statement each.
            try await PostgresTestServer.execute(backend, """
                INSERT INTO "\(table)" (id, data, version, created_at, expires_at)
                SELECT 'e' || n, '\\x00'::bytea, 1, 1, 5000 FROM generate_series(1, 2500) n RETURNING 1
                """)
            try await PostgresTestServer.execute(backend, """
                INSERT INTO "\(table)" (id, data, version, created_at, expires_at)
                SELECT 'l' || n, '\\x00'::bytea, 1, 1, 900000 FROM generate_series(1, 10) n RETURNING 1
                """)
            #expect(try await backend.deleteExpired(before: 10_000, limit: 1_000) == 1_000)
            #expect(try await backend.deleteExpired(before: 10_000, limit: 1_000) == 1_000)
            #expect(try await backend.deleteExpired(before: 10_000, limit: 1_000) == 500)
            #expect(try await backend.deleteExpired(before: 10_000, limit: 1_000) == 0)
            #expect(try await backend.countExpired(before: 1_000_000) == 10, "live rows were kept")
        }
    }

    @Test func cleanupSkipsARowAWriterHoldsLocked() async throws {
        try await PostgresTestServer.withBackend("skiplocked") { (backend: PostgresBackend) async throws in
            let key = SessionKey(value: "held")
            #expect(try await backend.insert(key, Self.record("x", expiresAt: 5_000)))
            let holder = try await Self.connect()
            defer { Task { try await holder.close() } }
            try await holder.query("BEGIN", logger: Self.logger)
            try await holder.query(PostgresQuery(unsafeSQL: "SELECT 1 FROM \"\(backend.configuration.table)\" WHERE id = 'held' FOR UPDATE"), logger: Self.logger)
            // The batch neither waits for the writer's lock nor deletes the row under it.
            #expect(try await backend.deleteExpired(before: 10_000, limit: 1_000) == 0)
            try await holder.query("ROLLBACK", logger: Self.logger)
            #expect(try await backend.deleteExpired(before: 10_000, limit: 1_000) == 1)
        }
    }

    @Test func openRefusesATableOfANewerSchemaVersion() async throws {
        try await PostgresTestServer.withBackend("newer") { (backend: PostgresBackend) async throws in
            let table = backend.configuration.table
            try await PostgresTestServer.execute(backend, "UPDATE session_store_schema SET version = 99 WHERE name = $1 RETURNING 1", [.text(table)])
            let error = await expectStorageError(.schema) { try await PostgresBackend(configuration: backend.configuration) }
            #expect(error?.message.contains("schema version 99") == true)
            await expectStorageError(.schema) { try await backend.pendingMigrations() }
        }
    }

    @Test func backendsOpeningOneNewTableAtOnceAllSucceed() async throws {
        let configuration = try PostgresTestServer.configuration(table: "together")
        let backends = try await withThrowingTaskGroup(of: PostgresBackend.self) { group in
            for _ in 0..<6 { group.addTask { try await PostgresBackend(configuration: configuration) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(backends.count == 6)
        #expect(try await backends[0].recordedSchema()?.version == 1)
        try await PostgresTestServer.drop(backends[0])
        for backend in backends { try await backend.close() }
    }

    @Test func wrongPasswordIsAnAccessErrorWithItsSQLState() async throws {
        var configuration = try PostgresTestServer.configuration(table: "auth")
        configuration.password = "wrong"
        let error = await expectStorageError(.access) { try await PostgresBackend(configuration: configuration) }
        #expect(error?.message.contains("SQLSTATE 28P01") == true)
        #expect(error?.description.contains("wrong") == false, "the password is never shown")
    }

    @Test func missingDatabaseIsAnAccessError() async throws {
        var configuration = try PostgresTestServer.configuration(table: "nodb")
        configuration.database = "no_such_database"
        let error = await expectStorageError(.access) { try await PostgresBackend(configuration: configuration) }
        #expect(error?.message.contains("3D000") == true)
    }

    @Test func unreachableServerIsAConnectionError() async throws {
        var configuration = try PostgresTestServer.configuration(table: "down")
        configuration.port = 1
        await expectStorageError(.connection) { try await PostgresBackend(configuration: configuration) }
    }

    @Test func tooLongTableNameIsAConfigurationError() async throws {
        var configuration = try PostgresTestServer.configuration(table: "long")
        configuration.table = String(repeating: "t", count: 56)
        await #expect(throws: SessionStoreError.self) { try await PostgresBackend(configuration: configuration) }
    }

    @Test func statementTimeoutEndsALockWaitAsBusyNamingTheStatementNotTheID() async throws {
        try await PostgresTestServer.withBackend("timeout") { (creator: PostgresBackend) async throws in
            // The table exists before the timed backend opens, so its open runs no DDL that
            // could wait behind other tests' schema changes past the timeout.
            var timed = creator.configuration
            timed.statementTimeout = .milliseconds(300)
            let backend = try await PostgresBackend(configuration: timed)
            let key = SessionKey(value: "locked-session-id")
            #expect(try await backend.insert(key, Self.record("x")))
            let holder = try await Self.connect()
            defer { Task { try await holder.close() } }
            try await holder.query("BEGIN", logger: Self.logger)
            try await holder.query(
                PostgresQuery(unsafeSQL: "SELECT 1 FROM \"\(backend.configuration.table)\" WHERE id = 'locked-session-id' FOR UPDATE"),
                logger: Self.logger)
            let error = await expectStorageError(.busy) {
                try await backend.update(key, data: [1], expectedVersion: 1, expiresAt: 1_000_000, now: 2_000)
            }
            #expect(error?.message.contains("SQLSTATE 57014") == true)
            #expect(error?.statement?.hasPrefix("UPDATE") == true)
            #expect(error?.description.contains("locked-session-id") == false)
            try await holder.query("ROLLBACK", logger: Self.logger)
            #expect(try await backend.update(key, data: [1], expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))
            try await backend.close()
        }
    }

    @Test func serializationFailuresAndDeadlocksAreRetriedOthersAreNot() {
        #expect(PostgresFailure.classify(sqlState: "40001") == (.busy, .rolledBack))
        #expect(PostgresFailure.classify(sqlState: "40P01") == (.busy, .rolledBack))
        #expect(PostgresFailure.classify(sqlState: "57014") == (.busy, .none))
        #expect(PostgresFailure.classify(sqlState: "57P01") == (.connection, .lostConnection))
        #expect(PostgresFailure.classify(sqlState: "08006") == (.connection, .lostConnection))
        #expect(PostgresFailure.classify(sqlState: "28000") == (.access, .none))
        #expect(PostgresFailure.classify(sqlState: "53100") == (.full, .none))
        #expect(PostgresFailure.classify(sqlState: "25006") == (.readOnly, .none))
        #expect(PostgresFailure.classify(sqlState: "XX001") == (.corrupt, .none))
        #expect(PostgresFailure.classify(sqlState: "22001") == (.other, .none))
    }

    @Test func deadlockBetweenTwoMergesIsResolvedByARetry() async throws {
        // Two transactions lock two rows in opposite orders; the server aborts one with
        // 40P01, the backend runs it again, and both complete.
        try await PostgresTestServer.withBackend("deadlock") { (backend: PostgresBackend) async throws in
            let table = backend.configuration.table
            for id in ["a", "b"] { #expect(try await backend.insert(SessionKey(value: id), Self.record(id))) }
            let lockBoth = { @Sendable (first: String, second: String) async throws in
                try await backend.call("test", retry: .never) { connection, _ in
                    try await PostgresBackend.transaction(connection) {
                        _ = try await PostgresBackend.rows(connection, "SELECT 1 FROM \"\(table)\" WHERE id = $1 FOR UPDATE", [.text(first)])
                        _ = try await PostgresBackend.rows(connection, "SELECT pg_sleep(0.3)", [])
                        _ = try await PostgresBackend.rows(connection, "UPDATE \"\(table)\" SET version = version + 1 WHERE id = $1 RETURNING 1", [.text(second)])
                    }
                }
            }
            async let one: Void = lockBoth("a", "b")
            async let two: Void = lockBoth("b", "a")
            _ = try await (one, two)
            #expect(try await backend.load(SessionKey(value: "a"), now: 2_000)?.version == 2)
            #expect(try await backend.load(SessionKey(value: "b"), now: 2_000)?.version == 2)
        }
    }

    @Test func leaseIsExclusiveUntilItLapsesOrIsReleased() async throws {
        try await PostgresTestServer.withBackend("lease") { (backend: PostgresBackend) async throws in
            #expect(try await backend.acquireCleanupLease(holder: "one", now: 1_000, duration: 10_000))
            #expect(try await !backend.acquireCleanupLease(holder: "two", now: 2_000, duration: 10_000))
            #expect(try await backend.acquireCleanupLease(holder: "one", now: 3_000, duration: 10_000), "the holder renews")
            #expect(try await backend.acquireCleanupLease(holder: "two", now: 13_001, duration: 10_000), "lapsed")
            try await backend.releaseCleanupLease(holder: "one") // not its lease: no change
            #expect(try await !backend.acquireCleanupLease(holder: "one", now: 14_000, duration: 10_000))
            try await backend.releaseCleanupLease(holder: "two")
            #expect(try await backend.acquireCleanupLease(holder: "one", now: 14_000, duration: 10_000))
        }
    }

    @Test func callsAfterCloseThrowClosedAndASecondCloseDoesNothing() async throws {
        let backend = try await PostgresBackend(configuration: try PostgresTestServer.configuration(table: "closed"))
        try await PostgresTestServer.drop(backend)
        try await backend.close()
        try await backend.close()
        await expectStorageError(.closed) { try await backend.load(SessionKey(value: "x"), now: 1) }
        await expectStorageError(.closed) { try await backend.insert(SessionKey(value: "x"), Self.record("x")) }
    }

    @Test func closeWaitsForTheCallsInFlight() async throws {
        let backend = try await PostgresBackend(configuration: try PostgresTestServer.configuration(table: "inflight"))
        try await PostgresTestServer.drop(backend)
        let slow = Task { try await PostgresTestServer.execute(backend, "SELECT pg_sleep(0.5)") }
        try await Task.sleep(for: .milliseconds(100))
        try await backend.close()
        #expect(try await slow.value == 1, "the call in flight finished")
    }

    @Test func unixSocketURLOpensTheSameDatabase() async throws {
        let socket = try PostgresTestServer.variable("SESSION_STORE_POSTGRES_SOCKET")
        var tcp = try PostgresTestServer.configuration(table: "socket")
        var url = try StoreURL("postgres://\(tcp.user)@localhost/\(tcp.database)?socket=\(socket)&table=\(tcp.table)")
        let viaSocket = try await PostgresBackend(configuration: try PostgresConfiguration(url: &url))
        tcp.table = viaSocket.configuration.table
        let viaTCP = try await PostgresBackend(configuration: tcp)
        #expect(try await viaSocket.insert(SessionKey(value: "s"), Self.record("over the socket")))
        #expect(try await viaTCP.load(SessionKey(value: "s"), now: 2_000) == Self.record("over the socket"))
        try await PostgresTestServer.drop(viaTCP)
        try await viaTCP.close()
        try await viaSocket.close()
    }

    @Test func adminOperationsReportTheTable() async throws {
        try await PostgresTestServer.withBackend("admin") { (backend: PostgresBackend) async throws in
            for index in 0..<5 {
                #expect(try await backend.insert(SessionKey(value: "k\(index)"), Self.record("\(index)", expiresAt: index < 2 ? 1_500 : 1_000_000)))
            }
            #expect(try await backend.retire(SessionKey(value: "k4"), expiresAt: 900_000))
            let figures = try await backend.tableFigures(now: 2_000)
            #expect(figures.rows == 5)
            #expect(figures.live == 3)
            #expect(figures.retired == 1)
            #expect(figures.schemaVersion == 1)
            #expect(figures.keyLayout == "id")
            #expect((figures.tableBytes ?? 0) > 0)
            #expect((figures.indexBytes ?? 0) > 0)
            #expect(try await backend.integrityCheck() == ["ok"])
            #expect(try await backend.countExpired(before: 2_000) == 2)
            let first = try await backend.storedRows(after: nil, limit: 3, liveAt: nil)
            #expect(first.map(\.key.value) == ["k0", "k1", "k2"])
            let rest = try await backend.storedRows(after: first.last?.key, limit: 3, liveAt: nil)
            #expect(rest.map(\.key.value) == ["k3", "k4"])
            #expect(try await backend.storedRows(after: nil, limit: 10, liveAt: 2_000).count == 3)
            let written = try await backend.importRows(
                [(SessionKey(value: "k0"), Self.record("newer", version: 9)), (SessionKey(value: "n"), Self.record("new"))],
                replaceIf: { stored, copy in copy.version > stored.version })
            #expect(written == 2)
            #expect(try await backend.load(SessionKey(value: "k0"), now: 1_000)?.version == 9)
            let plan = try await backend.pendingMigrations()
            #expect(plan.from == 1 && plan.to == 1 && plan.statements.isEmpty)
            #expect(try await backend.upgradeSchema() == (1, 1))
        }
    }

    @Test func applySchemaCreatesTheTableOnceAndRefusesAForeignTable() async throws {
        let configuration = try PostgresTestServer.configuration(table: "apply")
        #expect(try await PostgresBackend.applySchema(for: configuration) == nil)
        let again = try await PostgresBackend.applySchema(for: configuration)
        #expect(again?.version == 1)
        let backend = try await PostgresBackend(configuration: configuration)
        try await PostgresTestServer.execute(backend, "DELETE FROM session_store_schema WHERE name = $1 RETURNING 1", [.text(configuration.table)])
        await expectStorageError(.schema) { try await PostgresBackend.applySchema(for: configuration) }
        try await PostgresTestServer.drop(backend)
        try await backend.close()
    }

    // MARK: - Helpers

    static let logger = Logger(label: "test")

    /// A connection of its own to the test server, outside any backend's pool.
    static func connect() async throws -> PostgresConnection {
        let configuration = try PostgresTestServer.configuration(table: "unused")
        return try await PostgresConnection.connect(
            configuration: try configuration.connectionConfiguration(), id: 99, logger: logger)
    }
}
#endif
