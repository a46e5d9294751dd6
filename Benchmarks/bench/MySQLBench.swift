#if MySQL
import CBenchMariaDB
import SessionStore
import SessionStoreMySQL

/// The MySQL side: the same scenarios against a server, the floor being the same
/// statements through Connector/C with server-side prepared statements.
extension BenchRun {
    func mysql(_ scenarios: [Scenario]) async throws {
        guard let text = settings.url else { throw BenchError("--backend mysql needs --url") }
        var url = try StoreURL(text)
        let base = try MySQLConfiguration(url: &url)
        _ = mysql_server_init(0, nil, nil)
        report.environment["mysql"] = base.description
        for scenario in scenarios {
            switch scenario {
            case .loads: try await myLoads(base)
            case .mix: try await myMix(base)
            case .saves: try await mySaves(base)
            case .cleanup: try await myCleanup(base)
            case .keys: try await myKeys(base)
            case .soak: try await mysqlSoak()
            }
        }
    }

    // MARK: - Tables

    private func myTable(_ layout: KeyLayout, autoIncrement: Bool) -> String {
        "bench_sessions_" + (autoIncrement ? "ai_" : "") + layout.rawValue
    }

    private func myConfiguration(
        _ base: MySQLConfiguration, table: String, layout: KeyLayout, autoIncrement: Bool
    ) -> MySQLConfiguration {
        var configuration = base
        configuration.table = table
        configuration.keyLayout = layout
        configuration.autoIncrementPrimaryKey = autoIncrement
        configuration.poolSize = max(base.poolSize, settings.writers.max() ?? 8, settings.concurrency.max() ?? 2)
        configuration.poolWaitTimeout = .seconds(120)
        configuration.queryTimeout = .seconds(600)
        return configuration
    }

    private func myOpenStore(
        _ base: MySQLConfiguration, layout: KeyLayout = .idOnly, autoIncrement: Bool = false,
        clock: any SessionClock = SystemSessionClock()
    ) async throws -> SessionStore {
        let configuration = myConfiguration(base, table: myTable(layout, autoIncrement: autoIncrement), layout: layout, autoIncrement: autoIncrement)
        let backend = try await MySQLBackend(configuration: configuration, logger: quietLogger)
        var storeConfiguration = SessionStoreConfiguration()
        storeConfiguration.cleanupBatchSize = settings.cleanupBatch
        storeConfiguration.idHashing = settings.idHashing
        return SessionStore(backend: backend, configuration: storeConfiguration, clock: clock, logger: quietLogger)
    }

    /// Recreates the store's table through the backend, then fills it with multi-row
    /// INSERTs in big transactions.
    @discardableResult
    private func myStoreTable(
        _ base: MySQLConfiguration, rows: Int, layout: KeyLayout = .idOnly, autoIncrement: Bool = false, plan: ExpiryPlan
    ) async throws -> StoredKeys {
        let table = myTable(layout, autoIncrement: autoIncrement)
        try await onThread {
            let db = try MyDB(base)
            try db.exec("DROP TABLE IF EXISTS `\(table)`")
            do {
                try db.exec("DELETE FROM session_store_schema WHERE name = '\(table)'")
            } catch {
                // No schema table yet: the backend creates it.
            }
        }
        let backend = try await MySQLBackend(
            configuration: myConfiguration(base, table: table, layout: layout, autoIncrement: autoIncrement), logger: quietLogger)
        try await backend.close()
        let hashing = settings.idHashing
        return try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, MySQL store table \(table)", total: rows)
            let keys = StoredKeys(rows: rows, hashing: hashing)
            var order = Array(0..<rows)
            if layout == .checksumAndID {
                order.sort { (keys.checksums[$0], keys.values[$0]) < (keys.checksums[$1], keys.values[$1]) }
            } else {
                order.sort { keys.values[$0] < keys.values[$1] }
            }
            let db = try MyDB(base)
            let columns = layout == .checksumAndID ? "crc32, id" : "id"
            let now = wallMillis()
            try Self.myBulkInsert(db, rows: order, progress: progress,
                                  prefix: "INSERT INTO `\(table)` (\(columns), data, version, created_at, expires_at) VALUES ") { index in
                let (created, expires) = plan.times(index, now: now)
                let key = layout == .checksumAndID ? "\(keys.checksums[index]), '\(keys.values[index])'" : "'\(keys.values[index])'"
                return "(\(key), x'\(Self.hex(Payload.encoded(index)))', 1, \(created), \(expires))"
            }
            progress.finish()
            return keys
        }
    }

    private func myNaiveTable(_ base: MySQLConfiguration, rows: Int, plan: ExpiryPlan) async throws {
        try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, MySQL naive table", total: rows)
            let db = try MyDB(base)
            try db.exec("DROP TABLE IF EXISTS \(MyNaive.table)")
            try db.exec(MyNaive.schema)
            let now = wallMillis()
            try Self.myBulkInsert(db, rows: Array(0..<rows), progress: progress,
                                  prefix: "INSERT INTO \(MyNaive.table) (sid, data, created_at, expires_at) VALUES ") { index in
                let (created, expires) = plan.times(index, now: now)
                return "('\(IDs.id(index))', x'\(Self.hex(Payload.encoded(index)))', \(created), \(expires))"
            }
            progress.finish()
        }
    }

    private static func myBulkInsert(
        _ db: MyDB, rows: [Int], progress: Progress, prefix: String, _ values: (Int) -> String
    ) throws {
        var statement = prefix
        var inStatement = 0
        try db.exec("START TRANSACTION")
        for (done, index) in rows.enumerated() {
            if inStatement > 0 { statement += "," }
            statement += values(index)
            inStatement += 1
            if inStatement == 1000 {
                try db.exec(statement)
                statement = prefix
                inStatement = 0
                if done % 20_000 == 19_999 {
                    try db.exec("COMMIT")
                    try db.exec("START TRANSACTION")
                    progress.update(done + 1)
                }
            }
        }
        if inStatement > 0 { try db.exec(statement) }
        try db.exec("COMMIT")
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Scenarios

    private func myLoads(_ base: MySQLConfiguration) async throws {
        let scenario = "1 loads (MySQL): point loads, hits and misses (ops = loads)"
        let largest = settings.rows.max()!
        let table = myTable(.idOnly, autoIncrement: false)
        for rows in settings.rows {
            let keys = try await myStoreTable(base, rows: rows, plan: .fresh)
            try await myNaiveTable(base, rows: rows, plan: .fresh)
            let store = try await myOpenStore(base)
            var storeByConcurrency: [Int: Double] = [:]
            var floorByConcurrency: [Int: Double] = [:]
            for tasks in settings.concurrency {
                status("MySQL loads \(Fmt.rows(rows)) rows, \(tasks) task(s)")
                let floorHit = try await measureThreads(concurrency: tasks, window: window) { worker in
                    let floor = try MyFloor(base, table: table, layout: .idOnly)
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        let index = random.below(rows)
                        guard try floor.load(keys.values[index], checksum: keys.checksums[index], now: wallMillis()) else {
                            throw BenchError("the MySQL floor missed a stored row")
                        }
                    }
                }
                let storeHit = try await measureTasks(concurrency: tasks, window: window) { worker in
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        guard try await store.load(id: IDs.id(random.below(rows))).isStored else {
                            throw BenchError("the store missed a stored row")
                        }
                    }
                }
                let naiveHit = try await measureThreads(concurrency: tasks, window: window) { worker in
                    let naive = try MyNaive(base)
                    var random = FastRandom(seed: UInt64(worker) &+ 11)
                    return { _ in
                        guard try naive.load(IDs.id(random.below(rows)), now: wallMillis()) != nil else {
                            throw BenchError("the naive store missed a stored row")
                        }
                    }
                }
                let floorMiss = try await measureThreads(concurrency: tasks, window: window) { worker in
                    let floor = try MyFloor(base, table: table, layout: .idOnly)
                    var random = FastRandom(seed: UInt64(worker) &+ 29)
                    return { _ in
                        let index = random.below(StoredKeys.missCount)
                        _ = try floor.load(keys.missValues[index], checksum: keys.missChecksums[index], now: wallMillis())
                    }
                }
                let storeMiss = try await measureTasks(concurrency: tasks, window: window) { worker in
                    var random = FastRandom(seed: UInt64(worker) &+ 29)
                    return { _ in _ = try await store.load(id: IDs.missID(random.below(StoredKeys.missCount))) }
                }
                storeByConcurrency[tasks] = storeHit.opsPerSecond
                floorByConcurrency[tasks] = floorHit.opsPerSecond
                let ratio = floorHit.opsPerSecond / storeHit.opsPerSecond
                report.add(ResultRow(
                    scenario: scenario, name: "store hit", rows: rows, concurrency: tasks, sample: storeHit,
                    vsFloor: ratio, vsNaive: naiveHit.opsPerSecond / storeHit.opsPerSecond))
                report.add(ResultRow(scenario: scenario, name: "floor hit (C client)", rows: rows, concurrency: tasks, sample: floorHit))
                report.add(ResultRow(scenario: scenario, name: "naive hit", rows: rows, concurrency: tasks, sample: naiveHit))
                report.add(ResultRow(
                    scenario: scenario, name: "store miss", rows: rows, concurrency: tasks, sample: storeMiss,
                    vsFloor: floorMiss.opsPerSecond / storeMiss.opsPerSecond))
                report.add(ResultRow(scenario: scenario, name: "floor miss (C client)", rows: rows, concurrency: tasks, sample: floorMiss))
                report.plot.loads["MySQL store hit, \(tasks) task(s)", default: []].append([Double(rows), storeHit.opsPerSecond])
                report.plot.loads["MySQL floor hit, \(tasks) thread(s)", default: []].append([Double(rows), floorHit.opsPerSecond])
                if rows == largest { figures.mysqlLoadVsFloorByTasks[tasks] = ratio }
                if rows == largest && tasks == settings.concurrency.min() {
                    figures.loadVsFloor = (rows, ratio)
                }
            }
            let low = settings.concurrency.min()!
            let high = settings.concurrency.max()!
            if high > low, let store1 = storeByConcurrency[low], let store2 = storeByConcurrency[high],
               let floor1 = floorByConcurrency[low], let floor2 = floorByConcurrency[high] {
                if rows == largest { figures.loadScaling = (rows, store2 / store1, floor2 / floor1) }
                report.comment(
                    "\(Fmt.rows(rows)) rows: hits scale ×\(Fmt.fixed(store2 / store1, 2)) from \(low) to \(high) tasks "
                        + "(floor ×\(Fmt.fixed(floor2 / floor1, 2)))")
            }
            try await store.shutdown()
        }
    }

    private func myKeys(_ base: MySQLConfiguration) async throws {
        let scenario = "5 keys (MySQL): key layout on the largest table, 1 task (ops = loads)"
        let rows = settings.rows.max()!
        var results: [(String, Double)] = []
        for (layout, autoIncrement) in [(KeyLayout.idOnly, false), (.checksumAndID, false), (.idOnly, true)] {
            let name = (autoIncrement ? "auto-increment + unique " : "") + (layout == .checksumAndID ? "(crc32, id)" : "(id)")
            let keys = try await myStoreTable(base, rows: rows, layout: layout, autoIncrement: autoIncrement, plan: .fresh)
            let table = myTable(layout, autoIncrement: autoIncrement)
            let store = try await myOpenStore(base, layout: layout, autoIncrement: autoIncrement)
            status("MySQL keys \(name)")
            let floor = try await measureThreads(concurrency: 1, window: window) { _ in
                let floor = try MyFloor(base, table: table, layout: layout)
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
            try await store.shutdown()
            results.append((name, hit.opsPerSecond))
            report.add(ResultRow(
                scenario: scenario, name: "store hit, key \(name)", rows: rows, concurrency: 1, sample: hit,
                vsFloor: floor.opsPerSecond / hit.opsPerSecond))
            report.add(ResultRow(scenario: scenario, name: "floor hit, key \(name)", rows: rows, concurrency: 1, sample: floor))
            if layout != .idOnly || autoIncrement {
                try await onThread { try MyDB(base).exec("DROP TABLE IF EXISTS `\(table)`") }
            }
        }
        if let first = results.first {
            report.comment(
                "store hits vs (id): " + results.dropFirst().map { "\($0.0) \(Fmt.fixed(($0.1 / first.1 - 1) * 100, 1))%" }
                    .joined(separator: ", "))
        }
    }

    private func mySaves(_ base: MySQLConfiguration) async throws {
        let scenario = "3 saves (MySQL): rewrite one session (ops = rows written)"
        let rows = settings.saveRows
        let table = myTable(.idOnly, autoIncrement: false)
        let payloads = (0..<16).map { Payload.encoded($0) }
        let keys = try await myStoreTable(base, rows: rows, plan: .fresh)
        try await myNaiveTable(base, rows: rows, plan: .fresh)
        status("MySQL saves: floor")
        let floorSingle = try await measureThreads(concurrency: 1, window: window) { _ in
            let floor = try MyFloor(base, table: table, layout: .idOnly)
            var random = FastRandom(seed: 5)
            return { iteration in
                let index = random.below(rows)
                try floor.update(keys.values[index], checksum: 0, data: payloads[iteration & 15], expiresAt: wallMillis() + 1_800_000)
            }
        }
        var floorBatch = try await measureThreads(concurrency: 1, window: window) { _ in
            let floor = try MyFloor(base, table: table, layout: .idOnly)
            var random = FastRandom(seed: 6)
            return { iteration in
                try floor.db.exec("START TRANSACTION")
                for row in 0..<100 {
                    let index = random.below(rows)
                    try floor.update(
                        keys.values[index], checksum: 0, data: payloads[(iteration + row) & 15], expiresAt: wallMillis() + 1_800_000)
                }
                try floor.db.exec("COMMIT")
            }
        }
        floorBatch.count *= 100
        let naive = try await measureThreads(concurrency: 1, window: window) { _ in
            let naive = try MyNaive(base)
            var random = FastRandom(seed: 7)
            return { iteration in
                try naive.rewrite(IDs.id(random.below(rows)), counter: iteration, now: wallMillis())
            }
        }
        report.add(ResultRow(scenario: scenario, name: "floor UPDATE, 1 per txn", rows: rows, concurrency: 1, sample: floorSingle))
        report.add(ResultRow(
            scenario: scenario, name: "floor UPDATE, 100 per txn", rows: rows, concurrency: 1, sample: floorBatch,
            note: "latency per transaction of 100"))
        report.add(ResultRow(scenario: scenario, name: "naive load+write", rows: rows, concurrency: 1, sample: naive))
        let store = try await myOpenStore(base)
        for writers in settings.writers {
            status("MySQL saves: store, \(writers) writer(s)")
            let sample = try await measureTasks(concurrency: writers, window: window) { worker in
                var sessions: [Session] = []
                let nonce = UInt32.random(in: 0...UInt32.max)
                for slot in 0..<16 { sessions.append(try await store.load(id: IDs.id((worker + slot * writers) % rows))) }
                return { iteration in
                    var session = sessions[iteration % 16]
                    try session.set("counter", "\(nonce)-\(iteration)")
                    let outcome = try await store.save(&session)
                    guard outcome == .updated else { throw BenchError("save gave \(outcome)") }
                    sessions[iteration % 16] = session
                }
            }
            report.add(ResultRow(
                scenario: scenario, name: "store save (pool of \(max(base.poolSize, settings.writers.max() ?? 8)))", rows: rows,
                concurrency: writers, sample: sample, vsFloor: floorSingle.opsPerSecond / sample.opsPerSecond,
                vsNaive: naive.opsPerSecond / sample.opsPerSecond, note: "×floor vs 1 per txn"))
        }
        try await store.shutdown()
    }

    private func myCleanup(_ base: MySQLConfiguration) async throws {
        let scenario = "4 cleanup (MySQL): half the table expired, 1 reader + 1 writer (1 save/ms) running"
        let rows = settings.cleanupRows
        let expired = (rows + 1) / 2
        let batch = settings.cleanupBatch
        let table = myTable(.idOnly, autoIncrement: false)

        try await myStoreTable(base, rows: rows, plan: .halfExpired)
        let store = try await myOpenStore(base)
        let storeOutcome = try await underStoreLoad(store, rows: rows, label: "MySQL cleanup: store, batches of \(batch)") {
            try await store.cleanup()
        }
        try await store.shutdown()

        try await myStoreTable(base, rows: rows, plan: .halfExpired)
        let floorStore = try await myOpenStore(base)
        let floorOutcome = try await underStoreLoad(floorStore, rows: rows, label: "MySQL cleanup: one DELETE (floor)") {
            try await onThread {
                let db = try MyDB(base)
                try db.exec("DELETE FROM `\(table)` WHERE expires_at < \(wallMillis())")
                return db.affectedRows
            }
        }
        try await floorStore.shutdown()

        try await myNaiveTable(base, rows: rows, plan: .halfExpired)
        let naiveOutcome = try await underNaiveLoad(rows: rows, expired: expired) { try MyNaive(base) }
        reportCleanup(
            scenario: scenario, rows: rows, expired: expired, store: storeOutcome,
            storeName: "store cleanup, DELETE LIMIT \(batch)", floor: floorOutcome, naive: naiveOutcome)
    }

    private func myMix(_ base: MySQLConfiguration) async throws {
        let scenario = "2 mix (MySQL): requests (load + app work + save), store vs naive"
        let rows = settings.mixRows
        let active = min(settings.mixSessions, rows)
        let tasks = settings.concurrency.max()!
        let step = Int64(max(1, 1000 / max(1, settings.mixRate)))
        for (label, bots) in [("read-mostly 90/8/2", 0), ("bots 80% + 90/8/2", 800)] {
            let start = wallMillis()
            try await myStoreTable(base, rows: rows, plan: .recentlyUsed(now: start, idle: 1_800_000, touchInterval: 60_000))
            try await myNaiveTable(base, rows: rows, plan: .fresh)
            let clock = VirtualClock(start: start)
            let store = try await myOpenStore(base, clock: clock)
            let counters = MixCounters()
            status("MySQL mix \(label): store")
            let storeSample = try await measureTasks(concurrency: tasks, window: window) { worker in
                var random = FastRandom(seed: UInt64(worker) &+ 71)
                return { iteration in
                    clock.advance(by: step)
                    let kind = RequestKind.draw(&random, botPerMille: bots)
                    try await MixRequest.run(
                        kind, on: store, session: random.below(active), user: random.below(1_000_000),
                        page: "/orders/\(worker)/\(iteration)", counters: counters)
                }
            }
            try await store.shutdown()
            status("MySQL mix \(label): naive")
            let naiveSample = try await measureThreads(concurrency: tasks, window: window) { worker in
                let naive = try MyNaive(base)
                var random = FastRandom(seed: UInt64(worker) &+ 71)
                return { iteration in
                    let kind = RequestKind.draw(&random, botPerMille: bots)
                    try naive.mixRequest(
                        kind, session: random.below(active), user: random.below(1_000_000),
                        page: "/orders/\(worker)/\(iteration)")
                }
            }
            let requests = counters.requests.load(ordering: .relaxed)
            let perThousand = Double(counters.writes) * 1000 / Double(max(1, requests))
            if bots == 0 { figures.mixSkipped = 100 - perThousand / 10 }
            report.add(ResultRow(
                scenario: scenario, name: "store, \(label)", rows: rows, concurrency: tasks, sample: storeSample,
                vsNaive: naiveSample.opsPerSecond / storeSample.opsPerSecond,
                note: "rows written/1000 req: \(Fmt.num(perThousand)); skipped \(Fmt.fixed(100 - perThousand / 10, 1))% of the naive store's writes"))
            report.add(ResultRow(
                scenario: scenario, name: "naive, \(label)", rows: rows, concurrency: tasks, sample: naiveSample,
                note: "rows written/1000 req: 1000 (every request)"))
        }
    }
}
#endif
