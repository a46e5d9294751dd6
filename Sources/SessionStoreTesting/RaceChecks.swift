import SessionStoreCore
import Synchronization

/// A counter shared by the tasks of one check.
private final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ amount: Int = 1) { value.add(amount, ordering: .relaxed) }
    var current: Int { value.load(ordering: .relaxed) }
}

/// A flag one task raises and others read.
private final class SharedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func raise() { value.store(true, ordering: .releasing) }
    var isRaised: Bool { value.load(ordering: .acquiring) }
}

/// Races across many tasks and stores: regeneration against loads, cleanups against
/// saves, late saves against expiry.
enum RaceChecks {
    static let all: [ConformanceCheck] = [
        check("once regenerateID returned, no load of the old id returns data (grace zero)") { database in
            try await withFixture(database) { fixture in
                for _ in 0..<4 {
                    let saved = try await fixture.stored(["user": "alice"])
                    let oldID = saved.id
                    let regenerated = SharedFlag()
                    let loadsAfter = SharedCounter()
                    let leaks = SharedCounter()
                    let newID = try await withThrowingTaskGroup(of: SessionID?.self) { group in
                        for _ in 0..<8 {
                            group.addTask {
                                var rounds = 0
                                while loadsAfter.current < 64, rounds < 100_000 {
                                    rounds += 1
                                    await Task.yield()
                                    let startedAfter = regenerated.isRaised
                                    let session = try await fixture.store.load(oldID)
                                    guard startedAfter else { continue }
                                    loadsAfter.add()
                                    if session.isStored || !session.isEmpty || session.id == oldID { leaks.add() }
                                }
                                return nil
                            }
                        }
                        group.addTask {
                            var session = try await fixture.store.load(oldID)
                            await Task.yield()
                            try await fixture.store.regenerateID(&session)
                            regenerated.raise()
                            return session.id
                        }
                        var newID: SessionID?
                        for try await id in group where id != nil { newID = id }
                        return newID
                    }
                    try await expect(loadsAfter.current >= 64, "loads ran after the regeneration: \(loadsAfter.current)")
                    try await expect(leaks.current == 0, "\(leaks.current) loads of the old id returned data after regenerateID returned")
                    let moved = try await fixture.store.load(try newID.orThrow("regeneration finished"))
                    try await expect(try moved.get("user", as: String.self) == "alice", "the data lives on under the new id")
                }
            }
        },
        check("cleanups from many tasks and two stores while saves run delete every expired session and no live one") { database in
            let clock = ManualClock()
            let first = try await Fixture(database, clock: clock, configure: { $0.cleanupBatchSize = 4 })
            let second = try await Fixture(database, clock: clock, configure: { $0.cleanupBatchSize = 4 })
            var doomed = [Session]()
            for index in 0..<60 { doomed.append(try await first.stored(["n": "\(index)"])) }
            // Edge sessions expire 1 ms after the doomed ones: alive at the moment of cleanup.
            clock.advance(by: .milliseconds(2))
            var edge = [Session]()
            for index in 0..<16 { edge.append(try await second.stored(["n": "\(index)"])) }
            clock.advance(by: .milliseconds(1_800_000 - 1))
            let created = try await withThrowingTaskGroup(of: [Session].self) { group in
                for store in [first.store, second.store] {
                    for _ in 0..<6 {
                        group.addTask {
                            for _ in 0..<3 { _ = try await store.cleanup() }
                            return []
                        }
                    }
                }
                for (index, session) in edge.enumerated() {
                    let store = index.isMultiple(of: 2) ? first.store : second.store
                    group.addTask {
                        var loaded = try await store.load(session.id)
                        try await expect(loaded.isStored, "an edge session is alive at the cleanup")
                        try loaded.set("saved", "during cleanup")
                        let outcome = try await store.save(&loaded)
                        try await expect(outcome == .updated, "its save lands, got \(outcome)")
                        return []
                    }
                    group.addTask {
                        var fresh = store.newSession()
                        try fresh.set("n", index)
                        try await store.save(&fresh)
                        return [fresh]
                    }
                }
                return try await group.reduce(into: [Session]()) { $0 += $1 }
            }
            _ = try await first.store.cleanup()
            _ = try await second.store.cleanup()
            for session in doomed {
                // Asked as of long ago, a row still present would be returned.
                let row = try await first.backend.load(first.store.storageKey(for: session.id), now: 0)
                try await expect(row == nil, "every expired session was deleted")
            }
            for session in edge {
                let loaded = try await first.store.load(session.id)
                try await expect(try loaded.get("saved", as: String.self) == "during cleanup", "edge session kept with its save")
            }
            for session in created {
                try await expect(try await second.store.load(session.id).isStored, "sessions created during cleanup kept")
            }
            try await first.close()
            try await second.close()
        },
        check("a late save does not resurrect a session that expired before it, cleaned or not") { database in
            try await withFixture(database) { fixture in
                var stale = [Session]()
                for index in 0..<16 {
                    let saved = try await fixture.stored(["cart": "\(index)"])
                    stale.append(try await fixture.store.load(saved.id))
                }
                fixture.clock.advance(by: .seconds(1801))
                // A request that arrives after expiry gets a new session, not the old one.
                let afterExpiry = try await fixture.store.load(stale[0].id)
                try await expect(!afterExpiry.isStored && afterExpiry.id != stale[0].id, "expired before its load: a new session")
                let outcomes = try await withThrowingTaskGroup(of: SaveOutcome.self) { group in
                    group.addTask { _ = try await fixture.store.cleanup(); return .skipped }
                    for session in stale {
                        group.addTask {
                            var late = session
                            try late.set("cart", "stale")
                            return try await fixture.store.save(&late)
                        }
                    }
                    return try await group.reduce(into: [SaveOutcome]()) { $0.append($1) }
                }
                try await expect(outcomes.filter { $0 != .skipped }.allSatisfy { $0 == .gone }, "every late save finds its session gone: \(outcomes)")
                for session in stale {
                    try await expect(!(try await fixture.store.load(session.id).isStored), "the expired id stays dead")
                    let row = try await fixture.backend.load(fixture.store.storageKey(for: session.id), now: 0)
                    try await expect(row == nil || row!.expiresAt <= fixture.clock.now(), "no row was extended into life")
                }
            }
        },
        check("regenerating a session that expired meanwhile does not bring its data back") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var stale = try await fixture.store.load(saved.id)
                fixture.clock.advance(by: .seconds(1801))
                try await fixture.store.regenerateID(&stale)
                try await expect(!stale.isStored && stale.isEmpty, "the request is left with a new, empty session")
                try await expect(!(try await fixture.store.load(stale.id).isStored), "no live session under the new id")
                try await expect(!(try await fixture.store.load(saved.id).isStored), "the old id stays dead")
            }
        },
        check("regenerating a session another request destroyed does not bring it back") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var privileged = try await fixture.store.load(saved.id)
                var logout = try await fixture.store.load(saved.id)
                try await fixture.store.destroy(&logout)
                try await fixture.store.regenerateID(&privileged)
                try await expect(!privileged.isStored && privileged.isEmpty, "the request is left with a new, empty session")
                try await expect(!(try await fixture.store.load(privileged.id).isStored), "no live session under the new id")
            }
        },
        check("regenerating a retired id read during the grace period mints no live session") { database in
            try await withFixture(database, configure: { $0.regenerationGracePeriod = .seconds(5) }) { fixture in
                let saved = try await fixture.stored(["user": "alice"])
                var login = try await fixture.store.load(saved.id)
                try await fixture.store.regenerateID(&login)
                // Whoever still holds the old id (an attacker who fixated it) reads it in grace...
                var holder = try await fixture.store.load(saved.id)
                try await expect(holder.isStored, "the old id reads during grace")
                // ...but cannot turn it into a fresh, fully live session.
                try await fixture.store.regenerateID(&holder)
                try await expect(!holder.isStored && holder.isEmpty, "regenerating a retired session gives a new, empty one")
                try await expect(!(try await fixture.store.load(holder.id).isStored), "no live session under the new id")
            }
        },
    ]
}

extension Optional {
    func orThrow(_ what: String, file: StaticString = #fileID, line: UInt = #line) throws -> Wrapped {
        guard let self else { throw ConformanceFailure(message: "missing: \(what)", location: "\(file):\(line)") }
        return self
    }
}
