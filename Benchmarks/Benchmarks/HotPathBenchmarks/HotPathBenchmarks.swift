import Benchmark
import HotPath
import Synchronization

// The hot path under ordo-one/package-benchmark (issue 11): allocations per operation are
// exact and repeat run to run, so CI checks them against the baseline in
// `.benchmarkBaselines/` (±2 per operation); wall clock and throughput are recorded for
// reading, never checked (this machine is shared and has no performance counters).
//
//   swift package --package-path Benchmarks benchmark --target HotPathBenchmarks
//   swift package --package-path Benchmarks benchmark baseline check ci --target HotPathBenchmarks
//   swift package --package-path Benchmarks --allow-writing-to-package-directory \
//       benchmark baseline update ci --target HotPathBenchmarks

/// The table and connections, made once per benchmark process by the setup hook.
private let fixture = Mutex<HotPath?>(nil)
/// Which row the next iteration uses: consecutive iterations never reuse a row (10,000 rows).
private let nextRow = Atomic<Int>(0)

let benchmarks: @Sendable () -> Void = {
    // p90 and above move with the checkpointer and the writer thread; the middle does not.
    let allocations = BenchmarkThresholds(absolute: [.p25: 2, .p50: 2, .p75: 2])
    let unchecked = BenchmarkThresholds(relative: [:], absolute: [:])
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 200,
        maxDuration: .seconds(2),
        maxIterations: 20_000,
        thresholds: [.mallocCountTotal: allocations, .wallClock: unchecked, .throughput: unchecked]
    )
    Benchmark.setup = {
        let made = try await HotPath.make()
        fixture.withLock { $0 = made }
    }
    Benchmark.teardown = {
        let made = fixture.withLock { value in
            defer { value = nil }
            return value
        }
        try await made?.close()
    }
    for operation in HotPath.Operation.allCases {
        Benchmark(operation.rawValue) { benchmark in
            guard let hotPath = fixture.withLock({ $0 }) else { throw HotPathBenchmarkError.noFixture }
            for _ in benchmark.scaledIterations {
                try await hotPath.run(operation, iteration: nextRow.add(1, ordering: .relaxed).oldValue)
            }
        }
    }
}

enum HotPathBenchmarkError: Error {
    /// The setup hook did not run or failed.
    case noFixture
}
