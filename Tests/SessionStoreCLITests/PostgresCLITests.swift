#if Postgres
import Foundation
import SessionStoreCore
@testable import SessionStorePostgres
import Testing

/// The test PostgreSQL server: `SESSION_STORE_POSTGRES_URL`, set by `bash .ci/test`. These
/// tests build only with the Postgres trait and fail (never skip) without the server.
enum TestPostgres {
    /// The server's URL with `options` added (e.g. `table=...`).
    static func url(_ options: String) throws -> String {
        let value = ProcessInfo.processInfo.environment["SESSION_STORE_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let base = try #require(value, "SESSION_STORE_POSTGRES_URL not set: run bash .ci/test")
        return base + (base.contains("?") ? "&" : "?") + options
    }

    /// Opens a backend on `table`, runs `body`, closes it (and drops the table when asked).
    static func withBackend<T>(_ table: String, dropping: Bool = false, _ body: (PostgresBackend) async throws -> T) async throws -> T {
        var parsed = try StoreURL(try url("table=\(table)"))
        let backend = try await PostgresBackend(configuration: try PostgresConfiguration(url: &parsed))
        let outcome = await Result { try await body(backend) }
        if dropping {
            try await backend.call("drop", retry: .again) { connection, _ in
                try await PostgresBackend.run(connection, "DROP TABLE IF EXISTS \"\(table)\"")
                _ = try await PostgresBackend.rows(connection, "DELETE FROM session_store_schema WHERE name = $1", [.text(table)])
                _ = try await PostgresBackend.rows(connection, "DELETE FROM session_store_lease WHERE name = $1", [.text(table)])
            }
        }
        try await backend.close()
        return try outcome.get()
    }

    /// Every row of `table`, by key.
    static func allRows(_ table: String) async throws -> [String: SessionRecord] {
        try await withBackend(table) { (backend: PostgresBackend) async throws in
            var rows: [String: SessionRecord] = [:]
            var cursor: SessionKey?
            while true {
                let page = try await backend.storedRows(after: cursor, limit: 2000, liveAt: nil)
                for row in page { rows[row.key.value] = try row.record.get() }
                guard page.count == 2000, let last = page.last else { return rows }
                cursor = last.key
            }
        }
    }
}

@Suite("session-store against the test PostgreSQL server")
struct PostgresCLITests {
    /// SQLite → PostgreSQL → MariaDB → SQLite with the operator CLI: every row arrives
    /// with its key, data, version and times, at every step.
    @Test func copyOf10kSessionsThroughPostgreSQLAndMariaDBAndBackIsIdentical() async throws {
        try await withScratchDirectory { directory async throws in
            let table = TestMariaDB.uniqueTable("pgcopy")
            let source = SQLiteFixture(directory, name: "source.db")
            let final = SQLiteFixture(directory, name: "final.db")
            let ids = try await saveSessions(10_000, at: source.url)
            #expect(ids.count == 10_000)
            let postgres = try TestPostgres.url("table=\(table)")
            let mariadb = try TestMariaDB.url("table=\(table)")
            let outcome = await Result {
                for (from, to) in [(source.url, postgres), (postgres, mariadb), (mariadb, final.url)] {
                    let run = try await CLI.run(["copy", "--json", "--batch", "1000", "--from", from, "--to", to], in: directory)
                    #expect(run.status == 0, "\(run)")
                    let report = try run.json()
                    #expect(report["copied"] as? Int == 10_000, "\(from) -> \(to)")
                    #expect(report["failed"] as? Int == 0)
                }
                let expected = try await allRows(source)
                #expect(expected.count == 10_000)
                #expect(try await TestPostgres.allRows(table) == expected, "PostgreSQL holds the source's rows")
                #expect(try await allRows(final) == expected, "back in SQLite, identical")
            }
            try await TestPostgres.withBackend(table, dropping: true) { _ in }
            try await TestMariaDB.drop(table)
            try outcome.get()
        }
    }

    @Test func statsCheckAndUpgradeOnPostgreSQL() async throws {
        try await withScratchDirectory { directory async throws in
            let table = TestMariaDB.uniqueTable("pgstats")
            let url = try TestPostgres.url("table=\(table)")
            let outcome = await Result {
                let now = nowMilliseconds()
                try await TestPostgres.withBackend(table) { (backend: PostgresBackend) async throws in
                    for index in 0..<30 {
                        let expiresAt = index < 10 ? now - 1_000 : now + 3_600_000 * 48
                        #expect(try await backend.insert(
                            SessionKey(value: "k\(index)"), sessionRecord("u\(index)", createdAt: now - 5_000, expiresAt: expiresAt)))
                    }
                }
                let stats = try await CLI.run(["stats", "--json", url], in: directory)
                #expect(stats.status == 0, "\(stats)")
                let figures = try stats.json()
                #expect(figures["engine"] as? String == "postgres")
                #expect(figures["rows"] as? Int == 30)
                #expect(figures["live"] as? Int == 20)
                #expect(figures["expiredNotCleaned"] as? Int == 10)
                #expect((figures["tableBytes"] as? Int ?? 0) > 0)
                #expect((figures["indexBytes"] as? Int ?? 0) > 0)
                let check = try await CLI.run(["check", url], in: directory)
                #expect(check.status == 0, "\(check)")
                let upgrade = try await CLI.run(["upgrade", url], in: directory)
                #expect(upgrade.status == 0, "\(upgrade)")
            }
            try await TestPostgres.withBackend(table, dropping: true) { _ in }
            try outcome.get()
        }
    }
}
#endif
