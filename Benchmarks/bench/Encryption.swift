import SessionStoreCore

extension BenchRun {
    /// The rings of scenario 8: `old` seals the table first, `new` is what `rekey` moves it to.
    static let encryptionRings: (old: EncryptionKeyRing, new: EncryptionKeyRing) = {
        do {
            let old = try EncryptionKeyRing.Key(id: "old", bytes: [UInt8](repeating: 0x0D, count: 32))
            let new = try EncryptionKeyRing.Key(id: "new", bytes: [UInt8](repeating: 0x0E, count: 32))
            return (try EncryptionKeyRing(active: old), try EncryptionKeyRing(active: new, decryptOnly: [old]))
        } catch {
            fatalError("the bench's fixed keys are invalid: \(error)")
        }
    }()

    /// Scenario 8: encryption at rest. A load with 5 attributes read and a save (load, change
    /// one attribute, save), on a plaintext table and on the same rows sealed, interleaved in
    /// one run; then `rekey` (every row re-sealed under a new key, one merge per row, 8 in
    /// flight, as `session-store rekey` does) on the cleanup scenario's table size, idle and
    /// while a reader and a writer (1 save/ms) run: rows/s and the saves' worst stall.
    func encryption<E: Engine>(_ engine: E) async throws {
        let scenario = engine.title("8 encryption", "AES-256-GCM at rest vs plaintext, and rekey under load")
        let rows = settings.saveRows
        let rings = Self.encryptionRings
        let plainTable = try await engine.fillStoreTable("enc-plain", rows: rows, key: engine.defaultKey, plan: .fresh)
        let sealedTable = try await engine.fillStoreTable("enc-sealed", rows: rows, key: engine.defaultKey, plan: .fresh)
        let plain = try await openStore(engine, plainTable)
        let sealingBackend = EncryptingBackend(wrapping: try await engine.openBackend(sealedTable, durability: nil, writeMode: nil), keys: rings.old)
        status(engine.labelled("sealing \(Fmt.rows(rows)) rows"))
        _ = try await Self.reseal(sealingBackend, sealedTable.keys.values)
        // The plaintext table gets the same rewrite (each row once, its data unchanged), so both
        // are measured in the same state: rows rewritten in place, the rewrite's WAL being copied back.
        status(engine.labelled("rewriting \(Fmt.rows(rows)) plaintext rows"))
        try await Self.rewriteInPlace(plain.backend, plainTable.keys.values)
        let sealed = try SessionStore(backend: sealingBackend, configuration: storeConfiguration(), logger: quietLogger)

        func readContender(_ store: SessionStore) -> Contender {
            { window in try await measureTasks(concurrency: 1, window: window) { worker in
                var random = FastRandom(seed: UInt64(worker) &+ 71)
                return { _ in
                    try readFiveAttributes(try await store.load(id: IDs.id(random.below(rows))))
                }
            } }
        }
        func saveContender(_ store: SessionStore) -> Contender {
            { window in try await measureTasks(concurrency: 1, window: window) { worker in
                var random = FastRandom(seed: UInt64(worker) &+ 73)
                return { _ in
                    var session = try await store.load(id: IDs.id(random.below(rows)))
                    // Unique across rounds (each round replays the same ids): every save writes.
                    try session.set("last_page", "/account/orders?seen=\(nanos())")
                    guard try await store.save(&session) == .updated else { throw BenchError("a save was not an update") }
                }
            } }
        }
        status(engine.labelled("encryption: load + 5 attributes"))
        let reads = try await interleaved([readContender(plain), readContender(sealed)])
        status(engine.labelled("encryption: load, change, save"))
        let saves = try await interleaved([saveContender(plain), saveContender(sealed)])
        let readRatio = reads[0].opsPerSecond / reads[1].opsPerSecond
        let saveRatio = saves[0].opsPerSecond / saves[1].opsPerSecond
        report.add(ResultRow(scenario: scenario, name: "load + 5 attributes, plaintext", rows: rows, concurrency: 1, sample: reads[0]))
        report.add(ResultRow(
            scenario: scenario, name: "load + 5 attributes, encrypted", rows: rows, concurrency: 1, sample: reads[1],
            note: "\(Fmt.fixed(readRatio, 2))× plaintext's time"))
        report.add(ResultRow(scenario: scenario, name: "load, change, save, plaintext", rows: rows, concurrency: 1, sample: saves[0]))
        report.add(ResultRow(
            scenario: scenario, name: "load, change, save, encrypted", rows: rows, concurrency: 1, sample: saves[1],
            note: "\(Fmt.fixed(saveRatio, 2))× plaintext's time"))
        figures.encryptedRead = readRatio
        figures.encryptedSave = saveRatio
        try await plain.shutdown()
        try await sealed.shutdown()
        try await engine.drop(plainTable.location)
        try await engine.drop(sealedTable.location)

        // rekey on a large table: plaintext → old while idle, then old → new under load.
        let large = settings.cleanupRows
        let table = try await engine.fillStoreTable("enc-rekey", rows: large, key: engine.defaultKey, plan: .fresh)
        let base = try await engine.openBackend(table, durability: nil, writeMode: nil)
        let toOld = EncryptingBackend(wrapping: base, keys: rings.old)
        status(engine.labelled("rekey \(Fmt.rows(large)) rows: plaintext → old, idle"))
        let idleStart = nanos()
        let first = try await Self.reseal(toOld, table.keys.values)
        let idleSeconds = Double(nanos() - idleStart) / 1e9
        report.add(ResultRow(
            scenario: scenario, name: "rekey plaintext → key, idle", rows: large,
            note: "\(Fmt.rows(first)) rows in \(Fmt.fixed(idleSeconds, 1)) s, \(Fmt.num(Double(first) / idleSeconds)) rows/s"))
        let toNew = EncryptingBackend(wrapping: base, keys: rings.new)
        let store = try SessionStore(backend: toNew, configuration: storeConfiguration(), logger: quietLogger)
        let keys = table.keys.values
        let outcome = try await underStoreLoad(store, rows: large, label: engine.labelled("rekey old → new under load")) {
            try await Self.reseal(toNew, keys)
        }
        var stalls = outcome.writes.sample
        stalls.seconds = outcome.seconds
        let p999 = Double(stalls.histogram.valueAtPercentile(99.9)) / 1e6
        let over = stalls.histogram.count(above: 25_000_000)
        report.add(ResultRow(
            scenario: scenario, name: "rekey key → new key, 1 reader + 1 writer", rows: large, sample: stalls,
            note: "\(Fmt.rows(outcome.deleted)) rows in \(Fmt.fixed(outcome.seconds, 1)) s, "
                + "\(Fmt.num(Double(outcome.deleted) / outcome.seconds)) rows/s; latencies are the saves' "
                + "(p99.9 \(Fmt.fixed(p999, 1)) ms, \(over) of \(stalls.count) over 25 ms)"))
        figures.rekeyWriterStall = (large, outcome.writes.sample.max / 1000)
        figures.rekeyRate = Double(outcome.deleted) / outcome.seconds
        try await store.shutdown()
        try await engine.drop(table.location)
    }

    /// Re-seals every row of `values` through `backend` as `session-store rekey` does: one
    /// paced scope for the whole run, batches of 500, 8 rewrites in flight; returns the rows
    /// rewritten.
    static func reseal(_ backend: EncryptingBackend, _ values: [String]) async throws -> Int {
        let now = wallMillis()
        return try await backend.resealing { resealer in
            var rewritten = 0
            for start in stride(from: 0, to: values.count, by: 500) {
                let batch = values[start..<min(start + 500, values.count)].map { SessionKey(value: $0) }
                let counts = try await resealer.reseal(batch, now: now, parallel: 8)
                guard counts.failed == 0 else { throw BenchError("\(counts.failed) rows could not be opened") }
                rewritten += Int(counts.rewritten)
            }
            return rewritten
        }
    }

    /// Rewrites every row of `values` through `backend` with its data unchanged, 8 at a time:
    /// what sealing does to the other table, without the encryption.
    static func rewriteInPlace(_ backend: any StorageBackend, _ values: [String]) async throws {
        let now = wallMillis()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (offset, value) in values.enumerated() {
                if offset >= 8 { _ = try await group.next() }
                group.addTask {
                    try await backend.merge(SessionKey(value: value), now: now) { current in
                        guard let current else { return (.none, ()) }
                        return (.replace(data: current.data, expiresAt: current.expiresAt), ())
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
