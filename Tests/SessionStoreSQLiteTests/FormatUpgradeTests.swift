import Foundation
import SessionStore
@testable import SessionStoreSQLite
import Testing

/// Rows written by the release before attribute format 2 (`Fixtures/format1.db`, made by
/// that release) still load, read as before, and move to format 2 on their next save, so no
/// deployed session is lost on upgrade.
@Suite("Attribute format upgrade")
struct FormatUpgradeTests {
    struct Profile: Codable, Equatable {
        var name: String
        var age: Int
        var tags: [String]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// A store over a copy of the fixture database, and the fixture's session ids by name.
    func withFixtureStore(_ body: (SessionStore, [String: String], TemporaryDatabase) async throws -> Void) async throws {
        try await withTemporaryDatabase { database in
            try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("format1.db").path, toPath: database.path)
            let ids = try JSONDecoder().decode(
                [String: String].self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("format1-ids.json")))
            let store = try SessionStore(backend: try database.open())
            try await body(store, ids, database)
            try await store.shutdown()
        }
    }

    @Test func everyValueOfAFormatOneRowReadsBack() async throws {
        try await withFixtureStore { store, ids, _ in
            let session = try await store.load(id: ids["all-types"])
            #expect(session.isStored)
            #expect(try session.get("string", as: String.self) == "alice ✓")
            #expect(try session.get("int", as: Int.self) == 42)
            #expect(try session.get("negative", as: Int.self) == -7)
            #expect(try session.get("double", as: Double.self) == 3.25)
            #expect(try session.get("bool", as: Bool.self) == true)
            #expect(try session.get("date", as: Date.self) == Date(timeIntervalSince1970: 1_700_000_000.5))
            #expect(try session.get("data", as: Data.self) == Data([0, 1, 2, 255]))
            #expect(try session.get("uuid", as: UUID.self) == UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"))
            #expect(try session.get("strings", as: [String].self) == ["a", "b"])
            #expect(try session.get("counts", as: [String: Int].self) == ["x": 1, "y": 2])
            #expect(try session.get("profile", as: Profile.self) == Profile(name: "bob", age: 30, tags: ["admin"]))
        }
    }

    @Test func aFormatOneRowMovesToFormatTwoOnItsNextSaveKeepingEveryValue() async throws {
        try await withFixtureStore { store, ids, database in
            var session = try await store.load(id: ids["all-types"])
            try session.set("string", "carol")
            #expect(try await store.save(&session) == .updated)
            let stored = try rawSQL(database.path, "SELECT hex(substr(data, 1, 1)) FROM sessions")
            #expect(stored.contains("02"), "the rewritten row is format 2: \(stored)")
            let again = try await store.load(session.id)
            #expect(try again.get("string", as: String.self) == "carol")
            #expect(try again.get("uuid", as: UUID.self) == UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"))
            #expect(try again.get("profile", as: Profile.self)?.tags == ["admin"])
        }
    }

    @Test func anIncrementOfAFormatOneCounterAddsToIt() async throws {
        try await withFixtureStore { store, ids, _ in
            var session = try await store.load(id: ids["counter"])
            #expect(try session.increment("visits") == 6)
            try await store.save(&session)
            #expect(try await store.load(session.id).get("visits", as: Int.self) == 6)
        }
    }
}
