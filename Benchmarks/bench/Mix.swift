import SessionStoreCore
import Synchronization

/// What the store did with the requests of a mix.
final class MixCounters: Sendable {
    let requests = Atomic<Int>(0)
    let created = Atomic<Int>(0)
    let updated = Atomic<Int>(0)
    let deleted = Atomic<Int>(0)
    let touched = Atomic<Int>(0)
    let skippedUnchanged = Atomic<Int>(0)
    let skippedEmpty = Atomic<Int>(0)
    let gone = Atomic<Int>(0)
    /// Requests that carried a stored session and changed nothing.
    let readOnly = Atomic<Int>(0)

    func record(_ outcome: SaveOutcome, touched wasTouched: Bool, hadSession: Bool) {
        requests.add(1, ordering: .relaxed)
        if wasTouched { touched.add(1, ordering: .relaxed) }
        switch outcome {
        case .created: created.add(1, ordering: .relaxed)
        case .updated, .merged: updated.add(1, ordering: .relaxed)
        case .deleted: deleted.add(1, ordering: .relaxed)
        case .gone: gone.add(1, ordering: .relaxed)
        case .skipped:
            if hadSession {
                skippedUnchanged.add(1, ordering: .relaxed)
                readOnly.add(1, ordering: .relaxed)
            } else {
                skippedEmpty.add(1, ordering: .relaxed)
            }
        @unknown default: break
        }
    }

    /// Rows written: data writes plus one-column touches.
    var writes: Int {
        created.load(ordering: .relaxed) + updated.load(ordering: .relaxed) + deleted.load(ordering: .relaxed)
            + touched.load(ordering: .relaxed)
    }
}

/// The kind of one simulated request.
enum RequestKind {
    case bot, read, change, login

    /// 90% read-only, 8% change one attribute, 2% new logins; `botPerMille` of all
    /// requests first go to cookie-less bots.
    static func draw(_ random: inout FastRandom, botPerMille: Int) -> RequestKind {
        if random.below(1000) < botPerMille { return .bot }
        let roll = random.below(100)
        if roll < 90 { return .read }
        if roll < 98 { return .change }
        return .login
    }
}

extension BenchRun {
    /// Scenario 2: the read-mostly request mix and a bot mix, store vs naive: throughput,
    /// rows written per 1000 requests and the share of writes skipped.
    ///
    /// The store runs on a virtual clock advanced per request (`--mix-rate` simulated
    /// requests per second over `--mix-sessions` active sessions), so the touch interval
    /// plays out as it would over minutes of traffic.
    func mix<E: Engine>(_ engine: E) async throws {
        let scenario = engine.title("2 mix", "requests (load + app work + save), store vs naive")
        let rows = settings.mixRows
        let active = min(settings.mixSessions, rows)
        let tasks = settings.concurrency.max()!
        let step = Int64(max(1, 1000 / max(1, settings.mixRate)))
        let idle: Int64 = 30 * 60 * 1000
        let touchInterval: Int64 = 60 * 1000
        var mixes: [(label: String, bots: Int, bound: Bool)] = [("read-mostly 90/8/2", 0, false), ("bots 80% + 90/8/2", 800, false)]
        // The same mix with every session bound to an owner and logins binding theirs: the
        // owner costs no row beyond the unbound mix's.
        if engine is SQLiteEngine { mixes.append(("read-mostly 90/8/2, owners bound", 0, true)) }
        for (label, bots, bound) in mixes {
            let start = wallMillis()
            let table = try await engine.fillStoreTable(
                "mix", rows: rows, key: engine.defaultKey,
                plan: .recentlyUsed(now: start, idle: idle, touchInterval: touchInterval))
            if bound, let sqlite = engine as? SQLiteEngine { try await sqlite.bindOwners(table, owners: max(1, rows / 10)) }
            let naiveTable = try await engine.fillNaiveTable("mix-naive", rows: rows, plan: .fresh)
            let clock = VirtualClock(start: start)
            let store = try await openStore(engine, table, clock: clock)
            let counters = MixCounters()
            status(engine.labelled("mix \(label): store"))
            let storeSample = try await measureTasks(concurrency: tasks, window: window) { worker in
                var random = FastRandom(seed: UInt64(worker) &+ 71)
                return { iteration in
                    clock.advance(by: step)
                    let kind = RequestKind.draw(&random, botPerMille: bots)
                    try await MixRequest.run(
                        kind, on: store, session: random.below(active), user: random.below(1_000_000),
                        page: "/orders/\(worker)/\(iteration)", counters: counters, bindsOwner: bound)
                }
            }
            try await store.shutdown()
            status(engine.labelled("mix \(label): naive"))
            let naiveSample = try await measureThreads(concurrency: tasks, window: window) { worker in
                let naive = try engine.naive(naiveTable, durability: nil)
                var random = FastRandom(seed: UInt64(worker) &+ 71)
                return { iteration in
                    let kind = RequestKind.draw(&random, botPerMille: bots)
                    try naive.mixRequest(
                        kind, session: random.below(active), user: random.below(1_000_000),
                        page: "/orders/\(worker)/\(iteration)")
                }
            }
            let requests = counters.requests.load(ordering: .relaxed)
            let writes = counters.writes
            let perThousand = Double(writes) * 1000 / Double(max(1, requests))
            let skipped = 100 - perThousand / 10
            let readOnly = counters.readOnly.load(ordering: .relaxed)
            let touched = counters.touched.load(ordering: .relaxed)
            let touchSkipped = readOnly > 0 ? 100 * (1 - Double(touched) / Double(readOnly)) : 0
            report.add(ResultRow(
                scenario: scenario, name: "store, \(label)", rows: rows, concurrency: tasks, sample: storeSample,
                vsNaive: naiveSample.opsPerSecond / storeSample.opsPerSecond,
                note: "rows written/1000 req: \(Fmt.num(perThousand)); skipped \(Fmt.fixed(skipped, 1))% of the naive store's writes"))
            report.add(ResultRow(
                scenario: scenario, name: "naive, \(label)", rows: rows, concurrency: tasks, sample: naiveSample,
                note: "rows written/1000 req: 1000 (every request)"))
            report.comment(
                "store, \(label): \(requests) requests: created \(counters.created.load(ordering: .relaxed)), "
                    + "updated \(counters.updated.load(ordering: .relaxed)), touched \(touched), "
                    + "skipped unchanged \(counters.skippedUnchanged.load(ordering: .relaxed)), "
                    + "skipped empty \(counters.skippedEmpty.load(ordering: .relaxed)); touch interval skipped "
                    + "\(Fmt.fixed(touchSkipped, 1))% of expiry updates on read-only requests")
            if bots == 0 && !bound { figures.mixSkipped = skipped }
            try await engine.drop(table.location)
            try await engine.drop(naiveTable.location)
        }
        report.comment(
            "mix: \(active) active sessions, \(settings.mixRate) simulated requests/s, touch interval 60 s, idle timeout 30 min")
    }
}

/// One simulated request of the mix against a store.
enum MixRequest {
    static func run(
        _ kind: RequestKind, on store: SessionStore, session index: Int, user: Int, page: String,
        counters: MixCounters, bindsOwner: Bool = false
    ) async throws {
        switch kind {
        case .bot:
            var session = try await store.load(id: nil)
            counters.record(try await store.save(&session), touched: false, hadSession: false)
        case .read:
            var session = try await store.load(id: IDs.id(index))
            let touched = session.touchedOnLoad
            counters.record(try await store.save(&session), touched: touched, hadSession: session.isStored)
        case .change:
            var session = try await store.load(id: IDs.id(index))
            try session.set("last_page", page)
            counters.record(try await store.save(&session), touched: session.touchedOnLoad, hadSession: true)
        case .login:
            var session = try await store.load(id: nil)
            try session.set("user_id", user)
            if bindsOwner {
                try await store.logIn(&session, owner: "owner-\(user % 100_000)")
                counters.record(.created, touched: false, hadSession: false)
            } else {
                counters.record(try await store.save(&session), touched: false, hadSession: false)
            }
        }
    }
}
