import SessionStoreCore

enum LifecycleChecks {
    static let all: [ConformanceCheck] = [
        check("regenerating the id keeps the data and kills the old id") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var session = try await fixture.store.load(saved.id)
                try session.set("login", true)
                try await fixture.store.regenerateID(&session)
                try await expect(session.id != saved.id && session.isStored && !session.hasChanges, "new id, stored, nothing pending")
                let moved = try await fixture.store.load(session.id)
                try await expect(try moved.get("user", as: String.self) == "alice", "data moved to the new id")
                try await expect(try moved.get("login", as: Bool.self) == true, "pending changes moved too")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "the old id returns nothing")
            }
        },
        check("after regeneration a request holding the old id cannot write it back") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var inFlight = try await fixture.store.load(saved.id)
                var session = try await fixture.store.load(saved.id)
                try await fixture.store.regenerateID(&session)
                try inFlight.set("late", "write")
                try await expect(try await fixture.store.save(&inFlight) == .gone, "the late save is refused")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "the old id stays dead")
            }
        },
        check("a save that lands during a regeneration moves to the new id") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var session = try await fixture.store.load(saved.id)
                let store = fixture.store
                fixture.backend.interceptNextDelete {
                    var other = try await store.load(saved.id)
                    try other.set("cart", 2)
                    try await expect(try await store.save(&other) == .updated, "the other request's save lands")
                }
                try await fixture.store.regenerateID(&session)
                let moved = try await fixture.store.load(session.id)
                try await expect(try moved.get("cart", as: Int.self) == 2, "the save that landed meanwhile is kept")
                try await expect(try moved.get("user", as: String.self) == "alice", "the data moved")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "the old id is dead")
            }
        },
        check("the old id works during the grace period, read-only, then dies") { database in
            try await withFixture(database, configure: { $0.regenerationGracePeriod = .seconds(5) }) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var session = try await fixture.store.load(saved.id)
                try await fixture.store.regenerateID(&session)
                fixture.clock.advance(by: .seconds(4))
                var old = try await fixture.store.load(saved.id)
                try await expect(old.isStored && (try old.get("user", as: String.self)) == "alice", "old id still reads in grace")
                try await expect(!old.touchedOnLoad, "a retired id is never extended")
                try old.set("x", 1)
                try await expect(try await fixture.store.save(&old) == .gone, "a retired id is never written")
                fixture.clock.advance(by: .seconds(1))
                try await expect(!(try await fixture.store.load(saved.id).isStored), "old id dead after grace")
                try await expect(try await fixture.store.load(session.id).isStored, "new id alive")
            }
        },
        check("regenerating a session that was never stored just changes its id") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                let before = session.id
                try await fixture.store.regenerateID(&session)
                try await expect(session.id != before && !session.isStored, "new id, still not stored")
                try await expect(fixture.backend.writes == 0, "no write")
            }
        },
        check("destroy deletes the row and later saves of it are refused") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var other = try await fixture.store.load(saved.id)
                var session = try await fixture.store.load(saved.id)
                try await fixture.store.destroy(&session)
                try await expect(session.id != saved.id && !session.isStored, "destroy hands back a new session")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "the row is gone")
                try other.set("after", "logout")
                try await expect(try await fixture.store.save(&other) == .gone, "a concurrent request cannot resurrect it")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "still gone")
            }
        },
        check("a shut-down store refuses work with a typed error") { database in
            let fixture = try await Fixture(database)
            let saved = try await fixture.stored()
            try await fixture.close()
            try await expectThrows("load after shutdown", { try await fixture.store.load(saved.id) }) {
                ($0 as? SessionStoreError)?.code == .closed
            }
        },
    ]
}
