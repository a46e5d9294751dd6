import SessionStoreCore
import SessionStoreSQLite
import Testing

@Suite("Opening a store from one configuration string")
struct OpenByURLTests {
    @Test("a sqlite URL opens a working store with the URL's policy")
    func opensSQLite() async throws {
        try await withTemporaryDatabase { database in
            let store = try await SessionStore.open(
                "sqlite://\(database.path)?idle_timeout=10m&synchronous=full&table=web_sessions", backends: [.sqlite])
            #expect(store.configuration.idleTimeout == .seconds(600))
            var session = store.newSession()
            try session.set("user", "alice")
            #expect(try await store.save(&session) == .created)
            #expect(try await store.load(session.id).get("user", as: String.self) == "alice")
            try await store.shutdown()
        }
    }

    @Test("an unknown option fails the open and names the option")
    func unknownOption() async throws {
        try await withTemporaryDatabase { database in
            await #expect {
                _ = try await SessionStore.open("sqlite://\(database.path)?synchronus=full", backends: [.sqlite])
            } throws: { error in
                (error as? SessionStoreError)?.code == .invalidConfiguration && "\(error)".contains("synchronus")
            }
        }
    }

    @Test("a fallback URL reads sessions from the legacy SQLite file and writes only the new one")
    func fallback() async throws {
        try await withTemporaryDatabase { legacyDatabase in
            try await withTemporaryDatabase { newDatabase in
                let old = try await SessionStore.open("sqlite://\(legacyDatabase.path)", backends: [.sqlite])
                var session = old.newSession()
                try session.set("user", "alice")
                try await old.save(&session)
                try await old.shutdown()

                let encoded = "sqlite://\(legacyDatabase.path)".replacingOccurrences(of: "/", with: "%2F")
                    .replacingOccurrences(of: ":", with: "%3A")
                let store = try await SessionStore.open(
                    "sqlite://\(newDatabase.path)?fallback=\(encoded)", backends: [.sqlite])
                var loaded = try await store.load(session.id)
                #expect(try loaded.get("user", as: String.self) == "alice")
                try loaded.set("cart", 1)
                #expect(try await store.save(&loaded) == .updated)
                try await store.shutdown()

                let newOnly = try await SessionStore.open("sqlite://\(newDatabase.path)", backends: [.sqlite])
                #expect(try await newOnly.load(session.id).get("cart", as: Int.self) == 1, "copied into the new file")
                try await newOnly.shutdown()
                let legacyOnly = try await SessionStore.open("sqlite://\(legacyDatabase.path)", backends: [.sqlite])
                #expect(try await legacyOnly.load(session.id).get("cart", as: Int.self) == nil, "legacy file untouched")
                try await legacyOnly.shutdown()
            }
        }
    }
}
