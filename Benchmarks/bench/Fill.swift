import Logging
import SessionStore
import SessionStoreSQLite

/// How a filled table's rows expire.
enum ExpiryPlan: Sendable {
    /// Every row live and touched just now: loads never extend them during a run.
    case fresh
    /// Even rows expired an hour ago, odd rows live (the cleanup scenario).
    case halfExpired
    /// Every row live, last used within the past touch interval (steady state of a busy
    /// site); `now` is the virtual clock's start.
    case recentlyUsed(now: Int64, idle: Int64, touchInterval: Int64)

    /// `(created_at, expires_at)` of row `index` at fill time `now`.
    func times(_ index: Int, now: Int64) -> (Int64, Int64) {
        let jitter = Int64(mix64(UInt64(index) ^ 0xE1) % 600_000)
        switch self {
        case .fresh:
            return (now - 3_600_000 - jitter, now + 5_400_000 + jitter)
        case .halfExpired:
            if index % 2 == 0 { return (now - 7_200_000 - jitter, now - 3_600_000 - jitter) }
            return (now - 3_600_000 - jitter, now + 5_400_000 + jitter)
        case .recentlyUsed(let start, let idle, let touch):
            let lastUsed = start - Int64(mix64(UInt64(index) ^ 0x70) % UInt64(max(1, touch)))
            return (lastUsed - 600_000 - jitter, lastUsed + idle)
        }
    }
}

/// Fills tables fast: raw C inserts in big transactions, with synchronous off.
enum Fill {
    static let naiveTable = "naive_sessions"

    /// Configuration of the store's SQLite backend as every scenario opens it.
    static func sqliteConfiguration(
        path: String, layout: KeyLayout = SQLiteConfiguration().keyLayout, synchronous: SQLiteConfiguration.Synchronous = .normal,
        groupCommit: Bool = true, settings: Settings
    ) -> SQLiteConfiguration {
        var configuration = SQLiteConfiguration(path: path)
        configuration.keyLayout = layout
        configuration.synchronous = synchronous
        configuration.groupCommit = groupCommit
        configuration.mmapSize = settings.mmapSize
        configuration.readerCount = settings.readers
        configuration.busyTimeout = .seconds(120)
        return configuration
    }

    /// Creates the store's table by opening the backend once (so the schema is exactly the
    /// backend's), then inserts `rows` rows in key order.
    @discardableResult
    static func storeTable(
        path: String, rows: Int, layout: KeyLayout = SQLiteConfiguration().keyLayout, plan: ExpiryPlan, settings: Settings
    ) async throws -> StoredKeys {
        let backend = try SQLiteBackend(
            configuration: sqliteConfiguration(path: path, layout: layout, settings: settings),
            logger: quietLogger)
        try await backend.close()
        let hashing = settings.idHashing
        return try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, store table (\(layout.rawValue))", total: rows)
            let keys = StoredKeys(rows: rows, hashing: hashing)
            // Key order makes the fill fast; rows are then packed densely, for store and floor alike.
            var order: [(UInt32, String, Int)] = []
            order.reserveCapacity(rows)
            for index in 0..<rows {
                order.append((layout == .checksumAndID ? keys.checksums[index] : 0, keys.values[index], index))
            }
            order.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            let db = try RawDB(path: path, synchronous: "OFF")
            let sql = layout == .checksumAndID
                ? "INSERT INTO sessions (crc32, id, data, version, created_at, expires_at) VALUES (?1, ?2, ?3, 1, ?4, ?5)"
                : "INSERT INTO sessions (id, data, version, created_at, expires_at) VALUES (?2, ?3, 1, ?4, ?5)"
            let insert = try db.prepare(sql)
            let now = wallMillis()
            try db.exec("BEGIN")
            for (done, (_, key, index)) in order.enumerated() {
                let (created, expires) = plan.times(index, now: now)
                insert.bind(1, Int64(keys.checksums[index]))
                insert.bind(2, text: key)
                insert.bind(3, blob: Payload.stored(index))
                insert.bind(4, created)
                insert.bind(5, expires)
                try insert.run()
                if done % 100_000 == 99_999 {
                    try db.exec("COMMIT")
                    try db.exec("BEGIN")
                    progress.update(done + 1)
                }
            }
            try db.exec("COMMIT")
            try db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
            progress.finish()
            return keys
        }
    }

    static let naiveSchema = """
        CREATE TABLE IF NOT EXISTS \(naiveTable) (id INTEGER PRIMARY KEY AUTOINCREMENT, \
        sid TEXT NOT NULL UNIQUE, data BLOB NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS \(naiveTable)_expires ON \(naiveTable) (expires_at);
        """

    /// Creates and fills the naive store's table: auto-increment key plus a UNIQUE text id.
    static func naiveTable(path: String, rows: Int, plan: ExpiryPlan) async throws {
        try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, naive table", total: rows)
            let db = try RawDB(path: path, synchronous: "OFF")
            try db.exec(naiveSchema)
            let insert = try db.prepare(
                "INSERT INTO \(naiveTable) (sid, data, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
            let now = wallMillis()
            try db.exec("BEGIN")
            for index in 0..<rows {
                let (created, expires) = plan.times(index, now: now)
                insert.bind(1, text: IDs.id(index))
                insert.bind(2, blob: Payload.encoded(index))
                insert.bind(3, created)
                insert.bind(4, expires)
                try insert.run()
                if index % 100_000 == 99_999 {
                    try db.exec("COMMIT")
                    try db.exec("BEGIN")
                    progress.update(index + 1)
                }
            }
            try db.exec("COMMIT")
            try db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
            progress.finish()
        }
    }
}

/// The keys the store keeps for ids `IDs.id(0..<rows)` (their SHA-256 unless the store
/// is configured otherwise), and for a few thousand ids never stored: what the floor binds.
final class StoredKeys: Sendable {
    let values: [String]
    let checksums: [UInt32]
    let missValues: [String]
    let missChecksums: [UInt32]
    static let missCount = 4096

    init(rows: Int, hashing: IDHashing) {
        func key(_ id: String) -> SessionKey { SessionKey(SessionID(validating: id)!, hashing: hashing) }
        let stored = (0..<rows).map { key(IDs.id($0)) }
        values = stored.map(\.value)
        checksums = stored.map(\.checksum)
        let misses = (0..<Self.missCount).map { key(IDs.missID($0)) }
        missValues = misses.map(\.value)
        missChecksums = misses.map(\.checksum)
    }
}

/// Backends log warnings and errors only; the bench's own output is the table.
let quietLogger: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    return logger
}()
