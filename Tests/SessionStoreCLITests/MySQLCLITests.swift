import Foundation
import SessionStoreCore
@testable import SessionStoreMySQL
import SessionStoreSQLite
import Testing

/// The test MariaDB: `SESSION_STORE_MYSQL_URL`, set by `bash .ci/test`.
enum TestMariaDB {
    static let url: String? = {
        let value = ProcessInfo.processInfo.environment["SESSION_STORE_MYSQL_URL"]
        return value?.isEmpty == false ? value : nil
    }()

    /// A table name no other test uses.
    static func uniqueTable(_ prefix: String) -> String {
        "t_cli_\(prefix)_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// The server's URL with `options` added (e.g. `table=...`).
    static func url(_ options: String) throws -> String {
        let base = try #require(url, "SESSION_STORE_MYSQL_URL not set: run bash .ci/test")
        return base + (base.contains("?") ? "&" : "?") + options
    }

    /// Runs `body` with a fresh table name, then drops that table and its schema and lease rows.
    static func withTable(_ prefix: String, _ body: (String) async throws -> Void) async throws {
        let table = uniqueTable(prefix)
        let outcome: Result<Void, any Error>
        do {
            try await body(table)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try await drop(table)
        try outcome.get()
    }

    /// Opens a backend on `table`, runs `body`, closes it.
    static func withBackend<T>(
        _ table: String, options: String = "", _ body: (MySQLBackend) async throws -> T
    ) async throws -> T {
        var parsed = try StoreURL(try url("table=\(table)" + (options.isEmpty ? "" : "&" + options)))
        let backend = try await MySQLBackend(configuration: try MySQLConfiguration(url: &parsed))
        let outcome: Result<T, any Error>
        do {
            outcome = .success(try await body(backend))
        } catch {
            outcome = .failure(error)
        }
        try await backend.close()
        return try outcome.get()
    }

    /// Drops `table` through a connection of a backend on a helper table, whatever the
    /// dropped table's layout.
    static func drop(_ table: String) async throws {
        try await withBackend("t_cli_helper") { backend in
            try await backend.call("drop", retry: .again) { connection, _ in
                try connection.run("DROP TABLE IF EXISTS `\(table)`")
                try connection.run("DELETE FROM session_store_schema WHERE name = '\(table)'")
                try connection.run("DELETE FROM session_store_lease WHERE name = '\(table)'")
                // The helper table goes too; a concurrent drop's open creates it again.
                try connection.run("DROP TABLE IF EXISTS t_cli_helper")
                try connection.run("DELETE FROM session_store_schema WHERE name = 't_cli_helper'")
            }
        }
    }
}

extension Trait where Self == ConditionTrait {
    /// The MySQL tests run when the server is configured, and always in CI (where a missing
    /// server then fails them instead of skipping them silently).
    static var testMariaDB: ConditionTrait {
        .enabled(
            if: TestMariaDB.url != nil || ProcessInfo.processInfo.environment["CI"].map { !["", "0", "false"].contains($0.lowercased()) } == true,
            "SESSION_STORE_MYSQL_URL not set: MySQL CLI tests not run; use bash .ci/test")
    }
}

/// Saves `count` sessions through a SQLite store, 16 at a time; returns their ids.
func saveSessions(_ count: Int, at url: String) async throws -> [SessionID] {
    let store = try await SessionStore.open(url, backends: [.sqlite], logger: quietLogger)
    let outcome = await Result { () async throws -> [SessionID] in
        try await withThrowingTaskGroup(of: [SessionID].self) { group in
            for lane in 0..<16 {
                group.addTask {
                    var ids: [SessionID] = []
                    for index in stride(from: lane, to: count, by: 16) {
                        var session = store.newSession()
                        try session.set("user", "user-\(index)")
                        try session.set("index", index)
                        _ = try await store.save(&session)
                        ids.append(session.id)
                    }
                    return ids
                }
            }
            var ids: [SessionID] = []
            for try await lane in group { ids += lane }
            return ids
        }
    }
    try await store.shutdown()
    return try outcome.get()
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}

@Suite("session-store against the test MariaDB", .testMariaDB)
struct MySQLCLITests {
    @Test func schemaApplyCreatesATableTheMySQLStoreOpensWithoutComplaint() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("schema") { table async throws in
                let url = try TestMariaDB.url("table=\(table)&key=crc32")
                let printed = try await CLI.run(["schema", url], in: directory)
                #expect(printed.status == 0, "\(printed)")
                #expect(printed.stdout.contains("CREATE TABLE IF NOT EXISTS `\(table)`"))
                #expect(printed.stdout.contains("PRIMARY KEY (crc32, id)"))
                let applied = try await CLI.run(["schema", "--apply", url], in: directory)
                #expect(applied.status == 0, "\(applied)")
                #expect(applied.stdout.contains("created table \(table)"))
                let store = try await SessionStore.open(url, backends: [.mysql], logger: quietLogger)
                var session = store.newSession()
                try session.set("user", "ada")
                _ = try await store.save(&session)
                #expect(try await store.load(session.id).get("user", as: String.self) == "ada")
                try await store.shutdown()
                let again = try await CLI.run(["schema", "--apply", url], in: directory)
                #expect(again.stdout.contains("already exists (schema version 2, key layout crc32); nothing changed"), "\(again)")
            }
        }
    }

    @Test func statsOnMariaDBCountsKnownTraffic() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("stats") { table async throws in
                let now = nowMilliseconds()
                try await TestMariaDB.withBackend(table) { backend async throws in
                    for index in 0..<6 {
                        #expect(try await backend.insert(
                            SessionKey(value: "expired-\(index)"),
                            sessionRecord("x", createdAt: now - 3 * hour, expiresAt: now - 2 * hour)))
                    }
                    for (bucket, lifetime) in [hour / 2, 5 * hour, 72 * hour, 720 * hour].enumerated() {
                        for index in 0...bucket {
                            #expect(try await backend.insert(
                                SessionKey(value: "live-\(bucket)-\(index)"),
                                sessionRecord("y", createdAt: now - Int64(bucket), expiresAt: now + lifetime)))
                        }
                    }
                    #expect(try await backend.acquireCleanupLease(holder: "app-host-3", now: now, duration: hour))
                }
                let run = try await CLI.run(["stats", "--json", try TestMariaDB.url("table=\(table)")], in: directory)
                #expect(run.status == 0, "\(run)")
                let stats = try run.json()
                #expect(stats["engine"] as? String == "mysql")
                #expect(stats["rows"] as? Int == 16)
                #expect(stats["live"] as? Int == 10)
                #expect(stats["expiredNotCleaned"] as? Int == 6)
                #expect(try #require(stats["expiring"] as? [String: Int]) == ["nextHour": 1, "nextDay": 2, "nextWeek": 3, "later": 4])
                #expect(stats["oldestCreated"] as? Int64 == now - 3 * hour)
                #expect(stats["newestCreated"] as? Int64 == now)
                #expect(stats["schemaVersion"] as? Int == 2)
                #expect((stats["tableBytes"] as? Int ?? 0) > 0)
                let lease = try #require(stats["cleanupLease"] as? [String: Any])
                #expect(lease["holder"] as? String == "app-host-3")
                let text = try await CLI.run(["stats", try TestMariaDB.url("table=\(table)")], in: directory)
                let password = try #require(try StoreURL(try TestMariaDB.url("")).password)
                #expect(!text.stdout.contains(password), "password printed")
                #expect(text.stdout.contains(":***@"))
            }
        }
    }

    @Test func cleanupOnMariaDBDeletesTheExpiredRows() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("cleanup") { table async throws in
                let now = nowMilliseconds()
                try await TestMariaDB.withBackend(table) { backend async throws in
                    for index in 0..<25 {
                        let expiresAt = index < 20 ? now - 2 * hour : now + hour
                        #expect(try await backend.insert(
                            SessionKey(value: "row-\(index)"), sessionRecord("x", createdAt: now - 3 * hour, expiresAt: expiresAt)))
                    }
                }
                let run = try await CLI.run(["cleanup", "--json", "--batch", "6", try TestMariaDB.url("table=\(table)")], in: directory)
                #expect(run.status == 0, "\(run)")
                #expect(try run.json()["deleted"] as? Int == 20)
                let left = try await TestMariaDB.withBackend(table) { try await $0.countExpired(before: Int64.max) }
                #expect(left == 5)
            }
        }
    }

    @Test func checkOnMariaDBFindsACorruptRow() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("check") { table async throws in
                let now = nowMilliseconds()
                try await TestMariaDB.withBackend(table) { backend async throws in
                    #expect(try await backend.insert(SessionKey(value: "good-row"), sessionRecord("x", createdAt: now, expiresAt: now + hour)))
                    let bad = SessionRecord(data: [0x7B, 0x22], version: 1, createdAt: now, expiresAt: now + hour)
                    #expect(try await backend.insert(SessionKey(value: "bad-row-secret"), bad))
                }
                let run = try await CLI.run(["check", "--json", try TestMariaDB.url("table=\(table)")], in: directory)
                #expect(run.status == 1, "\(run)")
                let report = try run.json()
                #expect(report["integrity"] as? [String] == ["ok"])
                #expect(report["rows"] as? Int == 2)
                #expect(report["corrupt"] as? Int == 1)
                #expect(!run.stdout.contains("secret"))
            }
        }
    }

    @Test func copyOf10kSessionsFromSQLiteToMariaDBLoadsEveryOneThroughAMySQLStore() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("copy") { table async throws in
                let source = SQLiteFixture(directory)
                let ids = try await saveSessions(10_000, at: source.url)
                let target = try TestMariaDB.url("table=\(table)")
                let run = try await CLI.run(["copy", "--json", "--batch", "1000", "--from", source.url, "--to", target], in: directory)
                #expect(run.status == 0, "\(run)")
                let report = try run.json()
                #expect(report["copied"] as? Int == 10_000)
                #expect(report["failed"] as? Int == 0)
                // Versions and times as stored in the source, compared before the loads below,
                // which extend the expiry of rows older than the touch interval on a slow machine.
                let expected = try await allRows(source)
                let copied = try await TestMariaDB.withBackend(table) { backend async throws in
                    var rows: [String: SessionRecord] = [:]
                    var cursor: SessionKey?
                    while true {
                        let page = try await backend.storedRows(after: cursor, limit: 2000, liveAt: nil)
                        for row in page { rows[row.key.value] = try row.record.get() }
                        guard page.count == 2000, let last = page.last else { return rows }
                        cursor = last.key
                    }
                }
                #expect(copied == expected)
                let store = try await SessionStore.open(target, backends: [.mysql], logger: quietLogger)
                var found = 0
                for id in ids {
                    let session = try await store.load(id)
                    let index = try #require(try session.get("index", as: Int.self))
                    #expect(try session.get("user", as: String.self) == "user-\(index)")
                    found += 1
                }
                try await store.shutdown()
                #expect(found == 10_000)
            }
        }
    }

    @Test func copyRerunAfterAKillMidwayFinishesTheJob() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("resume") { table async throws in
                let source = SQLiteFixture(directory, options: "key=crc32")
                let now = nowMilliseconds()
                let rows = (0..<10_000).map { index in
                    (key: SessionKey(value: "resume-\(index)-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)),
                     record: sessionRecord("u\(index)", version: Int64(1 + index % 3), createdAt: now - Int64(index), expiresAt: now + 24 * hour))
                }
                let written = try await source.withBackend { backend async throws in
                    try await backend.importRows(rows) { _, _ in false }
                }
                #expect(written == 10_000)
                let target = try TestMariaDB.url("table=\(table)&key=crc32")
                let child = try CLI.Child(
                    // Paced (2000 batches, at least 40 s), so the kill lands midway however slowly
                    // this test's task is scheduled on a loaded machine.
                    ["copy", "--batch", "5", "--pause", "0.02", "--progress-every", "0", "--from", source.url, "--to", target],
                    directory: directory)
                // Kill it once a few batches have been committed.
                while child.process.isRunning, try child.stderrSoFar().split(separator: "\n").count < 5 {
                    try await Task.sleep(for: .milliseconds(5))
                }
                child.kill()
                let killed = try await child.wait()
                #expect(killed.status == -SIGKILL, "the copy finished before the kill: \(killed)")
                let partial = try await TestMariaDB.withBackend(table, options: "key=crc32") { try await $0.countExpired(before: Int64.max) }
                #expect(partial > 0 && partial < 10_000, "\(partial) rows after the kill")
                let rerun = try await CLI.run(["copy", "--json", "--from", source.url, "--to", target], in: directory)
                #expect(rerun.status == 0, "\(rerun)")
                let report = try rerun.json()
                #expect(report["copied"] as? Int == 10_000 - Int(partial))
                #expect(report["skipped"] as? Int == Int(partial))
                let total = try await TestMariaDB.withBackend(table, options: "key=crc32") { try await $0.countExpired(before: Int64.max) }
                #expect(total == 10_000)
            }
        }
    }

    @Test func aRefusedLoginFailsWithoutPrintingThePassword() async throws {
        try await withScratchDirectory { directory async throws in
            let real = try StoreURL(try #require(TestMariaDB.url))
            let user = try #require(real.user)
            let host = try #require(real.host)
            let url = "mysql://\(user):WrongPassw0rd@\(host):\(real.port ?? 3306)/\(real.path)?table=t_cli_refused"
            let run = try await CLI.run(["stats", url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(!run.stdout.contains("WrongPassw0rd") && !run.stderr.contains("WrongPassw0rd"), "\(run)")
            #expect(run.stderr.contains("error:"))
        }
    }

    @Test func upgradeBringsAVersion1MySQLTableToTheCurrentVersion() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("upgrade") { table async throws in
                // The table as release 1 created it: a frozen fixture, so the path from
                // version 1 stays tested whatever the current version becomes.
                try await TestMariaDB.withBackend("t_cli_helper") { backend async throws in
                    try await backend.call("fixture", retry: .again) { connection, _ in
                        try connection.run(
                            "CREATE TABLE `\(table)` (id VARBINARY(64) NOT NULL, data MEDIUMBLOB NOT NULL, "
                                + "version BIGINT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, "
                                + "PRIMARY KEY (id), KEY expires_at (expires_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
                        try connection.run(
                            "INSERT INTO session_store_schema (name, version, key_layout, auto_increment) VALUES ('\(table)', 1, 'id', 0)")
                        try connection.run("INSERT INTO `\(table)` VALUES ('kept', x'01', 4, 1, 9223372036854775807)")
                    }
                }
                let url = try TestMariaDB.url("table=\(table)")
                let dryRun = try await CLI.run(["upgrade", "--dry-run", url], in: directory)
                #expect(dryRun.status == 0, "\(dryRun)")
                let run = try await CLI.run(["upgrade", url], in: directory)
                #expect(run.status == 0, "\(run)")
                let again = try await CLI.run(["upgrade", url], in: directory)
                #expect(again.stdout.contains("the current one; nothing to do"), "\(again)")
                let check = try await CLI.run(["check", "--json", url], in: directory)
                #expect(check.status == 0, "\(check)")
                let report = try check.json()
                #expect(report["schemaVersion"] as? Int == report["currentSchemaVersion"] as? Int)
                let kept = try await TestMariaDB.withBackend(table) { try await $0.load(SessionKey(value: "kept"), now: 2) }
                #expect(kept?.version == 4)
            }
        }
    }

    @Test func copyFromMariaDBToASQLiteFileKeepsEveryRow() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("back") { table async throws in
                let now = nowMilliseconds()
                try await TestMariaDB.withBackend(table, options: "key=crc32") { backend async throws in
                    for index in 0..<300 {
                        #expect(try await backend.insert(
                            SessionKey(value: "row-\(index)"),
                            sessionRecord("v\(index)", version: Int64(1 + index % 4), createdAt: now - Int64(index), expiresAt: now + hour)))
                    }
                }
                let target = SQLiteFixture(directory, options: "key=crc32")
                let run = try await CLI.run(
                    ["copy", "--json", "--batch", "64", "--from", try TestMariaDB.url("table=\(table)&key=crc32"), "--to", target.url],
                    in: directory)
                #expect(run.status == 0, "\(run)")
                #expect(try run.json()["copied"] as? Int == 300)
                let copied = try await allRows(target)
                #expect(copied.count == 300)
                #expect(copied["row-7"] == sessionRecord("v7", version: 4, createdAt: now - 7, expiresAt: now + hour))
            }
        }
    }

    @Test func cleanupOnMariaDBDoesNotRunWhileAnotherHostHoldsTheLease() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("lease") { table async throws in
                let now = nowMilliseconds()
                try await TestMariaDB.withBackend(table) { backend async throws in
                    #expect(try await backend.insert(
                        SessionKey(value: "old"), sessionRecord("x", createdAt: now - 3 * hour, expiresAt: now - 2 * hour)))
                    #expect(try await backend.acquireCleanupLease(holder: "app-host-4", now: now, duration: hour))
                }
                let run = try await CLI.run(["cleanup", try TestMariaDB.url("table=\(table)")], in: directory)
                #expect(run.status == 1, "\(run)")
                #expect(run.stderr.contains("held by app-host-4"))
                let left = try await TestMariaDB.withBackend(table) { try await $0.countExpired(before: Int64.max) }
                #expect(left == 1)
            }
        }
    }
}
