import Foundation
import SessionStoreCore
import Synchronization

/// Latencies of one background participant, recorded only while the cleanup runs.
struct LoadRecord: Sendable {
    var sample = Sample()
    /// Worst latency (ns) per slice of ``LoadRecord/slice`` since the cleanup began.
    var slices: [UInt64] = []
    static let slice: UInt64 = 100_000_000

    mutating func record(start: UInt64, end: UInt64, since origin: UInt64) {
        guard origin != 0, start >= origin else { return }
        let latency = end - start
        sample.histogram.record(latency)
        sample.count += 1
        let index = Int((start - origin) / Self.slice)
        if index >= slices.count { slices.append(contentsOf: repeatElement(0, count: index - slices.count + 1)) }
        slices[index] = Swift.max(slices[index], latency)
    }
}

/// When the cleanup began (0 before): background participants record only after it.
final class Origin: Sendable {
    let value = Atomic<UInt64>(0)
}

/// The outcome of one cleanup under load.
struct CleanupOutcome {
    var deleted: Int
    var seconds: Double
    var reads: LoadRecord
    var writes: LoadRecord
}

extension BenchRun {
    /// Scenario 4: cleanup of a table of which half has expired, while a reader and a
    /// writer run: the store's batched cleanup, one unbounded DELETE (the floor), and the
    /// naive store's select-then-delete-one-by-one.
    func cleanup<E: Engine>(_ engine: E) async throws {
        let scenario = engine.title("4 cleanup", "half the table expired, 1 reader + 1 writer (1 save/ms) running")
        let rows = settings.cleanupRows
        let expired = (rows + 1) / 2
        let method = engine.cleanupMethod(batch: settings.cleanupBatch)

        // The store's batched cleanup; reader and writer through the store.
        let storeTable = try await engine.fillStoreTable("cleanup-store", rows: rows, key: engine.defaultKey, plan: .halfExpired)
        let store = try await openStore(engine, storeTable)
        let storeOutcome = try await underStoreLoad(store, rows: rows, label: engine.labelled("cleanup: store, \(method)")) {
            try await store.cleanup()
        }
        try await store.shutdown()
        try await engine.drop(storeTable.location)

        // The floor: one unbounded DELETE through the C API; the same store reader and writer.
        let floorTable = try await engine.fillStoreTable("cleanup-floor", rows: rows, key: engine.defaultKey, plan: .halfExpired)
        let floorStore = try await openStore(engine, floorTable)
        let floorOutcome = try await underStoreLoad(floorStore, rows: rows, label: engine.labelled("cleanup: one DELETE (floor)")) {
            try await onThread {
                try engine.floor(floorTable, durability: nil).deleteExpired(now: wallMillis())
            }
        }
        try await floorStore.shutdown()
        try await engine.drop(floorTable.location)

        // The naive store: select the expired ids, delete them one by one; naive reader and writer.
        let naiveTable = try await engine.fillNaiveTable("cleanup-naive", rows: rows, plan: .halfExpired)
        let naiveOutcome = try await underNaiveLoad(rows: rows, expired: expired, label: engine.labelled("cleanup: naive, one DELETE per row")) {
            try engine.naive(naiveTable, durability: nil)
        }
        try await engine.drop(naiveTable.location)

        reportCleanup(
            scenario: scenario, rows: rows, expired: expired, store: storeOutcome, storeName: "store cleanup, \(method)",
            floor: floorOutcome, naive: naiveOutcome)

        // 1% expired: what a cleanup costs that has little to delete (SQLite's walk reads
        // the whole table); the store against one unbounded DELETE on the same layout.
        var sparse: [(String, CleanupOutcome)] = []
        for (name, isStore) in [("store cleanup, 1% expired", true), ("floor: one unbounded DELETE, 1% expired", false)] {
            let table = try await engine.fillStoreTable("cleanup-sparse", rows: rows, key: engine.defaultKey, plan: .sparseExpired)
            let sparseStore = try await openStore(engine, table)
            let outcome = try await underStoreLoad(sparseStore, rows: rows, label: engine.labelled("cleanup: \(name)")) {
                if isStore { return try await sparseStore.cleanup() }
                return try await onThread { try engine.floor(table, durability: nil).deleteExpired(now: wallMillis()) }
            }
            try await sparseStore.shutdown()
            try await engine.drop(table.location)
            sparse.append((name, outcome))
        }
        reportSparseCleanup(scenario: scenario, rows: rows, store: sparse[0].1, storeName: sparse[0].0, floor: sparse[1].1, floorName: sparse[1].0)
    }

    func reportSparseCleanup(
        scenario: String, rows: Int, store storeOutcome: CleanupOutcome, storeName: String,
        floor floorOutcome: CleanupOutcome, floorName: String
    ) {
        addCleanupRows(scenario: scenario, rows: rows, name: storeName, storeOutcome, vsFloor: storeOutcome.seconds / floorOutcome.seconds)
        addCleanupRows(scenario: scenario, rows: rows, name: floorName, floorOutcome)
    }

    /// One cleanup's rows: its rate (and ratios, for the store's), then the reader's and the
    /// writer's latencies meanwhile.
    private func addCleanupRows(
        scenario: String, rows: Int, name: String, _ outcome: CleanupOutcome, vsFloor: Double? = nil, vsNaive: Double? = nil
    ) {
        var outcome = outcome
        var row = ResultRow(
            scenario: scenario, name: name, rows: rows, concurrency: nil,
            note: "deleted \(outcome.deleted) in \(Fmt.fixed(outcome.seconds, 2)) s (ops = rows deleted/s)")
        row.opsPerSecond = Double(outcome.deleted) / outcome.seconds
        row.vsFloor = vsFloor
        row.vsNaive = vsNaive
        report.add(row)
        outcome.reads.sample.seconds = outcome.seconds
        outcome.writes.sample.seconds = outcome.seconds
        report.add(ResultRow(
            scenario: scenario, name: "  reader loads meanwhile", rows: rows, concurrency: 1, sample: outcome.reads.sample))
        report.add(ResultRow(
            scenario: scenario, name: "  writer saves meanwhile", rows: rows, concurrency: 1, sample: outcome.writes.sample,
            note: "max = worst stall"))
    }

    func reportCleanup(
        scenario: String, rows: Int, expired: Int, store storeOutcome: CleanupOutcome, storeName: String,
        floor floorOutcome: CleanupOutcome, naive naiveOutcome: CleanupOutcome
    ) {
        for (name, outcome, isStore) in [
            (storeName, storeOutcome, true),
            ("floor: one unbounded DELETE", floorOutcome, false),
            ("naive: SELECT, then DELETE each", naiveOutcome, false),
        ] {
            addCleanupRows(
                scenario: scenario, rows: rows, name: name, outcome,
                vsFloor: isStore ? outcome.seconds / floorOutcome.seconds : nil,
                vsNaive: isStore ? outcome.seconds / naiveOutcome.seconds : nil)
            report.plot.cleanup[name] = outcome.reads.slices.enumerated().map {
                [Double($0.offset) * Double(LoadRecord.slice) / 1e9, Double($0.element) / 1000]
            }
        }
        figures.cleanupWriterStall = (expired, storeOutcome.writes.sample.max / 1000)
        figures.cleanupReaderP99 = (expired, storeOutcome.reads.sample.p99 / 1000)
        figures.cleanupVsDelete = (expired, storeOutcome.seconds / floorOutcome.seconds)
    }

    /// Runs `work` while one task loads live sessions and another saves one every
    /// millisecond, all through `store`.
    func underStoreLoad(
        _ store: SessionStore, rows: Int, label: String, _ work: @escaping @Sendable () async throws -> Int
    ) async throws -> CleanupOutcome {
        let stop = StopFlag()
        let origin = Origin()
        let live = (rows / 2)
        let reader = Task { () throws -> LoadRecord in
            var record = LoadRecord()
            var random = FastRandom(seed: 91)
            while !stop.isSet {
                let start = nanos()
                let session = try await store.load(id: IDs.id(2 * random.below(live) + 1))
                let end = nanos()
                guard session.isStored else { throw BenchError("a live session was not found during cleanup") }
                record.record(start: start, end: end, since: origin.value.load(ordering: .relaxed))
            }
            return record
        }
        let writer = Task { () throws -> LoadRecord in
            var record = LoadRecord()
            var random = FastRandom(seed: 92)
            var iteration = 0
            while !stop.isSet {
                var session = try await store.load(id: IDs.id(2 * random.below(live) + 1))
                try session.set("counter", iteration)
                iteration += 1
                let start = nanos()
                let outcome = try await store.save(&session)
                let end = nanos()
                // A rekey running meanwhile rewrites rows, so a save may merge; cleanup never makes one.
                switch outcome {
                case .updated, .merged: break
                default: throw BenchError("a save during the measured work gave \(outcome)")
                }
                record.record(start: start, end: end, since: origin.value.load(ordering: .relaxed))
                try await Task.sleep(for: .milliseconds(1))
            }
            return record
        }
        try await Task.sleep(for: .milliseconds(200))
        let ticker = Task {
            let progress = Progress(label, total: 0)
            while !Task.isCancelled {
                progress.update(0)
                try? await Task.sleep(for: .milliseconds(250))
            }
            progress.finish()
        }
        let start = nanos()
        origin.value.store(start, ordering: .relaxed)
        let result: Result<Int, any Error>
        do {
            result = .success(try await work())
        } catch {
            result = .failure(error)
        }
        let seconds = Double(nanos() - start) / 1e9
        stop.set()
        ticker.cancel()
        await ticker.value
        let reads = try await reader.value
        let writes = try await writer.value
        return CleanupOutcome(deleted: try result.get(), seconds: seconds, reads: reads, writes: writes)
    }

    /// The naive store's cleanup with its own reader and writer on plain threads.
    func underNaiveLoad(
        rows: Int, expired: Int, label: String, _ makeNaive: @escaping @Sendable () throws -> any NaiveConnection
    ) async throws -> CleanupOutcome {
        let stop = StopFlag()
        let origin = Origin()
        let live = rows / 2
        let background = Task {
            try await onThreads(2) { role -> LoadRecord in
                let naive = try makeNaive()
                var record = LoadRecord()
                var random = FastRandom(seed: 93 + UInt64(role))
                var iteration = 0
                while !stop.isSet {
                    let sid = IDs.id(2 * random.below(live) + 1)
                    let now = wallMillis()
                    if role == 0 {
                        let start = nanos()
                        guard try naive.load(sid, now: now) != nil else { throw BenchError("naive live row missing") }
                        record.record(start: start, end: nanos(), since: origin.value.load(ordering: .relaxed))
                    } else {
                        guard var attributes = try naive.load(sid, now: now) else { throw BenchError("naive live row missing") }
                        attributes["counter"] = Array("\(iteration)".utf8)
                        iteration += 1
                        let start = nanos()
                        try naive.write(sid, attributes, now: now)
                        record.record(start: start, end: nanos(), since: origin.value.load(ordering: .relaxed))
                        usleep(1000)
                    }
                }
                return record
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        let start = nanos()
        origin.value.store(start, ordering: .relaxed)
        let result: Result<Int, any Error>
        do {
            result = .success(try await onThread {
                let naive = try makeNaive()
                let progress = Progress(label, total: expired)
                defer { progress.finish() }
                return try naive.cleanup(now: wallMillis(), progress: progress)
            })
        } catch {
            result = .failure(error)
        }
        let seconds = Double(nanos() - start) / 1e9
        stop.set()
        let records = try await background.value
        return CleanupOutcome(deleted: try result.get(), seconds: seconds, reads: records[0], writes: records[1])
    }
}
