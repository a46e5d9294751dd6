import SessionStoreCore

enum ExpiryChecks {
    static let all: [ConformanceCheck] = [
        check("an expired session is never returned, cleaned or not") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored()
                fixture.clock.advance(by: .seconds(1800))
                let loaded = try await fixture.store.load(saved.id)
                try await expect(!loaded.isStored && loaded.isEmpty, "expired at exactly the idle timeout")
                try await expect(loaded.id != saved.id, "a new id replaces the expired one")
            }
        },
        check("a session in use within the idle timeout stays alive") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored()
                for _ in 0..<10 {
                    fixture.clock.advance(by: .seconds(1000))
                    let loaded = try await fixture.store.load(saved.id)
                    try await expect(loaded.isStored, "read-only use keeps the session alive")
                }
            }
        },
        check("reads extend a session only once per touch interval") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored()
                fixture.backend.reset()
                for _ in 0..<30 {
                    fixture.clock.advance(by: .seconds(1))
                    let loaded = try await fixture.store.load(saved.id)
                    try await expect(!loaded.touchedOnLoad, "no touch within the touch interval")
                }
                try await expect(fixture.backend.calls["touch"] == nil, "no touch write in 30 s")
                fixture.clock.advance(by: .seconds(31))
                let loaded = try await fixture.store.load(saved.id)
                try await expect(loaded.touchedOnLoad, "touched once the interval passed")
                try await expect(loaded.expiresAt == fixture.clock.now() + 1_800_000, "expiry moved to now + idle timeout")
                try await expect(fixture.backend.calls["touch"] == 1, "exactly one touch")
                try await expect(fixture.backend.calls["update"] == nil, "a touch is not a data rewrite")
            }
        },
        check("the absolute lifetime ends a session however active") { database in
            try await withFixture(database, configure: { $0.absoluteLifetime = .seconds(3600) }) { fixture in
                let saved = try await fixture.stored()
                for _ in 0..<5 {
                    fixture.clock.advance(by: .seconds(700))
                    let loaded = try await fixture.store.load(saved.id)
                    try await expect(loaded.isStored, "alive before the absolute lifetime")
                    try await expect(loaded.expiresAt! <= saved.createdAt! + 3_600_000, "never extended past the lifetime")
                }
                fixture.clock.advance(by: .seconds(101))
                let loaded = try await fixture.store.load(saved.id)
                try await expect(!loaded.isStored, "gone after the absolute lifetime")
            }
        },
        check("without an idle timeout the absolute lifetime alone decides and reads never write") { database in
            try await withFixture(database, configure: { $0.idleTimeout = nil; $0.absoluteLifetime = .seconds(600) }) { fixture in
                let saved = try await fixture.stored()
                fixture.backend.reset()
                fixture.clock.advance(by: .seconds(599))
                try await expect(try await fixture.store.load(saved.id).isStored, "alive just before the lifetime")
                try await expect(fixture.backend.writes == 0, "no touch when it could not extend")
                fixture.clock.advance(by: .seconds(1))
                try await expect(!(try await fixture.store.load(saved.id).isStored), "gone at the lifetime")
            }
        },
        check("a touch never moves expiry backwards") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored()
                let key = fixture.store.storageKey(for: saved.id)
                let now = fixture.clock.now()
                let later = now + 10_000_000
                try await expect(try await fixture.backend.touch(key, expiresAt: later, now: now), "forward touch applies")
                try await expect(!(try await fixture.backend.touch(key, expiresAt: now + 5_000, now: now)), "backward touch is refused")
                let record = try await fixture.backend.load(key, now: now)
                try await expect(record?.expiresAt == later, "expiry kept at the later value")
            }
        },
        check("a save of changed data extends the expiry") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored()
                fixture.clock.advance(by: .seconds(10))
                var loaded = try await fixture.store.load(saved.id)
                try loaded.set("x", 1)
                try await expect(try await fixture.store.save(&loaded) == .updated, "updated")
                let record = try await fixture.backend.load(fixture.store.storageKey(for: saved.id), now: fixture.clock.now())
                try await expect(record?.expiresAt == fixture.clock.now() + 1_800_000, "expiry is now + idle timeout")
            }
        },
    ]
}
