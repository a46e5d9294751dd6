import SessionStore

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
        check("ids differing only in letter case are different sessions") { database in
            try await withFixture(database) { fixture in
                var first = try await fixture.stored(["n": "first"])
                // Find an id whose case-swapped form is still a valid id.
                var swapped: SessionID?
                for _ in 0..<64 where swapped == nil {
                    // The last character carries 2 bits only; swap the case of the others.
                    let text = first.id.text
                    let candidate = String(text.dropLast().map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) })
                        + String(text.last!)
                    if candidate != first.id.text, let id = SessionID(validating: candidate) {
                        swapped = id
                    } else {
                        first = try await fixture.stored(["n": "first"])
                    }
                }
                guard let swapped else { throw ConformanceFailure(message: "no case-swappable id found", location: #fileID) }
                let miss = try await fixture.store.load(swapped)
                try await expect(!miss.isStored, "the case-swapped id must not find the session")
                let backend = fixture.backend
                let record = SessionRecord(data: AttributeCodec.encode(["n": Array("\"second\"".utf8)]), version: 1,
                                           createdAt: fixture.clock.now(), expiresAt: fixture.clock.now() + 60_000)
                try await expect(try await backend.insert(SessionKey(swapped), record), "the case-swapped key is a separate row")
                let original = try await fixture.store.load(first.id)
                try await expect(try original.get("n", as: String.self) == "first", "the original row is untouched")
            }
        },
    ]
}
