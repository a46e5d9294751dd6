import SessionStoreCore
import Synchronization

extension BenchRun {
    /// Scenario 7 (SQLite): sessions bound to owners, on a table of `rows` sessions spread
    /// over `rows / 10` owners. Listing one owner's sessions against the same indexed
    /// SELECT through the C API; ending all of an owner's sessions but one; a login
    /// (regenerate, bind, device facts) against a plain regenerate; bound saves against
    /// unbound ones.
    func owners<E: Engine>(_ engine: E) async throws {
        guard let sqlite = engine as? SQLiteEngine else {
            report.comment("7 owners: measured on SQLite only in this release")
            return
        }
        let rows = settings.quick ? 100_000 : settings.rows.max()!
        let ownerCount = max(1, rows / 10)
        let scenario = engine.title("7 owners", "\(Fmt.rows(rows)) sessions over \(Fmt.rows(ownerCount)) owners, 1 task")
        let table = try await engine.fillStoreTable("owners", rows: rows, key: engine.defaultKey, plan: .fresh)
        status(engine.labelled("owners: binding \(Fmt.rows(rows)) rows to \(Fmt.rows(ownerCount)) owners"))
        try await sqlite.bindOwners(table, owners: ownerCount)
        let store = try await openStore(engine, table)
        let listSQL = SQLiteQueries_ownedSessions
        let listings = try await interleaved([
            { window in
                try await measureTasks(concurrency: 1, window: window) { _ in
                    var random = FastRandom(seed: 71)
                    return { _ in
                        let page = try await store.sessions(ownedBy: "owner-\(random.below(ownerCount))", limit: 50)
                        guard !page.sessions.isEmpty else { throw BenchError("an owner without sessions") }
                    }
                }
            },
            { window in
                try await measureThreads(concurrency: 1, window: window) { _ in
                    let db = try RawDB(path: table.location, synchronous: "NORMAL")
                    let statement = try db.prepare(listSQL)
                    var random = FastRandom(seed: 71)
                    return { _ in
                        statement.bind(8, text: "owner-\(random.below(ownerCount))")
                        statement.bind(3, wallMillis())
                        statement.bind(4, 50)
                        var found = 0
                        while try statement.step() {
                            _ = statement.text(0)
                            _ = statement.int64(1)
                            _ = statement.int64(2)
                            _ = statement.int64(3)
                            _ = statement.blob(4)
                            found += 1
                        }
                        statement.reset()
                        guard found > 0 else { throw BenchError("floor: an owner without sessions") }
                    }
                }
            },
        ])
        report.add(ResultRow(
            scenario: scenario, name: "list an owner's sessions (store)", rows: rows, concurrency: 1, sample: listings[0],
            vsFloor: listings[0].p50 / max(listings[1].p50, 0.001), note: "×floor from p50"))
        report.add(ResultRow(scenario: scenario, name: "list an owner's sessions (floor: same SELECT in C)", rows: rows, concurrency: 1, sample: listings[1]))

        // Ending all but one: each call takes the next owner, whose ~10 sessions it ends.
        let next = Counter()
        let revokes = try await measureTasks(concurrency: 1, window: window) { _ in
            return { _ in
                let owner = next.next() % ownerCount
                var keep = store.newSession()
                try await store.logIn(&keep, owner: "owner-\(owner)")
                _ = try await store.revokeOthers(ownedBy: "owner-\(owner)", keeping: keep)
            }
        }
        report.add(ResultRow(
            scenario: scenario, name: "revoke all but the current (login + revoke-others)", rows: rows, concurrency: 1,
            sample: revokes, note: "each ends ~10 sessions of one owner"))

        // A login against a plain regenerate, each on a freshly saved anonymous session.
        let device = SessionDevice(ipAddress: "203.0.113.9", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", label: "laptop")
        let renewals = try await interleaved([
            { window in
                try await measureTasks(concurrency: 1, window: window) { _ in
                    return { _ in
                        var session = store.newSession()
                        try session.set("cart", 3)
                        try await store.save(&session)
                        try await store.regenerateID(&session)
                    }
                }
            },
            { window in
                try await measureTasks(concurrency: 1, window: window) { _ in
                    var random = FastRandom(seed: 73)
                    return { _ in
                        var session = store.newSession()
                        try session.set("cart", 3)
                        try await store.save(&session)
                        try await store.logIn(&session, owner: "owner-\(random.below(ownerCount))", device: device)
                    }
                }
            },
        ])
        report.add(ResultRow(scenario: scenario, name: "save + regenerate", rows: rows, concurrency: 1, sample: renewals[0]))
        report.add(ResultRow(
            scenario: scenario, name: "save + login (regenerate, bind, device facts)", rows: rows, concurrency: 1, sample: renewals[1],
            note: "×\(Fmt.fixed(renewals[0].opsPerSecond / max(renewals[1].opsPerSecond, 0.001), 2)) the time of save + regenerate"))

        // Saves of bound and of unbound sessions (load, change one attribute, save).
        var bound: [SessionID] = []
        var unbound: [SessionID] = []
        for index in 0..<1000 {
            var session = store.newSession()
            try session.set("n", index)
            try await store.save(&session)
            unbound.append(session.id)
            var signedIn = store.newSession()
            try signedIn.set("n", index)
            try await store.logIn(&signedIn, owner: "owner-\(index % ownerCount)", device: device)
            bound.append(signedIn.id)
        }
        let saves = try await interleaved([bound, unbound].map { ids in
            { window in
                try await measureTasks(concurrency: 1, window: window) { _ in
                    var random = FastRandom(seed: 79)
                    return { _ in
                        var session = try await store.load(ids[random.below(ids.count)])
                        // A value no round wrote before: rounds replay the same ids.
                        try session.set("n", Int.random(in: Int.min...Int.max))
                        guard try await store.save(&session).wroteData else { throw BenchError("save wrote nothing") }
                    }
                }
            }
        })
        report.add(ResultRow(
            scenario: scenario, name: "load + save, bound session", rows: rows, concurrency: 1, sample: saves[0],
            note: "×\(Fmt.fixed(saves[1].opsPerSecond / max(saves[0].opsPerSecond, 0.001), 2)) the time of an unbound one"))
        report.add(ResultRow(scenario: scenario, name: "load + save, unbound session", rows: rows, concurrency: 1, sample: saves[1]))
        try await store.shutdown()
        try await engine.drop(table.location)
    }
}

/// The listing's SELECT as the SQLite backend runs it (version 3 table, first page).
let SQLiteQueries_ownedSessions = """
    SELECT id, created_at, coalesce(last_seen, created_at), expires_at, details FROM sessions \
    WHERE owner = ?8 AND expires_at > ?3 AND version <> 0 ORDER BY created_at DESC, id DESC LIMIT ?4
    """

/// A shared counter for operations that each need a distinct input.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
