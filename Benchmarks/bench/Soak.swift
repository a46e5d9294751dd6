import Foundation
import SessionStoreCore
import Synchronization

/// What the soak's request tasks and its sampler share.
final class SoakCounters: Sendable {
    let requests = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let firstError = Mutex<String?>(nil)

    func fail(_ error: any Error) {
        errors.add(1, ordering: .relaxed)
        firstError.withLock { if $0 == nil { $0 = "\(error)" } }
    }
}

/// One sample of the soak, taken every second.
struct SoakSample {
    var second: Int
    var requests: Int
    /// `nil` where the engine has no WAL the bench can see.
    var walBytes: Int?
    var residentBytes: Int
}

extension BenchRun {
    /// Scenario 6: sustained traffic for `--soak` seconds after a 5 s warm-up (8 tasks of
    /// the 90/8/2 request mix with new sessions, touches and background cleanup), on a table
    /// that starts empty: throughput per second, the WAL's size (where the engine has one),
    /// the process's resident memory, and the time to reopen the store afterwards.
    func soak<E: Engine>(_ engine: E) async throws {
        let table = try await engine.fillStoreTable("soak", rows: 0, key: engine.defaultKey, plan: .fresh)
        let store = try await openStore(engine, table, configuration: soakPolicy())
        let samples = try await soakTraffic(store) { engine.walBytes(table) }
        try await store.shutdown()
        let started = nanos()
        let reopened = try await openStore(engine, table, configuration: soakPolicy())
        _ = try await reopened.load(id: IDs.id(0))
        let reopenMillis = Double(nanos() - started) / 1e6
        try await reopened.shutdown()
        try await engine.drop(table.location)
        reportSoak(samples, walBound: engine.applies(.walPeak) ? 8 * 1000 * 4096 : nil, reopenMillis: reopenMillis)
    }

    private func soakPolicy() -> SessionStoreConfiguration {
        var policy = SessionStoreConfiguration()
        // Short, so the table reaches its steady size (logins in, idle sessions cleaned)
        // within the first seconds and the first and last windows compare like with like.
        policy.idleTimeout = .seconds(5)
        // Cleanup deletes rows expired this long ago: the default 60 s would keep the
        // table growing through the whole measured window (logins pile up for 65 s).
        policy.clockSkewAllowance = .seconds(1)
        policy.touchInterval = .seconds(1)
        policy.idHashing = settings.idHashing
        return policy
    }

    /// Runs the traffic and samples it once a second.
    private func soakTraffic(_ store: SessionStore, walBytes: () -> Int?) async throws -> [SoakSample] {
        let seconds = settings.soakSeconds
        let counters = SoakCounters()
        let seeded = try await Self.soakSeed(store, sessions: 1000 * 8)
        store.startBackgroundCleanup(every: .seconds(1))
        // Warm-up, not sampled: one idle timeout, after which touches, logins and cleanup
        // all run at their steady rates and the table has its steady size.
        let warmup = 5
        let stop = StopFlag()
        var samples: [SoakSample] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                let ids = Array(seeded[(task * 1000)..<((task + 1) * 1000)])
                group.addTask { await Self.soakRequests(store, task: task, ids: ids, until: stop, counters: counters) }
            }
            for second in 1...warmup {
                try await Task.sleep(for: .seconds(1))
                status("soak: warm-up \(second)/\(warmup) s")
            }
            var last = counters.requests.load(ordering: .relaxed)
            for second in 1...seconds {
                try await Task.sleep(for: .seconds(1))
                let total = counters.requests.load(ordering: .relaxed)
                samples.append(SoakSample(
                    second: second, requests: total - last, walBytes: walBytes(),
                    residentBytes: Self.residentBytes()))
                last = total
                status("soak: \(second)/\(seconds) s, \(Fmt.num(Double(total))) requests so far")
            }
            // The traffic runs until the last sample is taken, so no sample sees it winding down.
            stop.set()
            try await group.waitForAll()
        }
        Progress.note("")
        if counters.errors.load(ordering: .relaxed) > 0 {
            report.comment("errors: \(counters.errors.load(ordering: .relaxed)), first: \(counters.firstError.withLock { $0 ?? "" })")
        }
        return samples
    }

    /// Sessions present before the timed traffic, so the first seconds are not all inserts.
    private static func soakSeed(_ store: SessionStore, sessions: Int) async throws -> [String] {
        var ids: [String] = []
        for index in 0..<sessions {
            var session = store.newSession()
            try session.set("user", "seed-\(index)")
            try await store.save(&session)
            ids.append(session.id.text)
        }
        return ids
    }

    /// One task of the soak over 1000 sessions of its own: 90% reads, 8% changes, 2% logins
    /// (a new session replaces a random one of the 1000; the old one idles until cleanup).
    private static func soakRequests(
        _ store: SessionStore, task: Int, ids seeded: [String], until stop: StopFlag, counters: SoakCounters
    ) async {
        var random = FastRandom(seed: UInt64(task + 1) &* 0x9E37_79B9_7F4A_7C15)
        var ids = seeded
        while !stop.isSet {
            do {
                let kind = RequestKind.draw(&random, botPerMille: 0)
                var session = try await store.load(id: ids[random.below(ids.count)])
                switch kind {
                case .read, .bot:
                    _ = try session.get("user", as: String.self)
                case .change:
                    try session.increment("clicks")
                case .login:
                    session = store.newSession()
                    try session.set("user", "user-\(random.below(1_000_000))")
                    try session.set("cart", String(repeating: "i", count: 120))
                }
                if try await store.save(&session).wroteData {
                    counters.writes.add(1, ordering: .relaxed)
                    if kind == .login {
                        ids[random.below(ids.count)] = session.id.text
                    }
                }
                counters.requests.add(1, ordering: .relaxed)
            } catch {
                counters.fail(error)
            }
        }
    }

    private func reportSoak(_ samples: [SoakSample], walBound: Int?, reopenMillis: Double) {
        guard !samples.isEmpty else { return }
        let slice = max(1, samples.count / 6)
        let hasWAL = samples.contains { $0.walBytes != nil }
        report.comment("second   requests/s" + (hasWAL ? "   WAL MB" : "") + "   RSS MB")
        for sample in samples where sample.second % slice == 0 || sample.second == 1 {
            report.comment(
                Fmt.pad("\(sample.second)", 6, right: true) + Fmt.pad(Fmt.num(Double(sample.requests)), 13, right: true)
                    + (sample.walBytes.map { Fmt.pad(Fmt.fixed(Double($0) / 1e6, 1), 9, right: true) } ?? "")
                    + Fmt.pad(Fmt.fixed(Double(sample.residentBytes) / 1e6, 1), 9, right: true))
        }
        let window = min(10, max(1, samples.count / 3))
        let first = samples.prefix(window).map(\.requests).reduce(0, +)
        let lastSlice = samples.suffix(window).map(\.requests).reduce(0, +)
        let flat = first > 0 ? Double(lastSlice) / Double(first) : 0
        let walPeak = samples.compactMap(\.walBytes).max() ?? 0
        let rssStart = samples.prefix(window).map(\.residentBytes).max() ?? 0
        let rssEnd = samples.suffix(window).map(\.residentBytes).max() ?? 0
        let rssGrowth = rssStart > 0 ? Double(rssEnd) / Double(rssStart) : 0
        let total = samples.map(\.requests).reduce(0, +)
        report.comment("\(Fmt.num(Double(total))) requests in \(samples.count) s; "
            + (hasWAL ? "WAL peak \(Fmt.fixed(Double(walPeak) / 1e6, 1)) MB; " : "")
            + "RSS \(Fmt.fixed(Double(rssStart) / 1e6, 1)) → \(Fmt.fixed(Double(rssEnd) / 1e6, 1)) MB"
            + "; reopen after it \(Fmt.fixed(reopenMillis, 1)) ms")
        figures.soakFlatness = (window, flat)
        figures.soakWALPeak = walBound.map { (walPeak, $0) }
        figures.soakMemoryGrowth = rssGrowth
    }

    /// Resident set size from `/proc/self/statm` (pages), in bytes; 0 where unavailable.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
