import ArgumentParser
import Foundation
import SessionStoreCore

/// The scenarios.
enum Scenario: String, CaseIterable, Sendable {
    case loads, mix, saves, cleanup, keys, soak, owners, encryption

    var number: Int { Self.allCases.firstIndex(of: self)! + 1 }

    static func parse(_ text: String) throws -> [Scenario] {
        var chosen: [Scenario] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            if let scenario = Scenario(rawValue: part) {
                chosen.append(scenario)
            } else if let number = Int(part), (1...allCases.count).contains(number) {
                chosen.append(allCases[number - 1])
            } else {
                throw ValidationError("unknown scenario \"\(part)\"; use 1-8 or \(allCases.map(\.rawValue).joined(separator: ","))")
            }
        }
        return allCases.filter(chosen.contains)
    }
}

enum BackendKind: String, ExpressibleByArgument, CaseIterable, Sendable {
    case sqlite, mysql, postgres
}

/// Everything a scenario needs to know, fixed for the run.
struct Settings: Sendable {
    var quick: Bool
    var rows: [Int]
    var window: Window
    var concurrency: [Int]
    var writers: [Int]
    var cleanupRows: Int
    var mixRows: Int
    var saveRows: Int
    var mixSessions: Int
    var mixRate: Int
    var cleanupBatch: Int
    var mmapSize: Int
    var readers: Int
    var loadCacheSlots: Int
    var dir: String
    var url: String?
    var idHashing: IDHashing
    var soakSeconds: Int
}

/// `--id-hash`: how the store keys rows.
enum IDHashOption: String, ExpressibleByArgument, CaseIterable, Sendable {
    case sha256, none

    var hashing: IDHashing { self == .sha256 ? .sha256 : .none }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measures the session store against the raw-C floor and a naive store, in one run.",
        discussion: """
            Scenarios: 1 loads (hits and misses by table size and concurrency), 2 mix \
            (90/8/2 request mix and a bot mix: rows written, writes skipped), 3 saves (one \
            transaction per save vs group commit, NORMAL and FULL), 4 cleanup (half of a table \
            expired, while a reader and a writer run), 5 keys ((crc32, id) vs id-only key), 6 soak \
            (sustained request mix: throughput, WAL and memory over time, reopen time), 7 owners \
            (sessions bound to users: listing, revoking, login, bound saves; SQLite), 8 encryption \
            (AES-256-GCM at rest vs plaintext, rekey under load).
            ×floor is the time per operation relative to the same work through the C API \
            (1.00 = the floor); ×naive is relative to a store written the old way (below 1 \
            is faster). Targets are printed at the end and never asserted.
            """)

    @Flag(help: "Small tables and short windows; finishes in under a minute on 2 cores.")
    var quick = false

    @Option(help: "Table sizes for point loads, comma-separated. (default: 10000,100000,1000000; quick: 10000,100000)")
    var rows: String?

    @Option(help: "Seconds per timed measurement window. (default: 1.5; quick: 0.3)")
    var duration: Double?

    @Option(help: "Concurrent tasks for loads, comma-separated.")
    var concurrency: String = "1,2"

    @Option(help: "Concurrent writers for saves, comma-separated.")
    var writers: String = "1,8,64"

    @Option(help: "Rows of the cleanup table, half of them expired. (default: the largest --rows; quick: 40000)")
    var cleanupRows: Int?

    @Option(help: "Rows of the request-mix and saves tables. (default: 100000; quick: 10000)")
    var tableRows: Int?

    @Option(help: "Active sessions the request mix spreads its requests over.")
    var mixSessions: Int = 1000

    @Option(help: "Simulated requests per second of the mix (drives the touch interval).")
    var mixRate: Int = 500

    @Option(help: "Rows per cleanup batch of the store.")
    var cleanupBatch: Int = 1000

    @Option(help: "Scenarios to run, by number or name, comma-separated: 1 loads, 2 mix, 3 saves, 4 cleanup, 5 keys, 6 soak, 7 owners, 8 encryption.")
    var scenarios: String = "loads,mix,saves,cleanup,keys,soak,owners,encryption"

    @Option(help: "Seconds of sustained traffic in the soak scenario. (default: 60; quick: 6)")
    var soak: Int?

    @Option(help: "The backend to measure.")
    var backend: BackendKind = .sqlite

    @Option(help: "Server URL for --backend mysql or postgres, e.g. mysql://user:pass@127.0.0.1:3306/db, postgres://user:pass@127.0.0.1:5432/db.")
    var url: String?

    @Option(help: "Directory for the temporary database files (a fresh one under it, removed at the end).")
    var dir: String?

    @Option(help: "PRAGMA mmap_size in bytes for store and floor alike (0 = off, the store's default).")
    var mmapSize: Int = 0

    @Option(help: "How the store keys rows: the id's SHA-256 (the store's default) or the id itself.")
    var idHash: IDHashOption = .sha256

    @Option(help: "Reader connections of the store's SQLite backend.")
    var readers: Int = 4

    @Option(help: "Rows the SQLite backend's load cache keeps (0 = off: every load reads SQLite, as the floor does).")
    var loadCacheSlots: Int = 1024

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "Draw throughput vs table size and reader latency during cleanup into this SVG file.")
    var plot: String?

    @Flag(help: "Keep the temporary database files.")
    var keep = false

    @Option(help: ArgumentHelp(
        "Run one operation in a loop instead of the scenarios and print its time per call.",
        valueName: "hit|miss|read|save|driver-hit"))
    var profile: String?

    @Option(help: "Iterations of --profile.")
    var iterations: Int = 20_000

    func validate() throws {
        if backend == .mysql && url == nil {
            throw ValidationError("--backend mysql needs --url mysql://user:pass@host:port/database")
        }
        if backend == .postgres && url == nil {
            throw ValidationError("--backend postgres needs --url postgres://user:pass@host:port/database")
        }
        #if !Postgres
        if backend == .postgres {
            throw ValidationError("--backend postgres is built only with the Postgres trait: swift run -c release --traits Postgres bench ...")
        }
        #endif
        _ = try Scenario.parse(scenarios)
        _ = try Self.parseList(concurrency, "concurrency")
        _ = try Self.parseList(writers, "writers")
        if let rows { _ = try Self.parseList(rows, "rows") }
        if let soak, soak < 1 { throw ValidationError("--soak wants a positive number of seconds") }
        if loadCacheSlots < 0 { throw ValidationError("--load-cache-slots wants 0 (off) or a positive number of rows") }
    }

    /// `--profile` on `engine`, or the chosen scenarios.
    private func execute<E: Engine>(_ run: BenchRun, _ scenarios: [Scenario], on engine: E) async throws {
        guard let profile else {
            try await run.run(scenarios, on: engine)
            return
        }
        guard let operation = ProfiledOperation(rawValue: profile) else {
            throw ValidationError("--profile takes one of \(ProfiledOperation.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try await run.profile(operation, iterations: iterations, on: engine)
    }

    static func parseList(_ text: String, _ name: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("--\(name) wants positive integers separated by commas, got \"\(text)\"")
        }
        return values.map { $0! }
    }

    func run() async throws {
        #if DEBUG
        Progress.note("note: bench was built in debug; measure with swift run -c release bench")
        #endif
        let started = nanos()
        let sizes = try rows.map { try Self.parseList($0, "rows") } ?? (quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000])
        let seconds = duration ?? (quick ? 0.3 : 1.5)
        let base = dir ?? NSTemporaryDirectory()
        let workDir = (base as NSString).appendingPathComponent("session-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let settings = Settings(
            quick: quick, rows: sizes.sorted(),
            window: Window(warmup: min(0.3, max(0.05, seconds / 4)), duration: seconds),
            concurrency: try Self.parseList(concurrency, "concurrency"),
            writers: try Self.parseList(writers, "writers"),
            cleanupRows: cleanupRows ?? (quick ? 40_000 : sizes.max()!),
            mixRows: tableRows ?? (quick ? 10_000 : 100_000),
            saveRows: tableRows ?? (quick ? 10_000 : 100_000),
            mixSessions: mixSessions, mixRate: mixRate, cleanupBatch: cleanupBatch,
            mmapSize: mmapSize, readers: readers, loadCacheSlots: loadCacheSlots, dir: workDir, url: backend == .sqlite ? nil : url, idHashing: idHash.hashing,
            soakSeconds: soak ?? (quick ? 6 : 60))
        let chosen = try Scenario.parse(scenarios)
        let report = Report()
        report.environment = [
            "backend": backend.rawValue, "quick": "\(quick)", "rows": sizes.map(String.init).joined(separator: ","),
            "duration_s": "\(seconds)", "cores": "\(ProcessInfo.processInfo.activeProcessorCount)",
            "mmap_size": "\(mmapSize)", "readers": "\(readers)", "load_cache_slots": "\(loadCacheSlots)", "id_hash": idHash.rawValue,
            // For the figures' page (Benchmarks/report.py): when, and the command that measured.
            "date": ISO8601DateFormatter().string(from: Date()),
            "command": (["swift run -c release bench"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
        ]
        print("session store bench: backend \(backend.rawValue), tables \(sizes.map(Fmt.rows).joined(separator: "/")), "
            + "\(Fmt.fixed(seconds, 2)) s windows, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3)
            .joined(separator: " ")
        if let load {
            report.environment["loadavg_start"] = load
            print("load average at start: \(load) (other work on the machine skews the figures, concurrency most)")
        }
        print("×floor: time per op relative to raw C calls on the same table (1.00 = floor); "
            + "×naive: relative to the naive store (<1 = faster)")
        defer {
            if !keep { try? FileManager.default.removeItem(atPath: workDir) }
        }
        let run = BenchRun(settings: settings, report: report)
        switch backend {
        case .sqlite:
            try await execute(run, chosen, on: SQLiteEngine(settings: settings))
        case .mysql:
            try await execute(run, chosen, on: MySQLEngine(settings: settings))
        case .postgres:
            #if Postgres
            try await execute(run, chosen, on: PostgresEngine(settings: settings))
            #else
            throw ValidationError("--backend postgres is built only with the Postgres trait")
            #endif
        }
        if profile != nil { return }
        report.printTargets()
        let total = Double(nanos() - started) / 1e9
        report.environment["total_s"] = Fmt.fixed(total, 1)
        print("\ntotal \(Fmt.fixed(total, 1)) s")
        if let json {
            try report.writeJSON(to: json)
            Progress.note("wrote \(json)")
        }
        if let plot {
            try Plot.svg(report.plot).write(toFile: plot, atomically: true, encoding: .utf8)
            Progress.note("wrote \(plot)")
        }
    }
}
