import SessionStoreCore

enum IdentityChecks {
    static let all: [ConformanceCheck] = [
        check("malformed ids give a new session without any database work") { database in
            try await withFixture(database) { fixture in
                let hostile = [
                    "", "short", String(repeating: "A", count: 23), String(repeating: "A", count: 1_000_000),
                    "' OR '1'='1' -- aaaaaaaa", "AAAAAAAAAAAAAAAAAAAA\u{0}A", "AAAAAAAAAAAAAAAAAAAAA+",
                    "AAAAAAAAAAAAAAAAAAAAA/", "AAAAAAAAAAAAAAAAAAAAAB", "ÄAAAAAAAAAAAAAAAAAAAA",
                    "AAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAA%A",
                ]
                for text in hostile {
                    let session = try await fixture.store.load(id: text)
                    try await expect(!session.isStored && session.isEmpty, "malformed id yields an empty new session")
                    try await expect(session.id.text != text, "a malformed id is never adopted")
                }
                try await expect(fixture.backend.calls.isEmpty, "no backend call for malformed ids, got \(fixture.backend.calls)")
            }
        },
        check("an unknown well-formed id gives a new session with a new id") { database in
            try await withFixture(database) { fixture in
                let unknown = SessionID.generate()
                let session = try await fixture.store.load(id: unknown.text)
                try await expect(!session.isStored, "unknown id is not stored")
                try await expect(session.id != unknown, "the client's unknown id is never adopted")
            }
        },
        check("a missing cookie gives a new session and no database work") { database in
            try await withFixture(database) { fixture in
                let session = try await fixture.store.load(id: nil)
                try await expect(!session.isStored, "no id, no stored session")
                try await expect(fixture.backend.calls.isEmpty, "no backend call without an id")
            }
        },
        check("a stored session loads by its id with its data") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice", "role": "admin"])
                let loaded = try await fixture.store.load(id: saved.id.text)
                try await expect(loaded.id == saved.id, "same id")
                try await expect(try loaded.get("user", as: String.self) == "alice", "attribute user survives")
                try await expect(try loaded.get("role", as: String.self) == "admin", "attribute role survives")
            }
        },
    ]
}
