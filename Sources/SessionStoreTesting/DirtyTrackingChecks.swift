import SessionStoreCore

enum DirtyTrackingChecks {
    static let all: [ConformanceCheck] = [
        check("a new session that stays empty is never written") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try await expect(try await fixture.store.save(&session) == .skipped, "empty new session is skipped")
                try await expect(!session.isStored, "and not stored")
                try await expect(fixture.backend.writes == 0, "no write reached the backend")
                let again = try await fixture.store.load(session.id)
                try await expect(!again.isStored, "no row exists for it")
            }
        },
        check("loading and saving an unchanged session writes nothing") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored()
                fixture.backend.reset()
                var loaded = try await fixture.store.load(saved.id)
                try await expect(try await fixture.store.save(&loaded) == .skipped, "unchanged save is skipped")
                try await expect(fixture.backend.writes == 0, "no write: \(fixture.backend.calls)")
            }
        },
        check("setting an attribute to the value it has is not a change") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var loaded = try await fixture.store.load(saved.id)
                try loaded.set("user", "alice")
                try await expect(!loaded.hasChanges, "same value is no change")
                try await expect(try await fixture.store.save(&loaded) == .skipped, "so nothing is written")
            }
        },
        check("a changed attribute rewrites the data") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice", "theme": "dark"])
                var loaded = try await fixture.store.load(saved.id)
                try loaded.set("theme", "light")
                try await expect(try await fixture.store.save(&loaded) == .updated, "a change is an update")
                try await expect(!loaded.hasChanges, "after saving, nothing is pending")
                let again = try await fixture.store.load(saved.id)
                try await expect(try again.get("theme", as: String.self) == "light", "the new value is stored")
                try await expect(try again.get("user", as: String.self) == "alice", "other attributes are kept")
            }
        },
        check("removing the last attribute deletes the row") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var loaded = try await fixture.store.load(saved.id)
                loaded.remove("user")
                try await expect(try await fixture.store.save(&loaded) == .deleted, "emptied session is deleted")
                let again = try await fixture.store.load(saved.id)
                try await expect(!again.isStored, "the row is gone")
            }
        },
        check("removing an attribute that is not there is not a change") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var loaded = try await fixture.store.load(saved.id)
                loaded.remove("absent")
                try await expect(try await fixture.store.save(&loaded) == .skipped, "nothing to write")
            }
        },
    ]
}
