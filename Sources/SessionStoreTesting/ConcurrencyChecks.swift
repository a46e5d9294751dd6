import SessionStore

enum ConcurrencyChecks {
    static let all: [ConformanceCheck] = [
        check("32 concurrent requests changing different attributes lose no update") { database in
            try await withFixture(database, configure: { $0.maxConflictRetries = 64 }) { fixture in
                let saved = try await fixture.stored(["base": "yes"])
                let id = saved.id
                try await withThrowingTaskGroup(of: SaveOutcome.self) { group in
                    for index in 0..<32 {
                        group.addTask {
                            var session = try await fixture.store.load(id)
                            try session.set("k\(index)", index)
                            return try await fixture.store.save(&session)
                        }
                    }
                    for try await outcome in group {
                        try await expect(outcome == .updated, "every request's save lands, got \(outcome)")
                    }
                }
                let final = try await fixture.store.load(id)
                for index in 0..<32 {
                    try await expect(try final.get("k\(index)", as: Int.self) == index, "attribute k\(index) present")
                }
                try await expect(try final.get("base", as: String.self) == "yes", "untouched attribute kept")
            }
        },
        check("concurrent changes to one attribute: the last save to commit wins, nothing else is lost") { database in
            try await withFixture(database, configure: { $0.maxConflictRetries = 64 }) { fixture in
                let saved = try await fixture.stored(["counter": "start", "keep": "me"])
                let id = saved.id
                // Load all first, so every save but one starts from a stale version.
                var sessions = [Session]()
                for _ in 0..<16 { sessions.append(try await fixture.store.load(id)) }
                var lastWritten = ""
                for (index, var session) in sessions.enumerated() {
                    try session.set("counter", "writer \(index)")
                    try await expect(try await fixture.store.save(&session) == .updated, "stale save is merged, not refused")
                    lastWritten = "writer \(index)"
                }
                let final = try await fixture.store.load(id)
                try await expect(try final.get("counter", as: String.self) == lastWritten, "the last committed value wins")
                try await expect(try final.get("keep", as: String.self) == "me", "other attributes are kept")
            }
        },
        check("a stale save re-applies its removals on top of newer data") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["a": "1", "b": "2"])
                var first = try await fixture.store.load(saved.id)
                var second = try await fixture.store.load(saved.id)
                try first.set("c", "3")
                try await expect(try await fixture.store.save(&first) == .updated, "first save")
                second.remove("a")
                try await expect(try await fixture.store.save(&second) == .updated, "stale removal is merged")
                let final = try await fixture.store.load(saved.id)
                try await expect(final.keys == ["b", "c"], "a removed, c kept, got \(final.keys)")
            }
        },
    ]
}
