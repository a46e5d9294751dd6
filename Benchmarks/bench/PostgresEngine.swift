#if Postgres
import CBenchLibpq
import Foundation
import Logging
import PostgresNIO
import SessionStoreCore
import SessionStorePostgres
import Synchronization

/// A PostgreSQL server (`--url`): each table is a table of the URL's database, named
/// `bench_<name>`, filled with multi-row INSERTs in big transactions. Two floors: libpq's
/// prepared statements in C (the `Floor`, on threads, for every scenario) and postgres-nio's
/// own prepared statements (``driverFloor(_:connections:)``, from tasks, in the loads
/// scenario): the store is written on postgres-nio, so the second is what it can reach.
struct PostgresEngine: Engine {
    let settings: Settings
    /// The URL's configuration; each table gets a copy with its name.
    let base: PostgresConfiguration
    /// Connections of the store's pool: enough for every writer and task of the run.
    let poolSize: Int

    init(settings: Settings) throws {
        guard let text = settings.url else { throw BenchError("--backend postgres needs --url") }
        var url = try StoreURL(text)
        base = try PostgresConfiguration(url: &url)
        self.settings = settings
        poolSize = max(base.poolSize, settings.writers.max() ?? 8, settings.concurrency.max() ?? 2)
    }

    var label: String? { "PostgreSQL" }
    var floorName: String { "libpq" }
    var driverFloorName: String? { "postgres-nio prepared" }
    var environment: [String: String] {
        ["postgres": base.description, "postgres_client": "libpq \(PQlibVersion())"]
    }
    var keyVariants: [KeyVariant] { [.idOnly] }
    var durabilities: [Durability] { [.server] }
    var writeModes: [WriteMode] { [WriteMode(name: "pool of \(poolSize)", groupCommit: false)] }

    func cleanupMethod(batch: Int) -> String { "DELETE ... LIMIT \(batch) SKIP LOCKED" }

    func applies(_ target: EngineTarget) -> Bool {
        switch target {
        case .groupCommit, .walPeak, .asyncClientFloor, .loadVsFloorByTasks: false
        case .loadVsDriverByTasks: true
        }
    }

    private func configuration(table: String) -> PostgresConfiguration {
        var configuration = base
        configuration.table = table
        configuration.poolSize = poolSize
        configuration.statementTimeout = .seconds(600)
        return configuration
    }

    private static func table(_ name: String) -> String {
        "bench_" + name.replacingOccurrences(of: "-", with: "_")
    }

    func fillStoreTable(_ name: String, rows: Int, key: KeyVariant, plan: ExpiryPlan) async throws -> StoreTable {
        let table = Self.table(name)
        try await drop(table)
        let backend = try await PostgresBackend(configuration: configuration(table: table), logger: quietLogger)
        try await backend.close()
        let base = base
        let hashing = settings.idHashing
        let keys = try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, PostgreSQL store table \(table)", total: rows)
            let keys = StoredKeys(rows: rows, hashing: hashing)
            let now = wallMillis()
            let db = try PgDB(base)
            try insertAllRows(
                begin: "BEGIN", exec: { _ = try db.exec($0) }, keys.fillOrder(key.layout), progress: progress,
                prefix: "INSERT INTO \"\(table)\" (id, data, version, created_at, expires_at) VALUES "
            ) { index in
                let (created, expires) = plan.times(index, now: now)
                return "('\(keys.values[index])', '\\x\(hexDigits(Payload.stored(index)))', 1, \(created), \(expires))"
            }
            try db.exec("ANALYZE \"\(table)\"")
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
            let progress = Progress("fill \(Fmt.rows(rows)) rows, PostgreSQL naive table \(table)", total: rows)
            let db = try PgDB(base)
            try db.exec(PostgresNaive.schema(table))
            let now = wallMillis()
            try insertAllRows(
                begin: "BEGIN", exec: { _ = try db.exec($0) }, Array(0..<rows), progress: progress, prefix: "INSERT INTO \"\(table)\" (sid, data, created_at, expires_at) VALUES "
            ) { index in
                let (created, expires) = plan.times(index, now: now)
                return "('\(IDs.id(index))', '\\x\(hexDigits(Payload.encoded(index)))', \(created), \(expires))"
            }
            try db.exec("ANALYZE \"\(table)\"")
            progress.finish()
        }
        return NaiveTable(location: table)
    }

    func openBackend(_ table: StoreTable, durability: Durability?, writeMode: WriteMode?) async throws -> any StorageBackend {
        try await PostgresBackend(configuration: configuration(table: table.location), logger: quietLogger)
    }

    func floor(_ table: StoreTable, durability: Durability?) throws -> PostgresFloor {
        try PostgresFloor(base, table: table.location)
    }

    func naive(_ table: NaiveTable, durability: Durability?) throws -> PostgresNaive {
        try PostgresNaive(base, table: table.location)
    }

    func driverFloor(_ table: StoreTable, connections: Int) async throws -> (any DriverFloor)? {
        try await PostgresNIOFloor.open(configuration(table: table.location), connections: connections)
    }

    /// Drops the table and forgets its schema record, so the backend creates it afresh.
    func drop(_ location: String) async throws {
        let base = base
        try await onThread {
            let db = try PgDB(base)
            try db.exec("DROP TABLE IF EXISTS \"\(location)\"")
            // The backend keeps a row per table in its schema table, once it has made one.
            if try db.tableExists("session_store_schema") {
                try db.exec("DELETE FROM session_store_schema WHERE name = '\(location)'")
            }
        }
    }

    func walBytes(_ table: StoreTable) -> Int? { nil }
}

/// The driver's floor: the store's point lookup as postgres-nio's own prepared statement
/// (`PostgresPreparedStatement`: parsed once per connection, then bind and execute in one
/// round trip), one connection per task, rows decoded as the store decodes them.
final class PostgresNIOFloor: DriverFloor {
    private let connections: [PostgresConnection]
    private static let logger = Logger(label: "bench.postgres-nio", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The SQL of ``Load``: postgres-nio reads a prepared statement's text from a static
    /// property, so the table the floor reads is set here, before its connections prepare it
    /// (the bench measures one table's floor at a time, each on connections of its own).
    private static let loadSQL = Mutex("")

    /// The store's load statement.
    struct Load: PostgresPreparedStatement {
        typealias Row = (ByteBuffer, Int64, Int64, Int64, String?, ByteBuffer?, Int64?)
        static var sql: String { loadSQL.withLock { $0 } }
        static var bindingDataTypes: [PostgresDataType] { [.text, .int8] }
        var id: String
        var now: Int64

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(id)
            bindings.append(now)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    private init(connections: [PostgresConnection]) {
        self.connections = connections
    }

    static func open(_ configuration: PostgresConfiguration, connections count: Int) async throws -> PostgresNIOFloor {
        loadSQL.withLock { $0 = PostgresSQL.load(configuration.table) }
        let settings = try configuration.connectionConfiguration()
        var connections: [PostgresConnection] = []
        for id in 0..<count {
            connections.append(try await PostgresConnection.connect(configuration: settings, id: id, logger: logger))
        }
        return PostgresNIOFloor(connections: connections)
    }

    func load(worker: Int, _ key: String, now: Int64) async throws -> Bool {
        var found = false
        for try await row in try await connections[worker].execute(Load(id: key, now: now), logger: Self.logger) {
            // The row's bytes out, as the store's decoding copies them.
            let data = Array(row.0.readableBytesView)
            _ = row.5.map { Array($0.readableBytesView) }
            found = !data.isEmpty && row.1 > 0
        }
        return found
    }

    func close() async throws {
        for connection in connections { try await connection.close() }
    }
}
#endif
