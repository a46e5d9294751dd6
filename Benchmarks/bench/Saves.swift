import SessionStore
import SessionStoreSQLite

extension BenchRun {
    /// Scenario 3: saves (one attribute changed, the row rewritten) with one transaction
    /// per save vs group commit, at `synchronous` NORMAL and FULL, by writer count; vs the
    /// floor's raw UPDATEs one per transaction and 100 per transaction, and vs the naive store.
    func saves() async throws {
        let scenario = "3 saves: rewrite one session (ops = rows written)"
        let rows = settings.saveRows
        let mmap = settings.mmapSize
        let payloads = (0..<16).map { Payload.encoded($0) }
        let perWriter = 16
        for synchronous in [SQLiteConfiguration.Synchronous.normal, .full] {
            let level = synchronous.rawValue.uppercased()
            let path = file("saves-\(synchronous.rawValue).db")
            let naivePath = file("saves-naive-\(synchronous.rawValue).db")
            let keys = try await Fill.storeTable(path: path, rows: rows, plan: .fresh, settings: settings)
            try await Fill.naiveTable(path: naivePath, rows: rows, plan: .fresh)

            status("saves \(level): floor")
            let floorSingle = try await measureThreads(concurrency: 1, window: window) { _ in
                let floor = try Floor(path: path, synchronous: level, mmapSize: mmap)
                var random = FastRandom(seed: 5)
                return { iteration in
                    let index = random.below(rows)
                    try floor.update(
                        keys.values[index], checksum: keys.checksums[index], data: payloads[iteration & 15],
                        expiresAt: wallMillis() + 1_800_000)
                }
            }
            var floorBatch = try await measureThreads(concurrency: 1, window: window) { _ in
                let floor = try Floor(path: path, synchronous: level, mmapSize: mmap)
                var random = FastRandom(seed: 6)
                return { iteration in
                    try floor.db.exec("BEGIN")
                    for row in 0..<100 {
                        let index = random.below(rows)
                        try floor.update(
                            keys.values[index], checksum: keys.checksums[index], data: payloads[(iteration + row) & 15],
                            expiresAt: wallMillis() + 1_800_000)
                    }
                    try floor.db.exec("COMMIT")
                }
            }
            floorBatch.count *= 100
            status("saves \(level): naive")
            let naive = try await measureThreads(concurrency: 1, window: window) { _ in
                let naive = try NaiveStore(path: naivePath, synchronous: level, mmapSize: mmap)
                var random = FastRandom(seed: 7)
                return { iteration in
                    try naive.rewrite(IDs.id(random.below(rows)), counter: iteration, now: wallMillis())
                }
            }
            report.add(ResultRow(
                scenario: scenario, name: "floor UPDATE, 1 per txn, \(level)", rows: rows, concurrency: 1, sample: floorSingle))
            report.add(ResultRow(
                scenario: scenario, name: "floor UPDATE, 100 per txn, \(level)", rows: rows, concurrency: 1, sample: floorBatch,
                note: "latency per transaction of 100"))
            report.add(ResultRow(
                scenario: scenario, name: "naive load+write, \(level)", rows: rows, concurrency: 1, sample: naive))

            var perSaveByWriters: [Int: Double] = [:]
            for groupCommit in [false, true] {
                let store = try openStore(path: path, synchronous: synchronous, groupCommit: groupCommit)
                let mode = groupCommit ? "group commit" : "1 txn per save"
                for writers in settings.writers {
                    status("saves \(level): store, \(mode), \(writers) writer(s)")
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
                    let baseline = groupCommit ? floorBatch.opsPerSecond : floorSingle.opsPerSecond
                    report.add(ResultRow(
                        scenario: scenario, name: "store save, \(mode), \(level)", rows: rows, concurrency: writers,
                        sample: sample, vsFloor: baseline / sample.opsPerSecond, vsNaive: naive.opsPerSecond / sample.opsPerSecond,
                        note: groupCommit ? "×floor vs 100 per txn" : "×floor vs 1 per txn"))
                    if !groupCommit {
                        perSaveByWriters[writers] = sample.opsPerSecond
                    } else if synchronous == .full && writers == settings.writers.max() {
                        figures.groupFullVsFloor = (writers, sample.opsPerSecond / floorBatch.opsPerSecond)
                        if let single = perSaveByWriters[writers] {
                            figures.groupFullVsPerSave = (writers, sample.opsPerSecond / single)
                        }
                    }
                }
                try await store.shutdown()
            }
            remove(path)
            remove(naivePath)
        }
    }
}
