import SessionStoreCore

enum CleanupChecks {
    static let all: [ConformanceCheck] = [
        check("cleanup deletes exactly the expired sessions and reports the count") { database in
            try await withFixture(database, configure: { $0.cleanupBatchSize = 3 }) { fixture in
                var old = [Session]()
                for index in 0..<10 { old.append(try await fixture.stored(["n": "\(index)"])) }
                fixture.clock.advance(by: .seconds(1000))
                var young = [Session]()
                for index in 0..<5 { young.append(try await fixture.stored(["n": "\(index)"])) }
                fixture.clock.advance(by: .seconds(900))
                let deleted = try await fixture.store.cleanup()
                try await expect(deleted == 10, "10 expired sessions deleted, got \(deleted)")
                try await expect((fixture.backend.calls["deleteExpired"] ?? 0) >= 4, "in batches of 3")
                for session in young {
                    try await expect(try await fixture.store.load(session.id).isStored, "live sessions survive cleanup")
                }
                try await expect(try await fixture.store.cleanup() == 0, "nothing left to delete")
            }
        },
        check("a cleanup of a mostly expired table keeps every session touched while it runs, and deletes the rest") { database in
            try await withFixture(database, configure: { $0.cleanupBatchSize = 50 }) { fixture in
                // Requests that read their session just before it expired (at `start`) touch
                // it while the cleanup (at `start + 2 s`) deletes around them: each touch
                // either lands first (the row lives on) or finds the row gone; never both.
                let start = fixture.clock.now()
                let doomed = (0..<1500).map { _ in SessionKey(value: SessionID.generate().text) }
                let live = (0..<100).map { _ in SessionKey(value: SessionID.generate().text) }
                let backend = fixture.backend
                for key in doomed {
                    _ = try await backend.insert(key, SessionRecord(data: [1], version: 1, createdAt: start - 10, expiresAt: start + 1_000))
                }
                for key in live {
                    _ = try await backend.insert(key, SessionRecord(data: [2], version: 1, createdAt: start, expiresAt: start + 3_600_000))
                }
                fixture.clock.advance(by: .seconds(2))
                let touched = Array(doomed.shuffled().prefix(300))
                async let deleted = fixture.store.cleanup()
                let survivors = try await withThrowingTaskGroup(of: (SessionKey, Bool).self) { group in
                    for (index, key) in touched.enumerated() {
                        group.addTask {
                            if index % 30 == 0 { await Task.yield() }
                            return (key, try await backend.touch(key, expiresAt: start + 3_600_000, now: start + 999))
                        }
                    }
                    return try await group.reduce(into: Set<SessionKey>()) { if $1.1 { $0.insert($1.0) } }
                }
                let count = try await deleted
                let now = fixture.clock.now()
                try await expect(count == doomed.count - survivors.count,
                                 "deleted \(count): every expired row except the \(survivors.count) touched in time")
                for key in touched {
                    let row = try await backend.load(key, now: now)
                    try await expect((row != nil) == survivors.contains(key),
                                     survivors.contains(key) ? "a session touched before its delete survives" : "a touch that found no row created none")
                }
                for key in live {
                    try await expect(try await backend.load(key, now: now) != nil, "a live session survives cleanup")
                }
                try await expect(try await fixture.store.cleanup() == 0, "nothing expired is left")
            }
        },
        check("the seed race: a session loaded just before expiry survives cleanup and saves") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["cart": "1 item"])
                fixture.clock.advance(by: .milliseconds(1_799_999))
                var requestA = try await fixture.store.load(saved.id)
                try await expect(requestA.isStored, "A loads 1 ms before expiry")
                fixture.clock.advance(by: .milliseconds(2))
                _ = try await fixture.store.cleanup()
                try requestA.set("cart", "2 items")
                try await expect(try await fixture.store.save(&requestA) == .updated, "A's save lands")
                let after = try await fixture.store.load(saved.id)
                try await expect(try after.get("cart", as: String.self) == "2 items", "A's session survived with its data")
            }
        },
        check("a late save never resurrects a session that expired and was cleaned") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["cart": "1 item"])
                var slow = try await fixture.store.load(saved.id)
                fixture.clock.advance(by: .seconds(1801))
                _ = try await fixture.store.cleanup()
                try slow.set("cart", "stale")
                try await expect(try await fixture.store.save(&slow) == .gone, "the late save finds the session gone")
                try await expect(slow.id != saved.id && !slow.isStored, "the request is handed a new session")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "the old id stays dead")
            }
        },
        check("concurrent cleanups on one store run once and share the count") { database in
            try await withFixture(database, configure: { $0.cleanupBatchSize = 5 }) { fixture in
                for index in 0..<40 { _ = try await fixture.stored(["n": "\(index)"]) }
                fixture.clock.advance(by: .seconds(1801))
                let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<16 { group.addTask { try await fixture.store.cleanup() } }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                try await expect(counts.max() == 40, "one cleanup deleted all 40, got \(counts)")
                try await expect(counts.allSatisfy { $0 == 40 || $0 == 0 }, "joiners share the count or find nothing: \(counts)")
                try await expect(try await fixture.store.cleanup() == 0, "nothing left")
            }
        },
        check("two stores on one database clean without deleting live sessions, counts add up") { database in
            let clock = ManualClock()
            let first = try await Fixture(database, clock: clock, configure: { $0.cleanupBatchSize = 7 })
            let second = try await Fixture(database, clock: clock, configure: { $0.cleanupBatchSize = 7 })
            for index in 0..<50 { _ = try await first.stored(["n": "\(index)"]) }
            clock.advance(by: .seconds(1000))
            var live = [Session]()
            for index in 0..<10 { live.append(try await second.stored(["n": "\(index)"])) }
            clock.advance(by: .seconds(801))
            async let a = first.store.cleanup()
            async let b = second.store.cleanup()
            var (countA, countB) = try await (a, b)
            // A store that found the lease taken did nothing; run it again to sweep up.
            countA += try await first.store.cleanup()
            countB += try await second.store.cleanup()
            try await expect(countA + countB == 50, "deleted \(countA) + \(countB), expected 50 in all")
            for session in live {
                try await expect(try await first.store.load(session.id).isStored, "live sessions survive")
            }
            try await first.close()
            try await second.close()
        },
        check("background cleanup runs on schedule and stops at shutdown") { database in
            let fixture = try await Fixture(database)
            for index in 0..<5 { _ = try await fixture.stored(["n": "\(index)"]) }
            fixture.clock.advance(by: .seconds(1801))
            fixture.store.startBackgroundCleanup(every: .milliseconds(5))
            for _ in 0..<1000 where (fixture.backend.calls["deleteExpired"] ?? 0) < 1 {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await expect((fixture.backend.calls["deleteExpired"] ?? 0) >= 1, "background cleanup ran")
            // Joins the background round if it still runs (a cleanup is single-flight),
            // so the next one starts after it: nothing expired is left for it.
            let joined = try await fixture.store.cleanup()
            try await expect(joined == 5 || joined == 0, "the first round deleted the 5 expired sessions (\(joined) in the joined round)")
            try await expect(try await fixture.store.cleanup() == 0, "the expired sessions were already deleted")
            try await fixture.close()
            let callsAtShutdown = fixture.backend.calls["deleteExpired"] ?? 0
            try await Task.sleep(for: .milliseconds(50))
            try await expect(fixture.backend.calls["deleteExpired"] == callsAtShutdown, "no cleanup after shutdown")
            try await expectThrows("a closed store refuses work", { try await fixture.store.cleanup() }) {
                ($0 as? SessionStoreError)?.code == .closed
            }
        },
    ]
}
