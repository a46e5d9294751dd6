import CSessionStoreSQLite
import Foundation
import SessionStoreCore
import SessionStoreSQLite

/// Embedded SQLite: each table is a database file of its own in the run's directory, filled
/// through the C API with synchronous off; the floor and the naive store open the same file
/// with the store's settings (WAL, `synchronous`, `mmap_size`).
struct SQLiteEngine: Engine {
    let settings: Settings

    var label: String? { nil }
    var floorName: String { "C API" }
    var environment: [String: String] {
        ["sqlite": "libsqlite3 \(String(cString: sqlite3_libversion())), WAL, mmap_size \(settings.mmapSize), \(settings.readers) readers, load cache \(settings.loadCacheSlots) rows"]
    }
    var keyVariants: [KeyVariant] { [.idOnly, .checksumAndID] }
    var durabilities: [Durability] { [.normal, .full] }
    var writeModes: [WriteMode] {
        [WriteMode(name: "1 txn per save", groupCommit: false), WriteMode(name: "group commit", groupCommit: true)]
    }

    func cleanupMethod(batch: Int) -> String { "key-order walk, batches of \(batch)" }

    func applies(_ target: EngineTarget) -> Bool {
        switch target {
        case .groupCommit, .walPeak: true
        case .loadVsFloorByTasks, .asyncClientFloor, .loadVsDriverByTasks: false
        }
    }

    private func path(_ name: String) -> String {
        (settings.dir as NSString).appendingPathComponent(name + ".db")
    }

    private static func synchronous(_ durability: Durability?) -> SQLiteConfiguration.Synchronous {
        durability == .full ? .full : .normal
    }

    /// Configuration of the store's SQLite backend as every scenario opens it.
    func configuration(path: String, key: KeyVariant, durability: Durability = .normal, groupCommit: Bool = true) -> SQLiteConfiguration {
        var configuration = SQLiteConfiguration(path: path)
        configuration.keyLayout = key.layout
        configuration.synchronous = Self.synchronous(durability)
        configuration.groupCommit = groupCommit
        configuration.mmapSize = settings.mmapSize
        configuration.readerCount = settings.readers
        configuration.loadCacheSlots = settings.loadCacheSlots
        configuration.busyTimeout = .seconds(120)
        return configuration
    }

    func fillStoreTable(_ name: String, rows: Int, key: KeyVariant, plan: ExpiryPlan) async throws -> StoreTable {
        let path = path(name)
        try await drop(path)
        let backend = try SQLiteBackend(configuration: configuration(path: path, key: key), logger: quietLogger)
        try await backend.close()
        let hashing = settings.idHashing
        let keys = try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, store table (\(key.layout.rawValue))", total: rows)
            let keys = StoredKeys(rows: rows, hashing: hashing)
            let db = try RawDB(path: path, synchronous: "OFF")
            let insert = try db.prepare(
                key.layout == .checksumAndID
                    ? "INSERT INTO sessions (slot, crc32, id, data, version, created_at, expires_at) VALUES (?6, ?1, ?2, ?3, 1, ?4, ?5)"
                    : "INSERT INTO sessions (slot, id, data, version, created_at, expires_at) VALUES (?6, ?2, ?3, 1, ?4, ?5)")
            let now = wallMillis()
            try Self.insertAll(db, keys.fillOrder(key.layout, slotted: true), progress: progress) { index in
                let (created, expires) = plan.times(index, now: now)
                insert.bind(1, Int64(keys.checksums[index]))
                insert.bind(2, text: keys.values[index])
                insert.bind(3, blob: Payload.stored(index))
                insert.bind(4, created)
                insert.bind(5, expires)
                insert.bind(6, keys.slots[index])
                try insert.run()
            }
            progress.finish()
            return keys
        }
        return StoreTable(location: path, key: key, keys: keys)
    }

    /// Binds every row of `table` to one of `owners` owners (by its slot), as logins would:
    /// the owner column and the owner index the backend keeps.
    func bindOwners(_ table: StoreTable, owners: Int) async throws {
        let path = table.location
        try await onThread {
            let db = try RawDB(path: path, synchronous: "OFF")
            try db.exec("UPDATE sessions SET owner = 'owner-' || (abs(slot) % \(owners)), last_seen = created_at")
        }
    }

    func fillNaiveTable(_ name: String, rows: Int, plan: ExpiryPlan) async throws -> NaiveTable {
        let path = path(name)
        try await drop(path)
        try await onThread {
            let progress = Progress("fill \(Fmt.rows(rows)) rows, naive table", total: rows)
            let db = try RawDB(path: path, synchronous: "OFF")
            try db.exec(SQLiteNaive.schema)
            let insert = try db.prepare(
                "INSERT INTO \(SQLiteNaive.table) (sid, data, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
            let now = wallMillis()
            try Self.insertAll(db, Array(0..<rows), progress: progress) { index in
                let (created, expires) = plan.times(index, now: now)
                insert.bind(1, text: IDs.id(index))
                insert.bind(2, blob: Payload.encoded(index))
                insert.bind(3, created)
                insert.bind(4, expires)
                try insert.run()
            }
            progress.finish()
        }
        return NaiveTable(location: path)
    }

    /// Runs `insert` for every row in transactions of 100k, then empties the WAL so the
    /// measurements start from a checkpointed file.
    private static func insertAll(_ db: RawDB, _ order: [Int], progress: Progress, _ insert: (Int) throws -> Void) throws {
        try db.exec("BEGIN")
        for (done, index) in order.enumerated() {
            try insert(index)
            if done % 100_000 == 99_999 {
                try db.exec("COMMIT")
                try db.exec("BEGIN")
                progress.update(done + 1)
            }
        }
        try db.exec("COMMIT")
        try db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    func openBackend(_ table: StoreTable, durability: Durability?, writeMode: WriteMode?) async throws -> any StorageBackend {
        try SQLiteBackend(
            configuration: configuration(
                path: table.location, key: table.key, durability: durability ?? .normal, groupCommit: writeMode?.groupCommit ?? true),
            logger: quietLogger)
    }

    func floor(_ table: StoreTable, durability: Durability?) throws -> SQLiteFloor {
        try SQLiteFloor(
            path: table.location, layout: table.key.layout, synchronous: Self.synchronous(durability).rawValue.uppercased(),
            mmapSize: settings.mmapSize)
    }

    func naive(_ table: NaiveTable, durability: Durability?) throws -> SQLiteNaive {
        try SQLiteNaive(path: table.location, synchronous: Self.synchronous(durability).rawValue.uppercased(), mmapSize: settings.mmapSize)
    }

    /// Removes a database file with its WAL and shared-memory files.
    func drop(_ location: String) async throws {
        for suffix in ["", "-wal", "-shm", "-readers"] where FileManager.default.fileExists(atPath: location + suffix) {
            try FileManager.default.removeItem(atPath: location + suffix)
        }
    }

    func walBytes(_ table: StoreTable) -> Int? {
        var info = stat()
        guard stat(table.location + "-wal", &info) == 0 else { return 0 }
        return Int(info.st_size)
    }
}
