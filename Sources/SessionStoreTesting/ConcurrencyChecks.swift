import SessionStoreCore

enum ConcurrencyChecks {
    /// `tasks` requests load one session at once, each sets a key of its own and saves.
    static func parallelRequestsKeepEveryKey(_ tasks: Int) -> ConformanceCheck {
        check("\(tasks) concurrent requests changing different attributes: every save succeeds, every key is kept") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["base": "yes"])
                let id = saved.id
                try await withThrowingTaskGroup(of: SaveOutcome.self) { group in
                    for index in 0..<tasks {
                        group.addTask {
                            var session = try await fixture.store.load(id)
                            try session.set("k\(index)", index)
                            return try await fixture.store.save(&session)
                        }
                    }
                    for try await outcome in group {
                        let landed = outcome == .updated || outcome == .merged(overwrote: [])
                        try await expect(landed, "every request's save lands and overwrites nothing, got \(outcome)")
                    }
                }
                let final = try await fixture.store.load(id)
                for index in 0..<tasks {
                    try await expect(try final.get("k\(index)", as: Int.self) == index, "attribute k\(index) present")
                }
                try await expect(try final.get("base", as: String.self) == "yes", "untouched attribute kept")
            }
        }
    }

    static let all: [ConformanceCheck] = [
        parallelRequestsKeepEveryKey(64),
        parallelRequestsKeepEveryKey(256),
        check("256 concurrent increments of one counter end at exactly 256") { database in
            try await withFixture(database) { fixture in
                let id = try await fixture.stored(["user": "alice"]).id
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<256 {
                        group.addTask {
                            var session = try await fixture.store.load(id)
                            try session.increment("visits")
                            let outcome = try await fixture.store.save(&session)
                            try await expect(outcome.wroteData, "every increment is saved, got \(outcome)")
                        }
                    }
                    try await group.waitForAll()
                }
                let visits = try await fixture.store.load(id).get("visits", as: Int.self)
                try await expect(visits == 256, "counter at \(String(describing: visits))")
                try await expect(try await fixture.store.load(id).get("user", as: String.self) == "alice", "other attributes kept")
            }
        },
        check("modify re-runs a read-modify-write on the current data, so none is lost") { database in
            try await withFixture(database) { fixture in
                let id = try await fixture.stored(["list": "start"]).id
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<64 {
                        group.addTask {
                            var session = try await fixture.store.load(id)
                            let outcome = try await fixture.store.modify(&session) { current in
                                let list = try current.get("list", as: String.self) ?? ""
                                try current.set("list", list + ",\(index)")
                            }
                            try await expect(outcome.wroteData, "modify saved, got \(outcome)")
                            try await expect(try session.get("list", as: String.self)?.contains(",\(index)") == true,
                                             "the session holds what was saved")
                        }
                    }
                    try await group.waitForAll()
                }
                let list = try await fixture.store.load(id).get("list", as: String.self) ?? ""
                let entries = Set(list.split(separator: ",").map(String.init))
                try await expect(entries.count == 65, "start plus 64 entries, got \(entries.count)")
            }
        },
        check("concurrent changes to one attribute: the last save wins and reports what it overwrote") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["counter": "start", "keep": "me"])
                let id = saved.id
                // Load all first, so every save but one starts from a stale version.
                var sessions = [Session]()
                for _ in 0..<16 { sessions.append(try await fixture.store.load(id)) }
                for (index, var session) in sessions.enumerated() {
                    try session.set("counter", "writer \(index)")
                    let outcome = try await fixture.store.save(&session)
                    let expected: SaveOutcome = index == 0 ? .updated : .merged(overwrote: ["counter"])
                    try await expect(outcome == expected, "save \(index): expected \(expected), got \(outcome)")
                }
                let final = try await fixture.store.load(id)
                try await expect(try final.get("counter", as: String.self) == "writer 15", "the last committed value wins")
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
                let outcome = try await fixture.store.save(&second)
                try await expect(outcome == .merged(overwrote: []), "stale removal is merged, got \(outcome)")
                let final = try await fixture.store.load(saved.id)
                try await expect(final.keys == ["b", "c"], "a removed, c kept, got \(final.keys)")
            }
        },
        check("an increment of an attribute that is not an integer throws and writes nothing") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["name": "alice"])
                var stale = try await fixture.store.load(saved.id)
                var session = try await fixture.store.load(saved.id)
                try await expectThrows("increment of a string", { try session.increment("name") }) { error in
                    (error as? SessionStoreError)?.code == .attributeCoding
                }
                try await expect(!session.hasChanges, "nothing changed")
                // A stale increment meeting a string saved meanwhile fails in the merge.
                try stale.increment("count")
                var other = try await fixture.store.load(saved.id)
                try other.set("count", "many")
                try await fixture.store.save(&other)
                try await expectThrows("merge of an increment onto a string", { try await fixture.store.save(&stale) }) { error in
                    (error as? SessionStoreError)?.code == .attributeCoding
                }
                try await expect(try await fixture.store.load(saved.id).get("count", as: String.self) == "many", "nothing written")
            }
        },
    ]
}
