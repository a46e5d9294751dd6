import SessionStore

extension BenchRun {
    /// Scenario 1: point loads of stored ids (hits) and unknown ids (misses), by table
    /// size and concurrency, against the floor and the naive store on the same data.
    func loads<E: Engine>(_ engine: E) async throws {
        let scenario = engine.title("1 loads", "point loads, hits and misses (ops = loads)")
        let largest = settings.rows.max()!
        for rows in settings.rows {
            let table = try await engine.fillStoreTable("loads-\(rows)", rows: rows, key: engine.defaultKey, plan: .fresh)
            let naiveTable = try await engine.fillNaiveTable("loads-naive-\(rows)", rows: rows, plan: .fresh)
            let keys = table.keys
            let store = try await openStore(engine, table)
            // The driver's own fastest call, one connection per task, where the store is
            // written on an async driver.
            let driverFloor = try await engine.driverFloor(table, connections: settings.concurrency.max()!)
            var storeByConcurrency: [Int: Double] = [:]
            var floorByConcurrency: [Int: Double] = [:]
            for tasks in settings.concurrency {
                status(engine.labelled("loads \(Fmt.rows(rows)) rows, \(tasks) task(s)"))
                let floorHitContender: Contender = { window in try await measureThreads(concurrency: tasks, window: window) { worker in
                    let floor = try engine.floor(table, durability: nil)
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        let index = random.below(rows)
                        guard try floor.load(keys.values[index], checksum: keys.checksums[index], slot: keys.slots[index], now: wallMillis()) else {
                            throw BenchError("the floor missed a stored row")
                        }
                    }
                } }
                // A server engine's C client as an async API would call it: on a thread of its
                // own per task, behind one continuation per call (``BlockingLane``).
                let laneHitContender: Contender = { window in try await measureTasks(concurrency: tasks, window: window) { worker in
                    let lane = BlockingLane(name: "bench.lane.\(worker)")
                    try await lane.run { owned in owned = try engine.floor(table, durability: nil) }
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        let index = random.below(rows)
                        let found = try await lane.run { owned in
                            guard let floor = owned as? E.Floor else { throw BenchError("the lane lost its connection") }
                            return try floor.load(keys.values[index], checksum: keys.checksums[index], slot: keys.slots[index], now: wallMillis())
                        }
                        guard found else { throw BenchError("the floor missed a stored row") }
                    }
                } }
                // The same client blocking the cooperative thread its task runs on: what the
                // store must never do (it would starve every other task), measured only to
                // show what the hand-off between a waiting thread and a task costs.
                let blockingHitContender: Contender = { window in try await measureTasks(concurrency: tasks, window: window) { worker in
                    let floor = UncheckedFloor(try engine.floor(table, durability: nil))
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        let index = random.below(rows)
                        guard try floor.value.load(keys.values[index], checksum: keys.checksums[index], slot: keys.slots[index], now: wallMillis()) else {
                            throw BenchError("the floor missed a stored row")
                        }
                    }
                } }
                let storeHitContender: Contender = { window in try await measureTasks(concurrency: tasks, window: window) { worker in
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        let session = try await store.load(id: IDs.id(random.below(rows)))
                        guard session.isStored else { throw BenchError("the store missed a stored row") }
                    }
                } }
                // What every request does after a load: read its attributes (the floor's hit
                // already copies the row's bytes out).
                let storeReadContender: Contender = { window in try await measureTasks(concurrency: tasks, window: window) { worker in
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        try readFiveAttributes(try await store.load(id: IDs.id(random.below(rows))))
                    }
                } }
                let naiveHitContender: Contender = { window in try await measureThreads(concurrency: tasks, window: window) { worker in
                    let naive = try engine.naive(naiveTable, durability: nil)
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        guard try naive.load(IDs.id(random.below(rows)), now: wallMillis()) != nil else {
                            throw BenchError("the naive store missed a stored row")
                        }
                    }
                } }
                let floorMissContender: Contender = { window in try await measureThreads(concurrency: tasks, window: window) { worker in
                    let floor = try engine.floor(table, durability: nil)
                    var random = FastRandom(seed: UInt64(worker) &+ 29)
                    return { _ in
                        let index = random.below(StoredKeys.missCount)
                        _ = try floor.load(keys.missValues[index], checksum: keys.missChecksums[index], slot: keys.missSlots[index], now: wallMillis())
                    }
                } }
                let storeMissContender: Contender = { window in try await measureTasks(concurrency: tasks, window: window) { worker in
                    var random = FastRandom(seed: UInt64(worker) &+ 29)
                    return { _ in _ = try await store.load(id: IDs.missID(random.below(StoredKeys.missCount))) }
                } }
                let naiveMissContender: Contender = { window in try await measureThreads(concurrency: tasks, window: window) { worker in
                    let naive = try engine.naive(naiveTable, durability: nil)
                    var random = FastRandom(seed: UInt64(worker) &+ 29)
                    return { _ in _ = try naive.load(IDs.missID(random.below(StoredKeys.missCount)), now: wallMillis()) }
                } }
                let driverHitContender: Contender = { window in try await measureTasks(concurrency: tasks, window: window) { worker in
                    guard let driverFloor else { throw BenchError("no driver floor") }
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        guard try await driverFloor.load(worker: worker, keys.values[random.below(rows)], now: wallMillis()) else {
                            throw BenchError("the driver floor missed a stored row")
                        }
                    }
                } }
                // Measured in rounds, the contenders in turn (order rotated each round), so a change
                // in the machine's load during the scenario weighs on each of them alike.
                let withLane = engine.applies(.asyncClientFloor)
                let samples = try await interleaved([
                    floorHitContender, storeHitContender, storeReadContender, naiveHitContender,
                    floorMissContender, storeMissContender, naiveMissContender,
                ] + (withLane ? [laneHitContender, blockingHitContender] : []) + (driverFloor != nil ? [driverHitContender] : []))
                let (floorHit, storeHit, storeRead, naiveHit) = (samples[0], samples[1], samples[2], samples[3])
                let (floorMiss, storeMiss, naiveMiss) = (samples[4], samples[5], samples[6])
                if withLane {
                    let laneHit = samples[7]
                    report.add(ResultRow(
                        scenario: scenario, name: "floor hit (\(engine.floorName) from a task)", rows: rows, concurrency: tasks,
                        sample: laneHit, vsFloor: floorHit.opsPerSecond / laneHit.opsPerSecond))
                    if rows == largest { figures.laneVsFloorByTasks[tasks] = floorHit.opsPerSecond / laneHit.opsPerSecond }
                    let blockingHit = samples[8]
                    report.add(ResultRow(
                        scenario: scenario, name: "floor hit (\(engine.floorName) blocking its task's thread)", rows: rows,
                        concurrency: tasks, sample: blockingHit, vsFloor: floorHit.opsPerSecond / blockingHit.opsPerSecond))
                    if rows == largest { figures.blockingVsFloorByTasks[tasks] = floorHit.opsPerSecond / blockingHit.opsPerSecond }
                }
                if let driverName = engine.driverFloorName, driverFloor != nil, let driverHit = samples.last {
                    let ratio = driverHit.opsPerSecond / storeHit.opsPerSecond
                    report.add(ResultRow(
                        scenario: scenario, name: "floor hit (\(driverName))", rows: rows, concurrency: tasks, sample: driverHit,
                        vsFloor: floorHit.opsPerSecond / driverHit.opsPerSecond))
                    report.comment(
                        "\(Fmt.rows(rows)) rows, \(tasks) task(s): store hit \(Fmt.fixed(ratio, 2))× the time of \(driverName)")
                    if rows == largest { figures.loadVsDriverByTasks[tasks] = ratio }
                }
                storeByConcurrency[tasks] = storeHit.opsPerSecond
                floorByConcurrency[tasks] = floorHit.opsPerSecond
                let hitVsFloor = floorHit.opsPerSecond / storeHit.opsPerSecond
                report.add(ResultRow(
                    scenario: scenario, name: "store hit", rows: rows, concurrency: tasks, sample: storeHit,
                    vsFloor: hitVsFloor, vsNaive: naiveHit.opsPerSecond / storeHit.opsPerSecond))
                report.add(ResultRow(
                    scenario: scenario, name: "store hit + 5 attributes read", rows: rows, concurrency: tasks, sample: storeRead,
                    vsFloor: floorHit.opsPerSecond / storeRead.opsPerSecond, vsNaive: naiveHit.opsPerSecond / storeRead.opsPerSecond))
                report.add(ResultRow(scenario: scenario, name: "floor hit (\(engine.floorName))", rows: rows, concurrency: tasks, sample: floorHit))
                report.add(ResultRow(scenario: scenario, name: "naive hit", rows: rows, concurrency: tasks, sample: naiveHit))
                report.add(ResultRow(
                    scenario: scenario, name: "store miss", rows: rows, concurrency: tasks, sample: storeMiss,
                    vsFloor: floorMiss.opsPerSecond / storeMiss.opsPerSecond,
                    vsNaive: naiveMiss.opsPerSecond / storeMiss.opsPerSecond))
                report.add(ResultRow(scenario: scenario, name: "floor miss (\(engine.floorName))", rows: rows, concurrency: tasks, sample: floorMiss))
                report.add(ResultRow(scenario: scenario, name: "naive miss", rows: rows, concurrency: tasks, sample: naiveMiss))
                report.plot.loads[engine.labelled("store hit, \(tasks) task(s)"), default: []].append([Double(rows), storeHit.opsPerSecond])
                report.plot.loads[engine.labelled("floor hit, \(tasks) thread(s)"), default: []].append([Double(rows), floorHit.opsPerSecond])
                report.plot.loads[engine.labelled("naive hit, \(tasks) thread(s)"), default: []].append([Double(rows), naiveHit.opsPerSecond])
                if rows == largest { figures.loadVsFloorByTasks[tasks] = hitVsFloor }
                if rows == largest && tasks == settings.concurrency.min() {
                    figures.loadVsFloor = (rows, hitVsFloor)
                    figures.readVsFloor = (rows, floorHit.opsPerSecond / storeRead.opsPerSecond)
                    keyDerivationCost(storeHitNanoseconds: 1e9 / storeHit.opsPerSecond)
                }
            }
            let low = settings.concurrency.min()!
            let high = settings.concurrency.max()!
            if high > low, let store1 = storeByConcurrency[low], let store2 = storeByConcurrency[high],
               let floor1 = floorByConcurrency[low], let floor2 = floorByConcurrency[high] {
                let scaling = store2 / store1
                report.comment(
                    "\(Fmt.rows(rows)) rows: hits scale ×\(Fmt.fixed(scaling, 2)) from \(low) to \(high) tasks "
                        + "(floor ×\(Fmt.fixed(floor2 / floor1, 2)))")
                if rows == largest { figures.loadScaling = (rows, scaling, floor2 / floor1) }
            }
            try await store.shutdown()
            try await driverFloor?.close()
            try await engine.drop(naiveTable.location)
            try await engine.drop(table.location)
        }
    }

    /// What SHA-256 keys (ids at rest) add to a load: the key derivation timed alone, for
    /// both ``IDHashing`` choices, as a share of one store hit on the largest table.
    func keyDerivationCost(storeHitNanoseconds: Double) {
        let ids = (0..<1000).map { _ in SessionID.generate() }
        func nanosecondsPerKey(_ hashing: IDHashing) -> Double {
            var sink: UInt32 = 0
            let rounds = 300
            let start = nanos()
            for _ in 0..<rounds {
                for id in ids { sink &+= SessionKey(id, hashing: hashing).checksum }
            }
            let elapsed = Double(nanos() - start)
            if sink == 0x5EED { status("") }  // Uses the result so the work is not optimised away.
            return elapsed / Double(rounds * ids.count)
        }
        let hashed = nanosecondsPerKey(.sha256)
        let plain = nanosecondsPerKey(.none)
        let share = (hashed - plain) / storeHitNanoseconds * 100
        report.comment(
            "key derivation per load: SHA-256 \(Fmt.fixed(hashed, 0)) ns, plain id \(Fmt.fixed(plain, 0)) ns; "
                + "SHA-256 adds \(Fmt.fixed(share, 1))% to a store hit (\(Fmt.fixed(storeHitNanoseconds / 1000, 2)) µs)")
        figures.keyHashShare = share
    }
}

/// Reads the five attributes a request reads after its load (the payload's `cart` aside).
func readFiveAttributes(_ session: Session) throws {
    guard try session.get("user_id", as: Int.self) != nil,
          try session.get("csrf", as: String.self) != nil,
          try session.get("locale", as: String.self) != nil,
          try session.get("flash", as: String.self) != nil,
          try session.get("last_page", as: String.self) != nil
    else { throw BenchError("the store lost an attribute") }
}
