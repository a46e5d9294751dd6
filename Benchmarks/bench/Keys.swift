import SessionStoreCore

extension BenchRun {
    /// Scenario 5: the engine's key layouts (`(id)`, `(crc32, id)`, ...) on the largest
    /// table; store and floor on each, one task.
    func keys<E: Engine>(_ engine: E) async throws {
        let scenario = engine.title("5 keys", "key layout on the largest table, 1 task, 3 alternating rounds (ops = loads)")
        let rows = settings.rows.max()!
        let variants = engine.keyVariants
        // Every table is filled here, the same way, one after the other: reusing the loads
        // table for one layout measured whichever table was filled last as faster.
        var tables: [StoreTable] = []
        for variant in variants {
            let name = "keys-\(variant.layout.rawValue)" + (variant.autoIncrement ? "-ai" : "")
            tables.append(try await engine.fillStoreTable(name, rows: rows, key: variant, plan: .fresh))
        }
        var stores: [SessionStore] = []
        for table in tables { stores.append(try await openStore(engine, table)) }
        // The layouts are measured in alternating rounds (A B A B A B) and the samples
        // merged, so drift on a shared machine hits all alike.
        var samples: [(store: Sample, floor: Sample, miss: Sample)?] = Array(repeating: nil, count: tables.count)
        let rounds = 3
        let roundWindow = Window(warmup: window.warmup / 2, duration: window.duration / Double(rounds))
        for round in 1...rounds {
            for (index, table) in tables.enumerated() {
                let store = stores[index]
                let keys = table.keys
                status(engine.labelled("keys \(table.key.name), round \(round)/\(rounds)"))
                let floor = try await measureThreads(concurrency: 1, window: roundWindow) { _ in
                    let floor = try engine.floor(table, durability: nil)
                    var random = FastRandom(seed: 41 &+ UInt64(round))
                    return { _ in
                        let index = random.below(rows)
                        guard try floor.load(keys.values[index], checksum: keys.checksums[index], slot: keys.slots[index], now: wallMillis()) else {
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
                if var sum = samples[index] {
                    sum.store.merge(hit)
                    sum.store.seconds += hit.seconds
                    sum.floor.merge(floor)
                    sum.floor.seconds += floor.seconds
                    sum.miss.merge(miss)
                    sum.miss.seconds += miss.seconds
                    samples[index] = sum
                } else {
                    samples[index] = (hit, floor, miss)
                }
            }
        }
        for store in stores { try await store.shutdown() }
        for (index, table) in tables.enumerated() {
            guard let sample = samples[index] else { throw BenchError("no keys sample for \(table.key.name)") }
            let name = table.key.name
            report.add(ResultRow(
                scenario: scenario, name: "store hit, key \(name)", rows: rows, concurrency: 1, sample: sample.store,
                vsFloor: sample.floor.opsPerSecond / sample.store.opsPerSecond))
            report.add(ResultRow(scenario: scenario, name: "floor hit, key \(name)", rows: rows, concurrency: 1, sample: sample.floor))
            report.add(ResultRow(scenario: scenario, name: "store miss, key \(name)", rows: rows, concurrency: 1, sample: sample.miss))
        }
        func change(_ a: Double, _ b: Double) -> String {
            let percent = (a / b - 1) * 100
            return (percent >= 0 ? "+" : "") + Fmt.fixed(percent, 1) + "%"
        }
        if let base = samples[0] {
            for (index, table) in tables.enumerated().dropFirst() {
                guard let other = samples[index] else { continue }
                report.comment(
                    "\(table.key.name) vs \(tables[0].key.name) throughput: store hits "
                        + "\(change(other.store.opsPerSecond, base.store.opsPerSecond)), floor hits "
                        + "\(change(other.floor.opsPerSecond, base.floor.opsPerSecond)), store misses "
                        + "\(change(other.miss.opsPerSecond, base.miss.opsPerSecond))")
            }
        }
        for table in tables { try await engine.drop(table.location) }
    }
}
