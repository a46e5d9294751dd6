import SessionStoreCore

struct Profile: Codable, Equatable, Sendable {
    var name: String
    var roles: [String]
    var visits: Int
}

enum DataChecks {
    static let all: [ConformanceCheck] = [
        check("typed Codable attributes round-trip") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                let profile = Profile(name: "Zoë 🚀", roles: ["admin", "ops"], visits: 42)
                try session.set("profile", profile)
                try session.set("ratio", 0.25)
                try session.set("bytes", [UInt8](repeating: 0, count: 300))
                try await expect(try await fixture.store.save(&session) == .created, "created")
                let loaded = try await fixture.store.load(session.id)
                try await expect(try loaded.get("profile", as: Profile.self) == profile, "struct round-trips")
                try await expect(try loaded.get("ratio", as: Double.self) == 0.25, "double round-trips")
                try await expect(try loaded.get("bytes", as: [UInt8].self)?.count == 300, "array round-trips")
                try await expect(try loaded.get("missing", as: Int.self) == nil, "absent attribute is nil")
            }
        },
        check("reading an attribute as the wrong type is a typed error") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                let loaded = try await fixture.store.load(saved.id)
                try await expectThrows("wrong type", { try loaded.get("user", as: Int.self) }) {
                    ($0 as? SessionStoreError)?.code == .attributeCoding && ($0 as? SessionStoreError)?.attribute == "user"
                }
            }
        },
        check("a corrupt row is a typed error, or a new session under the lenient policy") { database in
            let clock = ManualClock()
            let strict = try await Fixture(database, clock: clock)
            let lenient = try await Fixture(database, clock: clock, configure: { $0.corruptDataPolicy = .startNewSession })
            let corruptions: [[UInt8]] = [
                [], [1, 5, 0x61], [1, 1, 0x61, 9, 1], [0x7B, 0x22], [1, 1, 0xFF, 0],
                [1, 1, 0x61, 0, 1, 0x61, 0], [1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                [2, 1, 0x61, 2, 9, 0], [2, 1, 0x61, 0],  // format 2: an unknown value tag, an empty value
            ]
            for data in corruptions {
                let id = SessionID.generate()
                let record = SessionRecord(data: data, version: 1, createdAt: clock.now(), expiresAt: clock.now() + 60_000)
                try await expect(try await strict.backend.insert(strict.store.storageKey(for: id), record), "raw row inserted")
                try await expectThrows("corrupt row \(data)", { try await strict.store.load(id) }) {
                    ($0 as? SessionStoreError)?.code == .corruptData
                }
                let fresh = try await lenient.store.load(id)
                try await expect(!fresh.isStored && fresh.id != id, "lenient policy hands out a new session")
            }
            try await strict.close()
            try await lenient.close()
        },
        check("a row from a future format version is reported as such") { database in
            try await withFixture(database) { fixture in
                let id = SessionID.generate()
                let now = fixture.clock.now()
                let future = AttributeCodec.formatVersion + 1
                let record = SessionRecord(data: [future, 1, 0x61, 1, 0x31], version: 1, createdAt: now, expiresAt: now + 60_000)
                _ = try await fixture.backend.insert(fixture.store.storageKey(for: id), record)
                try await expectThrows("future format", { try await fixture.store.load(id) }) {
                    ($0 as? SessionStoreError)?.code == .unsupportedFormat
                }
            }
        },
        check("an oversized session is refused with a clear error and nothing is written") { database in
            try await withFixture(database, configure: { $0.maxDataSize = 1024 }) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var session = try await fixture.store.load(saved.id)
                try session.set("blob", String(repeating: "x", count: 2000))
                try await expectThrows("too large", { try await fixture.store.save(&session) }) {
                    ($0 as? SessionStoreError)?.code == .dataTooLarge
                }
                let stored = try await fixture.store.load(saved.id)
                try await expect(stored.keys == ["user"], "the stored session is unchanged")
                var fresh = fixture.store.newSession()
                try fresh.set("blob", String(repeating: "x", count: 2000))
                try await expectThrows("too large when new", { try await fixture.store.save(&fresh) }) {
                    ($0 as? SessionStoreError)?.code == .dataTooLarge
                }
                try await expect(!(try await fixture.store.load(fresh.id).isStored), "no row for the refused session")
            }
        },
        check("a session of 60 KiB with many attributes round-trips") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                for index in 0..<200 { try session.set("key\(index)", String(repeating: "v", count: 290) + "\(index)") }
                try await expect(try await fixture.store.save(&session) == .created, "created")
                let loaded = try await fixture.store.load(session.id)
                try await expect(loaded.keys.count == 200, "all attributes back")
                try await expect(try loaded.get("key199", as: String.self)?.hasSuffix("199") == true, "values intact")
            }
        },
    ]
}
