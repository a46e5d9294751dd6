import SessionStore
@testable import SessionStoreSQLite
import Testing

/// Tables of schema version 2 (the release before session owners) keep being read and
/// written; `upgrade` adds the owner columns and index without touching a row.
@Suite("SQLite owner columns (schema version 3)")
struct SQLiteOwnerSchemaTests {
    /// A version 2 table made with version 2's own statements.
    func makeVersion2Table(_ database: TemporaryDatabase, layout: KeyLayout) throws {
        let old = SQLiteQueries(table: "sessions", layout: layout, version: 2)
        let script = SQLiteQueries.createSchemaTable + ";\n" + old.createTable + ";\n"
            + "INSERT INTO \(SQLiteQueries.schemaTable) VALUES ('sessions', 2, '\(layout.rawValue)');\n"
        try rawScript(database.path, script)
    }

    @Test(arguments: KeyLayout.allCases)
    func aVersion2TableIsReadAndWrittenAndRefusesOwnersUntilUpgraded(layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            try makeVersion2Table(database, layout: layout)
            let backend = try database.open { $0.keyLayout = layout }
            #expect(!backend.queries.hasOwners)
            let store = try SessionStore(backend: backend)
            var session = store.newSession()
            try session.set("cart", 3)
            #expect(try await store.save(&session) == .created)
            var loaded = try await store.load(session.id)
            #expect(try loaded.get("cart", as: Int.self) == 3 && loaded.owner == nil)
            await #expect(throws: StorageError.self) { try await store.logIn(&loaded, owner: "user-1") }
            await #expect(throws: StorageError.self) { try await store.sessions(ownedBy: "user-1") }
            #expect(try await store.load(session.id).isStored, "a refused login wrote nothing and lost nothing")
            try await store.shutdown()
            #expect(try rawSQL(database.path, "SELECT version FROM session_store_schema") == ["2"])
        }
    }

    @Test(arguments: KeyLayout.allCases)
    func upgradingAVersion2TableAddsOwnersAndKeepsEveryRow(layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            try makeVersion2Table(database, layout: layout)
            var ids: [SessionID] = []
            do {
                let store = try SessionStore(backend: try database.open { $0.keyLayout = layout })
                for index in 0..<50 {
                    var session = store.newSession()
                    try session.set("n", index)
                    try await store.save(&session)
                    ids.append(session.id)
                }
                try await store.shutdown()
            }
            let upgrading = try database.open { $0.keyLayout = layout }
            let plan = try await upgrading.pendingMigrations()
            #expect(plan.from == 2 && plan.to == 3 && plan.statements.contains { $0.contains("ADD COLUMN owner") })
            let upgrade = try await upgrading.upgradeSchema()
            #expect(upgrade.from == 2 && upgrade.to == 3)
            await #expect(throws: StorageError.self, "the backend that upgraded must be reopened") {
                try await upgrading.load(SessionKey(value: "x"), now: 0)
            }
            try await upgrading.close()
            #expect(try rawSQL(database.path, "SELECT version FROM session_store_schema") == ["3"])
            let index = try rawSQL(database.path, "SELECT sql FROM sqlite_master WHERE name = 'sessions_owner'").first.flatMap { $0 } ?? ""
            #expect(index.contains("WHERE owner IS NOT NULL"), "a partial owner index: \(index)")

            let backend = try database.open { $0.keyLayout = layout }
            #expect(backend.queries.hasOwners)
            let store = try SessionStore(backend: backend)
            for (index, id) in ids.enumerated() {
                #expect(try await store.load(id).get("n", as: Int.self) == index)
            }
            var session = try await store.load(ids[7])
            try await store.logIn(&session, owner: "user-1", device: SessionDevice(label: "laptop"))
            let page = try await store.sessions(ownedBy: "user-1", current: session)
            #expect(page.sessions.count == 1 && page.sessions[0].isCurrent && page.sessions[0].device.label == "laptop")
            #expect(try await store.revokeAll(ownedBy: "user-1") == 1)
            try await store.shutdown()
            #expect(try rawSQL(database.path, "PRAGMA integrity_check") == ["ok"])
        }
    }
}
