import CSessionStoreMariaDB
import SessionStoreCore
import SessionStoreMySQL

/// A MySQL or MariaDB server (`--url`): each table is a table of the URL's database, named
/// `bench_<name>`, filled with multi-row INSERTs in big transactions; the floor is the
/// same statements through Connector/C with server-side prepared statements.
struct MySQLEngine: Engine {
    let settings: Settings
    /// The URL's configuration; each table gets a copy with its name and layout.
    let base: MySQLConfiguration
    /// Connections of the store's pool: enough for every writer and task of the run.
    let poolSize: Int

    init(settings: Settings) throws {
        guard let text = settings.url else { throw BenchError("--backend mysql needs --url") }
        var url = try StoreURL(text)
        base = try MySQLConfiguration(url: &url)
        self.settings = settings
        poolSize = max(base.poolSize, settings.writers.max() ?? 8, settings.concurrency.max() ?? 2)
        // Connector/C's global state, before any thread opens a connection.
        guard mysql_server_init(0, nil, nil) == 0 else { throw BenchError("mysql_server_init failed") }
    }

    var label: String? { "MySQL" }
    var floorName: String { "C client" }
    var environment: [String: String] {
        ["mysql": base.description, "mysql_client": String(cString: mysql_get_client_info())]
    }
    var keyVariants: [KeyVariant] { [.idOnly, .checksumAndID, KeyVariant(layout: .idOnly, autoIncrement: true)] }
    var durabilities: [Durability] { [.server] }
    var writeModes: [WriteMode] { [WriteMode(name: "pool of \(poolSize)", groupCommit: false)] }

    func cleanupMethod(batch: Int) -> String { "DELETE LIMIT \(batch)" }

    func applies(_ target: EngineTarget) -> Bool {
        switch target {
        case .groupCommit, .walPeak, .loadVsDriverByTasks: false
        case .loadVsFloorByTasks, .asyncClientFloor: true
        }
    }

    private func configuration(table: String, key: KeyVariant) -> MySQLConfiguration {
        var configuration = base
        configuration.table = table
        configuration.keyLayout = key.layout
        configuration.autoIncrementPrimaryKey = key.autoIncrement
        configuration.poolSize = poolSize
        configuration.poolWaitTimeout = .seconds(120)
        configuration.queryTimeout = .seconds(600)
        return configuration
    }

    private static func table(_ name: String) -> String {
        "bench_" + name.replacingOccurrences(of: "-", with: "_")
    }

    func fillStoreTable(_ name: String, rows: Int, key: KeyVariant, plan: ExpiryPlan) async throws -> StoreTable {
        let table = Self.table(name)
        try await drop(table)
        let backend = try await MySQLBackend(configuration: configuration(table: table, key: key), logger: quietLogger)
        try await backend.close()
        let base = base
        let hashing = settings.idHashing
        let keys = try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, MySQL store table \(table)", total: rows)
            let keys = StoredKeys(rows: rows, hashing: hashing)
            let checksum = key.layout == .checksumAndID
            let now = wallMillis()
            let db = try MyDB(base)
            try insertAllRows(
                begin: "START TRANSACTION", exec: db.exec, keys.fillOrder(key.layout), progress: progress,
                prefix: "INSERT INTO `\(table)` (\(checksum ? "crc32, id" : "id"), data, version, created_at, expires_at) VALUES "
            ) { index in
                let (created, expires) = plan.times(index, now: now)
                let id = checksum ? "\(keys.checksums[index]), '\(keys.values[index])'" : "'\(keys.values[index])'"
                return "(\(id), x'\(hexDigits(Payload.stored(index)))', 1, \(created), \(expires))"
            }
            progress.finish()
            return keys
        }
        return StoreTable(location: table, key: key, keys: keys)
    }

    func fillNaiveTable(_ name: String, rows: Int, plan: ExpiryPlan) async throws -> NaiveTable {
        let table = Self.table(name)
        try await drop(table)
        let base = base
        try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, MySQL naive table \(table)", total: rows)
            let db = try MyDB(base)
            try db.exec(MySQLNaive.schema(table))
            let now = wallMillis()
            try insertAllRows(
                begin: "START TRANSACTION", exec: db.exec, Array(0..<rows), progress: progress, prefix: "INSERT INTO `\(table)` (sid, data, created_at, expires_at) VALUES "
            ) { index in
                let (created, expires) = plan.times(index, now: now)
                return "('\(IDs.id(index))', x'\(hexDigits(Payload.encoded(index)))', \(created), \(expires))"
            }
            progress.finish()
        }
        return NaiveTable(location: table)
    }

    func openBackend(_ table: StoreTable, durability: Durability?, writeMode: WriteMode?) async throws -> any StorageBackend {
        try await MySQLBackend(configuration: configuration(table: table.location, key: table.key), logger: quietLogger)
    }

    func floor(_ table: StoreTable, durability: Durability?) throws -> MySQLFloor {
        try MySQLFloor(base, table: table.location, layout: table.key.layout)
    }

    func naive(_ table: NaiveTable, durability: Durability?) throws -> MySQLNaive {
        try MySQLNaive(base, table: table.location)
    }

    /// Drops the table and forgets its schema record, so the backend creates it afresh.
    func drop(_ location: String) async throws {
        let base = base
        try await onThread {
            let db = try MyDB(base)
            try db.exec("DROP TABLE IF EXISTS `\(location)`")
            // The backend keeps a row per table in its schema table, once it has made one.
            if try db.tableExists("session_store_schema") {
                try db.exec("DELETE FROM session_store_schema WHERE name = '\(location)'")
            }
        }
    }

    func walBytes(_ table: StoreTable) -> Int? { nil }
}
