import SessionStore
@testable import SessionStoreMySQL
import Testing

/// Tables of schema version 1 (the release before session owners) keep being read and
/// written; `upgrade` adds the owner columns and index in place.
@Suite("MySQL owner columns (schema version 2)", .mysqlServer)
struct MySQLOwnerSchemaTests {
    @Test func aVersion1TableIsReadAndWrittenThenUpgradedToOwnersKeepingEveryRow() async throws {
        try await MySQLTestServer.withBackend("owners_v1") { creator in
            let configuration = creator.configuration
            let table = configuration.table
            // Replace the version 2 table with one made by version 1's own statements.
            let old = MySQLStatements(table: table, layout: configuration.keyLayout, autoIncrement: false, version: 1)
            try await creator.call("make v1", retry: .again) { connection, _ in
                try connection.run("DROP TABLE `\(table)`")
                try connection.run(old.createTable)
                try connection.run("UPDATE session_store_schema SET version = 1 WHERE name = '\(table)'")
            }
            var ids: [SessionID] = []
            do {
                let backend = try await MySQLBackend(configuration: configuration)
                #expect(!backend.statements.hasOwners)
                let store = try SessionStore(backend: backend)
                for index in 0..<20 {
                    var session = store.newSession()
                    try session.set("n", index)
                    try await store.save(&session)
                    ids.append(session.id)
                }
                var loaded = try await store.load(ids[0])
                await #expect(throws: StorageError.self) { try await store.logIn(&loaded, owner: "user-1") }
                try await store.shutdown()
            }
            let upgrading = try await MySQLBackend(configuration: configuration)
            let upgrade = try await upgrading.upgradeSchema()
            #expect(upgrade.from == 1 && upgrade.to == 2)
            let again = try await upgrading.upgradeSchema()
            #expect(again.from == 2 && again.to == 2, "a second upgrade has nothing to do")
            try await upgrading.close()

            let backend = try await MySQLBackend(configuration: configuration)
            #expect(backend.statements.hasOwners)
            let store = try SessionStore(backend: backend)
            for (index, id) in ids.enumerated() {
                #expect(try await store.load(id).get("n", as: Int.self) == index)
            }
            var session = try await store.load(ids[3])
            try await store.logIn(&session, owner: "user-1", device: SessionDevice(ipAddress: "192.0.2.1"))
            let page = try await store.sessions(ownedBy: "user-1", current: session)
            #expect(page.sessions.count == 1 && page.sessions[0].isCurrent && page.sessions[0].device.ipAddress == "192.0.2.1")
            #expect(try await store.revokeAll(ownedBy: "user-1") == 1)
            try await store.shutdown()
        }
    }
}
