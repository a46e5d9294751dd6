import Foundation

/// One measured line of the results table.
struct ResultRow: Codable, Sendable {
    var scenario: String
    var name: String
    var rows: Int?
    var concurrency: Int?
    /// Operations (or rows, where the note says so) per second.
    var opsPerSecond: Double?
    var p50Micros: Double?
    var p99Micros: Double?
    var maxMicros: Double?
    var count: Int?
    /// Time per operation relative to the floor (floor ops/s ÷ these ops/s); 1.2 means 20% slower.
    var vsFloor: Double?
    /// Time per operation relative to the naive store; 0.5 means twice as fast.
    var vsNaive: Double?
    var note: String?

    init(
        scenario: String, name: String, rows: Int? = nil, concurrency: Int? = nil, sample: Sample? = nil,
        vsFloor: Double? = nil, vsNaive: Double? = nil, note: String? = nil
    ) {
        self.scenario = scenario
        self.name = name
        self.rows = rows
        self.concurrency = concurrency
        if let sample {
            opsPerSecond = sample.opsPerSecond
            p50Micros = sample.p50
            p99Micros = sample.p99
            maxMicros = sample.max
            count = sample.count
        }
        // A window in which nothing completed (one call outlasted it on a loaded machine)
        // has no ratio: JSON has no infinity, and the table prints a blank.
        self.vsFloor = vsFloor.flatMap { $0.isFinite ? $0 : nil }
        self.vsNaive = vsNaive.flatMap { $0.isFinite ? $0 : nil }
        self.note = note
    }
}

/// A target, reported next to what was measured; never asserted.
struct TargetResult: Codable, Sendable {
    var target: String
    var goal: String
    var measured: String
    /// `nil` when the scenario did not run.
    var met: Bool?
}

/// Points for the SVG: throughput per table size, reader latency over a cleanup.
struct PlotData: Codable, Sendable {
    /// Series name → (rows, ops/s).
    var loads: [String: [[Double]]] = [:]
    /// Series name → (seconds since the cleanup began, worst reader latency in that slice, µs).
    var cleanup: [String: [[Double]]] = [:]
}

/// Everything the run measured, printed as it goes and written as JSON at the end.
final class Report {
    private(set) var rows: [ResultRow] = []
    var targets: [TargetResult] = []
    var plot = PlotData()
    var environment: [String: String] = [:]
    private var printedScenario: String?

    func add(_ row: ResultRow) {
        rows.append(row)
        printRow(row)
    }

    func rows(in scenario: String) -> [ResultRow] { rows.filter { $0.scenario == scenario } }

    // MARK: - Table

    private static let columns: [(String, Int)] = [
        ("case", 44), ("rows", 6), ("conc", 4), ("ops/s", 9), ("p50 µs", 9), ("p99 µs", 9), ("max µs", 10),
        ("×floor", 7), ("×naive", 7),
    ]

    private func printRow(_ row: ResultRow) {
        if printedScenario != row.scenario {
            printedScenario = row.scenario
            print("")
            print("== \(row.scenario)")
            var header = ""
            for (index, (title, width)) in Self.columns.enumerated() {
                header += index == 0 ? Fmt.pad(title, width) : " " + Fmt.pad(title, width, right: true)
            }
            print(header + "  note")
        }
        let cells: [String] = [
            row.name,
            row.rows.map(Fmt.rows) ?? "",
            row.concurrency.map(String.init) ?? "",
            row.opsPerSecond.map { Fmt.fixed($0, 0) } ?? "",
            row.p50Micros.map(Fmt.num) ?? "",
            row.p99Micros.map(Fmt.num) ?? "",
            row.maxMicros.map(Fmt.num) ?? "",
            row.vsFloor.map { Fmt.fixed($0, 2) } ?? "",
            row.vsNaive.map { Fmt.fixed($0, 2) } ?? "",
        ]
        var line = ""
        for (index, cell) in cells.enumerated() {
            let width = Self.columns[index].1
            line += index == 0 ? Fmt.pad(cell, width) : " " + Fmt.pad(cell, width, right: true)
        }
        if let note = row.note { line += "  " + note }
        print(line)
        fflush(nil)
    }

    /// A free-form line under the current scenario.
    func comment(_ text: String) {
        print("   " + text)
        fflush(nil)
    }

    func printTargets() {
        guard !targets.isEmpty else { return }
        print("")
        print("== Targets (reported, not asserted)")
        let nameWidth = max(10, targets.map(\.target.count).max() ?? 10)
        let goalWidth = max(8, targets.map(\.goal.count).max() ?? 8)
        print(Fmt.pad("target", nameWidth) + "  " + Fmt.pad("goal", goalWidth) + "  " + Fmt.pad("result", 6) + "  measured")
        for target in targets {
            let verdict = target.met.map { $0 ? "PASS" : "MISS" } ?? "n/a"
            print(Fmt.pad(target.target, nameWidth) + "  " + Fmt.pad(target.goal, goalWidth) + "  " + Fmt.pad(verdict, 6) + "  " + target.measured)
        }
        fflush(nil)
    }

    // MARK: - JSON

    private struct Document: Codable {
        var environment: [String: String]
        var results: [ResultRow]
        var targets: [TargetResult]
        var plot: PlotData
    }

    func writeJSON(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(Document(environment: environment, results: rows, targets: targets, plot: plot))
        try data.write(to: URL(fileURLWithPath: path))
    }
}
