import Foundation
import SessionStoreCore
import SessionStoreSQLite
import Testing

@Suite("session-store schema and upgrade (SQLite)")
struct SchemaCLITests {
    @Test func schemaPrintsStatementsThatCreateATableTheStoreOpens() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory, options: "table=web_sessions&key=crc32")
            let run = try await CLI.run(["schema", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("CREATE TABLE IF NOT EXISTS web_sessions"))
            #expect(run.stdout.contains("(slot INTEGER PRIMARY KEY, crc32 INTEGER NOT NULL, id TEXT NOT NULL"))
            #expect(run.stdout.contains("INSERT INTO session_store_schema"))
            #expect(!FileManager.default.fileExists(atPath: fixture.path), "printing must not create the database")
            // What a DBA does with the output: run it by hand, then start the app.
            try runScript(fixture.path, run.stdout)
            let store = try await SessionStore.open(fixture.url, backends: [.sqlite], logger: quietLogger)
            var session = store.newSession()
            try session.set("user", "ada")
            _ = try await store.save(&session)
            let loaded = try await store.load(session.id)
            #expect(try loaded.get("user", as: String.self) == "ada")
            try await store.shutdown()
        }
    }

    @Test func schemaApplyCreatesATableTheStoreOpensWithoutComplaint() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let run = try await CLI.run(["schema", "--apply", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("created table sessions"))
            let store = try await SessionStore.open(fixture.url, backends: [.sqlite], logger: quietLogger)
            var session = store.newSession()
            try session.set("n", 1)
            _ = try await store.save(&session)
            #expect(try await store.load(session.id).get("n", as: Int.self) == 1)
            try await store.shutdown()
        }
    }

    @Test func schemaApplyOnAnExistingTableChangesNothing() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let first = try await CLI.run(["schema", "--apply", fixture.url], in: directory)
            #expect(first.status == 0, "\(first)")
            let second = try await CLI.run(["schema", "--apply", fixture.url], in: directory)
            #expect(second.status == 0, "\(second)")
            #expect(second.stdout.contains("already exists (schema version 3, key layout id); nothing changed"))
            #expect(try rawSQL(fixture.path, "SELECT count(*) FROM session_store_schema") == ["1"])
        }
    }

    @Test func schemaApplyRefusesATableTheStoreDidNotCreate() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try runScript(fixture.path, "CREATE TABLE sessions (id TEXT PRIMARY KEY, payload TEXT)")
            let run = try await CLI.run(["schema", "--apply", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("exists but was not created by the session store"))
        }
    }

    /// The table as release 1 created it: a frozen fixture, so the upgrade path from
    /// version 1 stays tested whatever the current version becomes.
    static let version1Schema = """
        CREATE TABLE session_store_schema (table_name TEXT PRIMARY KEY, version INTEGER NOT NULL, key_layout TEXT NOT NULL);
        CREATE TABLE session_store_lease (table_name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
        CREATE TABLE sessions (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX sessions_expires ON sessions (expires_at);
        INSERT INTO session_store_schema (table_name, version, key_layout) VALUES ('sessions', 1, 'id');
        """

    @Test func upgradeBringsAVersion1TableToTheCurrentVersionAndKeepsItsSessions() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try runScript(fixture.path, Self.version1Schema)
            let now = nowMilliseconds()
            let key = SessionKey(value: "kept-session-key")
            try runScript(
                fixture.path,
                "INSERT INTO sessions VALUES ('kept-session-key', x'01', 3, \(now), \(now + hour))")
            let run = try await CLI.run(["upgrade", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            let check = try await CLI.run(["check", "--json", fixture.url], in: directory)
            #expect(check.status == 0, "\(check)")
            let report = try check.json()
            #expect(report["schemaVersion"] as? Int == report["currentSchemaVersion"] as? Int)
            let record = try await fixture.withBackend { try await $0.load(key, now: now) }
            #expect(record?.version == 3)
        }
    }

    @Test func upgradeTwiceDoesNothingTheSecondTime() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try runScript(fixture.path, Self.version1Schema)
            #expect(try await CLI.run(["upgrade", fixture.url], in: directory).status == 0)
            let again = try await CLI.run(["upgrade", fixture.url], in: directory)
            #expect(again.status == 0, "\(again)")
            #expect(again.stdout.contains("the current one; nothing to do"))
        }
    }

    @Test func upgradeDryRunChangesNothing() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try runScript(fixture.path, Self.version1Schema)
            let before = try rawSQL(fixture.path, "SELECT sql FROM sqlite_master ORDER BY name")
            let run = try await CLI.run(["upgrade", "--dry-run", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(try rawSQL(fixture.path, "SELECT sql FROM sqlite_master ORDER BY name") == before)
            #expect(try rawSQL(fixture.path, "SELECT version FROM session_store_schema") == ["1"])
            #expect(run.stdout.contains("DROP INDEX IF EXISTS sessions_expires;"), "the dry run lists the index drop: \(run)")
        }
    }

    @Test func upgradeFromVersion1RebuildsTheTableKeyedBySlotWithoutTheExpiryIndex() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try runScript(fixture.path, Self.version1Schema)
            let run = try await CLI.run(["upgrade", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(try rawSQL(fixture.path, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'") == ["sessions_owner"])
            #expect(try rawSQL(fixture.path, "SELECT version FROM session_store_schema") == ["3"])
            let table = try rawSQL(fixture.path, "SELECT sql FROM sqlite_master WHERE name = 'sessions'").first.flatMap { $0 } ?? ""
            #expect(table.contains("slot INTEGER PRIMARY KEY") && !table.contains("WITHOUT ROWID"), "\(table)")
            #expect(try rawSQL(fixture.path, "SELECT count(*) FROM sqlite_master WHERE name = 'sessions_slotted'") == ["0"])
        }
    }

    @Test func upgradeRefusesATableNewerThanThisRelease() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try runScript(fixture.path, Self.version1Schema)
            try runScript(fixture.path, "UPDATE session_store_schema SET version = 99")
            let run = try await CLI.run(["upgrade", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("version 99"))
        }
    }
}
