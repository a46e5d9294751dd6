import SessionStore
import SessionStoreSQLite

extension BenchRun {
    /// Scenario 5: key layout `(crc32, id)` vs id alone on the largest table; store and
    /// floor on each, one task.
    func keys() async throws {
        let scenario = "5 keys: key layout on the largest table, 1 task, 3 alternating rounds (ops = loads)"
        let rows = settings.rows.max()!
        let mmap = settings.mmapSize
        // Both tables are filled here, the same way, one after the other: reusing the loads
        // table for one layout measured whichever table was filled last as faster.
        var paths: [KeyLayout: String] = [:]
        var filled: StoredKeys?
        for layout in [KeyLayout.idOnly, .checksumAndID] {
            let path = file("keys-\(layout.rawValue).db")
            filled = try await Fill.storeTable(path: path, rows: rows, layout: layout, plan: .fresh, settings: settings)
            paths[layout] = path
        }
        guard let keys = filled else { throw BenchError("no key table filled") }
        let crcPath = paths[.checksumAndID]!
        let idPath = paths[.idOnly]!
        // The layouts are measured in alternating rounds (A B A B A B) and the samples
        // merged, so drift on a shared machine hits both alike.
        let layouts: [(KeyLayout, String)] = [(.checksumAndID, crcPath), (.idOnly, idPath)]
        var stores: [KeyLayout: SessionStore] = [:]
        for (layout, path) in layouts { stores[layout] = try openStore(path: path, layout: layout) }
        var samples: [KeyLayout: (store: Sample, floor: Sample, miss: Sample)] = [:]
        let rounds = 3
        let roundWindow = Window(warmup: window.warmup / 2, duration: window.duration / Double(rounds))
        for round in 1...rounds {
            for (layout, path) in layouts {
                let store = stores[layout]!
                status("keys \(layout == .checksumAndID ? "(crc32, id)" : "(id)"), round \(round)/\(rounds)")
                let floor = try await measureThreads(concurrency: 1, window: roundWindow) { _ in
                    let floor = try Floor(path: path, layout: layout, mmapSize: mmap)
                    var random = FastRandom(seed: 41 &+ UInt64(round))
                    return { _ in
                        let index = random.below(rows)
                        guard try floor.load(keys.values[index], checksum: keys.checksums[index], now: wallMillis()) else {
                            throw BenchError("floor missed")
                        }
                    }
                }
                let hit = try await measureTasks(concurrency: 1, window: roundWindow) { _ in
                    var random = FastRandom(seed: 41 &+ UInt64(round))
                    return { _ in
                        guard try await store.load(id: IDs.id(random.below(rows))).isStored else { throw BenchError("store missed") }
                    }
                }
                let miss = try await measureTasks(concurrency: 1, window: roundWindow) { _ in
                    var random = FastRandom(seed: 43 &+ UInt64(round))
                    return { _ in _ = try await store.load(id: IDs.missID(random.below(StoredKeys.missCount))) }
                }
                if var sum = samples[layout] {
                    sum.store.merge(hit)
                    sum.store.seconds += hit.seconds
                    sum.floor.merge(floor)
                    sum.floor.seconds += floor.seconds
                    sum.miss.merge(miss)
                    sum.miss.seconds += miss.seconds
                    samples[layout] = sum
                } else {
                    samples[layout] = (hit, floor, miss)
                }
            }
        }
        for store in stores.values { try await store.shutdown() }
        var hits: [KeyLayout: (store: Double, floor: Double, miss: Double)] = [:]
        for (layout, _) in layouts {
            let name = layout == .checksumAndID ? "(crc32, id)" : "(id)"
            let sample = samples[layout]!
            hits[layout] = (sample.store.opsPerSecond, sample.floor.opsPerSecond, sample.miss.opsPerSecond)
            report.add(ResultRow(
                scenario: scenario, name: "store hit, key \(name)", rows: rows, concurrency: 1, sample: sample.store,
                vsFloor: sample.floor.opsPerSecond / sample.store.opsPerSecond))
            report.add(ResultRow(scenario: scenario, name: "floor hit, key \(name)", rows: rows, concurrency: 1, sample: sample.floor))
            report.add(ResultRow(scenario: scenario, name: "store miss, key \(name)", rows: rows, concurrency: 1, sample: sample.miss))
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
