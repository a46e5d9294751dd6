import SessionStore

extension BenchRun {
    /// Scenario 5: key layout `(crc32, id)` vs id alone on the largest table; store and
    /// floor on each, one task.
    func keys() async throws {
        let scenario = "5 keys: key layout on the largest table, 1 task (ops = loads)"
        let rows = settings.rows.max()!
        let mmap = settings.mmapSize
        let crcPath: String
        let keys: StoredKeys
        if let kept = largestLoadsTable, kept.rows == rows {
            crcPath = kept.path
            keys = kept.keys
        } else {
            crcPath = file("keys-crc.db")
            keys = try await Fill.storeTable(path: crcPath, rows: rows, plan: .fresh, settings: settings)
        }
        let idPath = file("keys-id.db")
        try await Fill.storeTable(path: idPath, rows: rows, layout: .idOnly, plan: .fresh, settings: settings)
        var hits: [KeyLayout: (store: Double, floor: Double, miss: Double)] = [:]
        for (layout, path) in [(KeyLayout.checksumAndID, crcPath), (.idOnly, idPath)] {
            let name = layout == .checksumAndID ? "(crc32, id)" : "(id)"
            status("keys \(name)")
            let store = try openStore(path: path, layout: layout)
            let floor = try await measureThreads(concurrency: 1, window: window) { _ in
                let floor = try Floor(path: path, layout: layout, mmapSize: mmap)
                var random = FastRandom(seed: 41)
                return { _ in
                    let index = random.below(rows)
                    guard try floor.load(keys.values[index], checksum: keys.checksums[index], now: wallMillis()) else {
                        throw BenchError("floor missed")
                    }
                }
            }
            let hit = try await measureTasks(concurrency: 1, window: window) { _ in
                var random = FastRandom(seed: 41)
                return { _ in
                    guard try await store.load(id: IDs.id(random.below(rows))).isStored else { throw BenchError("store missed") }
                }
            }
            let miss = try await measureTasks(concurrency: 1, window: window) { _ in
                var random = FastRandom(seed: 43)
                return { _ in _ = try await store.load(id: IDs.missID(random.below(StoredKeys.missCount))) }
            }
            try await store.shutdown()
            hits[layout] = (hit.opsPerSecond, floor.opsPerSecond, miss.opsPerSecond)
            report.add(ResultRow(
                scenario: scenario, name: "store hit, key \(name)", rows: rows, concurrency: 1, sample: hit,
                vsFloor: floor.opsPerSecond / hit.opsPerSecond))
            report.add(ResultRow(scenario: scenario, name: "floor hit, key \(name)", rows: rows, concurrency: 1, sample: floor))
            report.add(ResultRow(scenario: scenario, name: "store miss, key \(name)", rows: rows, concurrency: 1, sample: miss))
        }
        if let crc = hits[.checksumAndID], let id = hits[.idOnly] {
            func change(_ a: Double, _ b: Double) -> String {
                let percent = (a / b - 1) * 100
                return (percent >= 0 ? "+" : "") + Fmt.fixed(percent, 1) + "%"
            }
            report.comment(
                "(crc32, id) vs (id) throughput: store hits \(change(crc.store, id.store)), floor hits "
                    + "\(change(crc.floor, id.floor)), store misses \(change(crc.miss, id.miss))")
        }
        remove(idPath)
        remove(crcPath)
    }
}
