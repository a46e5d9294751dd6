import SessionStoreCore

extension BenchRun {
    /// Scenario 3: saves (one attribute changed, the row rewritten) in each of the engine's
    /// write modes (SQLite: one transaction per save and group commit) at each durability
    /// level (SQLite: `synchronous` NORMAL and FULL), by writer count; vs the floor's raw
    /// UPDATEs one per transaction and 100 per transaction, and vs the naive store.
    func saves<E: Engine>(_ engine: E) async throws {
        let scenario = engine.title("3 saves", "rewrite one session (ops = rows written)")
        let rows = settings.saveRows
        let payloads = (0..<16).map { Payload.encoded($0) }
        let perWriter = 16
        for durability in engine.durabilities {
            let level = durability.label.map { ", \($0)" } ?? ""
            let suffix = durability.label.map { "-\($0.lowercased())" } ?? ""
            let table = try await engine.fillStoreTable("saves\(suffix)", rows: rows, key: engine.defaultKey, plan: .fresh)
            let naiveTable = try await engine.fillNaiveTable("saves-naive\(suffix)", rows: rows, plan: .fresh)
            let keys = table.keys

            status(engine.labelled("saves\(level): floor"))
            let floorSingle = try await measureThreads(concurrency: 1, window: window) { _ in
                let floor = try engine.floor(table, durability: durability)
                var random = FastRandom(seed: 5)
                return { iteration in
                    let index = random.below(rows)
                    try floor.update(
                        keys.values[index], checksum: keys.checksums[index], slot: keys.slots[index], data: payloads[iteration & 15],
                        expiresAt: wallMillis() + 1_800_000)
                }
            }
            var floorBatch = try await measureThreads(concurrency: 1, window: window) { _ in
                let floor = try engine.floor(table, durability: durability)
                var random = FastRandom(seed: 6)
                return { iteration in
                    try floor.begin()
                    for row in 0..<100 {
                        let index = random.below(rows)
                        try floor.update(
                            keys.values[index], checksum: keys.checksums[index], slot: keys.slots[index], data: payloads[(iteration + row) & 15],
                            expiresAt: wallMillis() + 1_800_000)
                    }
                    try floor.commit()
                }
            }
            floorBatch.count *= 100
            status(engine.labelled("saves\(level): naive"))
            let naive = try await measureThreads(concurrency: 1, window: window) { _ in
                let naive = try engine.naive(naiveTable, durability: durability)
                var random = FastRandom(seed: 7)
                return { iteration in
                    try naive.rewrite(IDs.id(random.below(rows)), counter: iteration, now: wallMillis())
                }
            }
            report.add(ResultRow(
                scenario: scenario, name: "floor UPDATE, 1 per txn\(level)", rows: rows, concurrency: 1, sample: floorSingle))
            report.add(ResultRow(
                scenario: scenario, name: "floor UPDATE, 100 per txn\(level)", rows: rows, concurrency: 1, sample: floorBatch,
                note: "latency per transaction of 100"))
            report.add(ResultRow(
                scenario: scenario, name: "naive load+write\(level)", rows: rows, concurrency: 1, sample: naive))

            var perSaveByWriters: [Int: Double] = [:]
            for mode in engine.writeModes {
                let store = try await openStore(engine, table, durability: durability, writeMode: mode)
                for writers in settings.writers {
                    status(engine.labelled("saves\(level): store, \(mode.name), \(writers) writer(s)"))
                    let sample = try await measureTasks(concurrency: writers, window: window) { worker in
                        var sessions: [Session] = []
                        let nonce = UInt32.random(in: 0...UInt32.max)
                        for slot in 0..<perWriter {
                            let index = (worker + slot * writers) % rows
                            sessions.append(try await store.load(id: IDs.id(index)))
                        }
                        return { iteration in
                            var session = sessions[iteration % perWriter]
                            try session.set("counter", "\(nonce)-\(iteration)")
                            let outcome = try await store.save(&session)
                            guard outcome == .updated else { throw BenchError("save gave \(outcome)") }
                            sessions[iteration % perWriter] = session
                        }
                    }
                    let baseline = mode.groupCommit ? floorBatch.opsPerSecond : floorSingle.opsPerSecond
                    report.add(ResultRow(
                        scenario: scenario, name: "store save, \(mode.name)\(level)", rows: rows, concurrency: writers,
                        sample: sample, vsFloor: baseline / sample.opsPerSecond, vsNaive: naive.opsPerSecond / sample.opsPerSecond,
                        note: mode.groupCommit ? "×floor vs 100 per txn" : "×floor vs 1 per txn"))
                    if !mode.groupCommit {
                        perSaveByWriters[writers] = sample.opsPerSecond
                    } else if durability == .full && writers == settings.writers.max() {
                        figures.groupFullVsFloor = (writers, sample.opsPerSecond / floorBatch.opsPerSecond)
                        if let single = perSaveByWriters[writers] {
                            figures.groupFullVsPerSave = (writers, sample.opsPerSecond / single)
                        }
                    }
                }
                try await store.shutdown()
            }
            try await engine.drop(table.location)
            try await engine.drop(naiveTable.location)
        }
    }
}
