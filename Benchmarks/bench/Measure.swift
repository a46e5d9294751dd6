import Foundation
import Synchronization

/// What one measurement produced: operations counted in the timed window, and each
/// operation's latency in a real histogram.
struct Sample: Sendable {
    var count: Int
    var seconds: Double
    var histogram: LatencyHistogram

    init(count: Int = 0, seconds: Double = 0, histogram: LatencyHistogram = LatencyHistogram()) {
        self.count = count
        self.seconds = seconds
        self.histogram = histogram
    }

    var opsPerSecond: Double { seconds > 0 ? Double(count) / seconds : 0 }
    var p50: Double { Double(histogram.valueAtPercentile(50)) / 1000 }
    var p99: Double { Double(histogram.valueAtPercentile(99)) / 1000 }
    var max: Double { Double(histogram.max) / 1000 }

    mutating func merge(_ other: Sample) {
        count += other.count
        histogram.add(other.histogram)
    }
}

/// Durations of a measurement: a short untimed warm-up, then the timed window.
struct Window: Sendable {
    var warmup: Double
    var duration: Double
}

/// One measurement of a contender in a window it is given (``BenchRun/interleaved(_:)``).
typealias Contender = @Sendable (Window) async throws -> Sample

extension BenchRun {
    /// Rounds per contender in ``interleaved(_:)``.
    static let interleavedRounds = 4

    /// Measures each contender in ``interleavedRounds`` windows of a quarter of the window,
    /// taking them in turn and rotating the order each round, and merges each one's
    /// windows: a change in the machine's load during the measurement (this machine is
    /// shared) then weighs on every contender alike instead of on whichever ran last.
    /// The first round warms up as one whole window does; later rounds briefly.
    func interleaved(_ contenders: [Contender]) async throws -> [Sample] {
        let rounds = Self.interleavedRounds
        var merged = [Sample](repeating: Sample(), count: contenders.count)
        for round in 0..<rounds {
            let warmup = round == 0 ? window.warmup : min(window.warmup, 0.05)
            let roundWindow = Window(warmup: warmup, duration: window.duration / Double(rounds))
            for offset in 0..<contenders.count {
                let index = (offset + round) % contenders.count
                let sample = try await contenders[index](roundWindow)
                merged[index].merge(sample)
                merged[index].seconds += sample.seconds
            }
        }
        return merged
    }
}

/// Runs `concurrency` tasks on Swift's concurrency pool, each calling its operation in a
/// loop for the window, and records every call's latency. `setup` runs once per task,
/// untimed, and returns the operation (called with the iteration number).
func measureTasks(
    concurrency: Int, window: Window,
    _ setup: @escaping @Sendable (Int) async throws -> (Int) async throws -> Void
) async throws -> Sample {
    let start = nanos()
    let timedFrom = start + UInt64(window.warmup * 1e9)
    let deadline = timedFrom + UInt64(window.duration * 1e9)
    var total = Sample()
    try await withThrowingTaskGroup(of: Sample.self) { group in
        for worker in 0..<concurrency {
            group.addTask {
                let operation = try await setup(worker)
                var sample = Sample()
                var iteration = 0
                while true {
                    let t0 = nanos()
                    if t0 >= deadline { break }
                    try await operation(iteration)
                    iteration += 1
                    if t0 >= timedFrom {
                        sample.histogram.record(nanos() - t0)
                        sample.count += 1
                    }
                }
                return sample
            }
        }
        for try await sample in group { total.merge(sample) }
    }
    total.seconds = Double(Swift.max(nanos(), deadline) - timedFrom) / 1e9
    return total
}

/// Runs `concurrency` dedicated threads, each calling its blocking operation in a loop
/// for the window (the floor and the naive store: plain C calls on plain threads).
/// `setup` runs on the thread, untimed (open connections, prepare statements).
func measureThreads(
    concurrency: Int, window: Window,
    _ setup: @escaping @Sendable (Int) throws -> (Int) throws -> Void
) async throws -> Sample {
    let start = nanos()
    let timedFrom = start + UInt64(window.warmup * 1e9)
    let deadline = timedFrom + UInt64(window.duration * 1e9)
    let samples = try await onThreads(concurrency) { worker -> Sample in
        let operation = try setup(worker)
        var sample = Sample()
        var iteration = 0
        while true {
            let t0 = nanos()
            if t0 >= deadline { break }
            try operation(iteration)
            iteration += 1
            if t0 >= timedFrom {
                sample.histogram.record(nanos() - t0)
                sample.count += 1
            }
        }
        return sample
    }
    var total = Sample()
    for sample in samples { total.merge(sample) }
    total.seconds = Double(Swift.max(nanos(), deadline) - timedFrom) / 1e9
    return total
}

/// Runs `body` on `count` new threads and returns their results in order; blocking work
/// stays off Swift's cooperative pool (2 threads on this machine).
func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
    let results = Mutex<[Int: Result<T, any Error>]>([:])
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[T], any Error>) in
        for index in 0..<count {
            let thread = Thread {
                let result = Result { try body(index) }
                let all = results.withLock { results -> [Int: Result<T, any Error>]? in
                    results[index] = result
                    return results.count == count ? results : nil
                }
                guard let all else { return }
                do {
                    continuation.resume(returning: try (0..<count).map { try all[$0]!.get() })
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }
}

/// Runs blocking `body` on one new thread.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onThreads(1) { _ in try body() }[0]
}
