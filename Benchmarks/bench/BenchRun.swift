import Foundation
import SessionStore
import Synchronization

/// One run of the benchmark: settings, the report, and the figures the targets need.
///
/// Not `Sendable`: scenarios run one after another on the command's task.
final class BenchRun {
    let settings: Settings
    let report: Report
    /// Figures for the targets, filled in by the scenarios that ran.
    var figures = Figures()

    struct Figures {
        var loadVsFloor: (rows: Int, ratio: Double)?
        /// Load plus reading 5 attributes, against the floor's lookup that copies the row out.
        var readVsFloor: (rows: Int, ratio: Double)?
        var loadScaling: (rows: Int, ratio: Double, floor: Double)?
        var mixSkipped: Double?
        var groupFullVsFloor: (writers: Int, ratio: Double)?
        var groupFullVsPerSave: (writers: Int, ratio: Double)?
        var cleanupWriterStall: (expired: Int, ms: Double)?
        var cleanupReaderP99: (expired: Int, ms: Double)?
        var cleanupVsDelete: (expired: Int, ratio: Double)?
        /// Store hit vs the floor, per task count, largest table.
        var loadVsFloorByTasks: [Int: Double] = [:]
        /// Store hit vs the async driver's own prepared query, per task count, largest table.
        var loadVsDriverByTasks: [Int: Double] = [:]
        /// The floor's client called from a task (``BlockingLane``) vs the floor, per task count.
        var laneVsFloorByTasks: [Int: Double] = [:]
        /// The floor's client blocking the task's cooperative thread vs the floor, per task count.
        var blockingVsFloorByTasks: [Int: Double] = [:]
        var keyHashShare: Double?
        /// Requests/s of the soak's last `window` seconds over its first.
        var soakFlatness: (window: Int, ratio: Double)?
        var soakWALPeak: (bytes: Int, bound: Int)?
        /// Resident memory at the soak's end over its start.
        var soakMemoryGrowth: Double?
        /// Encrypted over plaintext time per operation: load with 5 attributes read, and save.
        var encryptedRead: Double?
        var encryptedSave: Double?
        /// Saves' worst stall during a rekey of this many rows, and the rekey's rows/s.
        var rekeyWriterStall: (rows: Int, ms: Double)?
        var rekeyRate: Double?
    }

    init(settings: Settings, report: Report) {
        self.settings = settings
        self.report = report
    }

    var window: Window { settings.window }

    func status(_ text: String) {
        Progress.status(text)
    }

    /// Runs the chosen scenarios on `engine`, then builds the targets.
    func run<E: Engine>(_ scenarios: [Scenario], on engine: E) async throws {
        report.environment.merge(engine.environment) { _, new in new }
        for scenario in scenarios {
            switch scenario {
            case .loads: try await loads(engine)
            case .mix: try await mix(engine)
            case .saves: try await saves(engine)
            case .cleanup: try await cleanup(engine)
            case .keys: try await keys(engine)
            case .soak: try await soak(engine)
            case .owners: try await owners(engine)
            case .encryption: try await encryption(engine)
            }
        }
        summarize(engine)
    }

    /// The store's policy as the scenarios use it.
    func storeConfiguration() -> SessionStoreConfiguration {
        var configuration = SessionStoreConfiguration()
        configuration.cleanupBatchSize = settings.cleanupBatch
        configuration.idHashing = settings.idHashing
        return configuration
    }

    /// A store over `table` as the scenarios use it.
    func openStore<E: Engine>(
        _ engine: E, _ table: StoreTable, durability: Durability? = nil, writeMode: WriteMode? = nil,
        configuration: SessionStoreConfiguration? = nil, clock: any SessionClock = SystemSessionClock()
    ) async throws -> SessionStore {
        let backend = try await engine.openBackend(table, durability: durability, writeMode: writeMode)
        return try SessionStore(
            backend: backend, configuration: configuration ?? storeConfiguration(), clock: clock, logger: quietLogger)
    }

    /// Builds the target lines from whatever ran.
    func summarize<E: Engine>(_ engine: E) {
        let f = figures
        func add(_ target: String, _ goal: String, _ measured: String?, _ met: Bool?) {
            report.targets.append(TargetResult(target: target, goal: goal, measured: measured ?? "not run", met: measured == nil ? nil : met))
        }
        add("load vs floor, largest table", "≤ 1.50×",
            f.loadVsFloor.map { "\(Fmt.fixed($0.ratio, 2))× at \(Fmt.rows($0.rows)) rows" }, f.loadVsFloor.map { $0.ratio <= 1.5 })
        add("load + 5 attributes read vs floor", "≤ 1.30×",
            f.readVsFloor.map { "\(Fmt.fixed($0.ratio, 2))× at \(Fmt.rows($0.rows)) rows" }, f.readVsFloor.map { $0.ratio <= 1.3 })
        add("SHA-256 ids at rest, share of a load", "< 10%",
            f.keyHashShare.map { "\(Fmt.fixed($0, 1))%" }, f.keyHashShare.map { $0 < 10 })
        // Labelled by what it compares: the lowest and the highest --concurrency.
        let low = settings.concurrency.min() ?? 1
        let high = settings.concurrency.max() ?? 1
        add("load scaling \(low) → \(high) tasks", "≥ 1.80×",
            f.loadScaling.map { "\(Fmt.fixed($0.ratio, 2))× at \(Fmt.rows($0.rows)) rows (floor \(Fmt.fixed($0.floor, 2))×)" }, f.loadScaling.map { $0.ratio >= 1.8 })
        add("writes skipped, read-mostly mix", "≥ 90%",
            f.mixSkipped.map { "\(Fmt.fixed($0, 1))% (ceiling 90%: 10% of requests change data)" }, f.mixSkipped.map { $0 >= 90 })
        if engine.applies(.groupCommit) {
            add("group commit FULL vs floor 100/txn", "≥ 0.70×",
                f.groupFullVsFloor.map { "\(Fmt.fixed($0.ratio, 2))× with \($0.writers) writers" },
                f.groupFullVsFloor.map { $0.ratio >= 0.7 })
            add("group commit FULL vs one txn per save", "≥ 5×",
                f.groupFullVsPerSave.map { "\(Fmt.fixed($0.ratio, 1))× with \($0.writers) writers" },
                f.groupFullVsPerSave.map { $0.ratio >= 5 })
        }
        add("cleanup: saves' worst stall", "≤ 25 ms",
            f.cleanupWriterStall.map { "\(Fmt.num($0.ms)) ms (\(Fmt.rows($0.expired)) expired rows)" }, f.cleanupWriterStall.map { $0.ms <= 25 })
        add("cleanup: readers' p99", "≤ 1 ms",
            f.cleanupReaderP99.map { "\(Fmt.num($0.ms)) ms (\(Fmt.rows($0.expired)) expired rows)" }, f.cleanupReaderP99.map { $0.ms <= 1 })
        add("cleanup time vs one DELETE", "≤ 2×",
            f.cleanupVsDelete.map { "\(Fmt.fixed($0.ratio, 2))× (\(Fmt.rows($0.expired)) expired rows)" }, f.cleanupVsDelete.map { $0.ratio <= 2 })
        add("soak: throughput last vs first seconds", "≥ 0.90×",
            f.soakFlatness.map { "\(Fmt.fixed($0.ratio, 2))× (\($0.window) s each)" }, f.soakFlatness.map { $0.ratio >= 0.9 })
        if engine.applies(.walPeak) {
            add("soak: WAL peak", "≤ 32 MB",
                f.soakWALPeak.map { "\(Fmt.fixed(Double($0.bytes) / 1e6, 1)) MB" }, f.soakWALPeak.map { $0.bytes <= $0.bound })
        }
        add("encrypted load + 5 attributes vs plaintext", "≤ 1.15×",
            f.encryptedRead.map { "\(Fmt.fixed($0, 2))×" }, f.encryptedRead.map { $0 <= 1.15 })
        add("encrypted save vs plaintext", "≤ 1.15×",
            f.encryptedSave.map { "\(Fmt.fixed($0, 2))×" }, f.encryptedSave.map { $0 <= 1.15 })
        add("rekey: saves' worst stall", "≤ 25 ms",
            f.rekeyWriterStall.map { "\(Fmt.num($0.ms)) ms (\(Fmt.rows($0.rows)) rows, \(Fmt.num(f.rekeyRate ?? 0)) rows/s)" },
            f.rekeyWriterStall.map { $0.ms <= 25 })
        add("soak: resident memory end vs start", "≤ 1.10×",
            f.soakMemoryGrowth.map { "\(Fmt.fixed($0, 2))×" }, f.soakMemoryGrowth.map { $0 <= 1.1 })
        if engine.applies(.loadVsFloorByTasks) {
            for tasks in settings.concurrency.sorted() {
                let ratio = f.loadVsFloorByTasks[tasks]
                var lane = ""
                if let viaThread = f.laneVsFloorByTasks[tasks], let blocking = f.blockingVsFloorByTasks[tasks] {
                    lane = " (the client from a task via a thread \(Fmt.fixed(viaThread, 2))×, blocking it \(Fmt.fixed(blocking, 2))×)"
                }
                add(engine.labelled("load vs \(engine.floorName), \(tasks) task(s)"), "≤ 1.20×",
                    ratio.map { "\(Fmt.fixed($0, 2))×\(lane)" }, ratio.map { $0 <= 1.2 })
            }
        }
        if engine.applies(.loadVsDriverByTasks), let driverName = engine.driverFloorName {
            for tasks in settings.concurrency.sorted() {
                let ratio = f.loadVsDriverByTasks[tasks]
                add(engine.labelled("load vs \(driverName), \(tasks) task(s)"), "≤ 1.10×",
                    ratio.map { "\(Fmt.fixed($0, 2))×" }, ratio.map { $0 <= 1.1 })
                // The C client's ratio is reported, with no goal: the store cannot call it.
                let cRatio = f.loadVsFloorByTasks[tasks]
                add(engine.labelled("load vs \(engine.floorName), \(tasks) task(s)"), "reported",
                    cRatio.map { "\(Fmt.fixed($0, 2))×" }, nil)
            }
        }
    }
}

/// A flag the background load of the cleanup scenario polls.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
