import SessionStoreCore
import SessionStoreSQLite

/// The physical floor: the store's own table and statements' work done through the
/// SQLite C API directly, with prepared statements and no store logic (the stored key is
/// known in advance: no id validation, no hashing, no decoding).
///
/// Not `Sendable`: one per thread.
final class SQLiteFloor: FloorConnection {
    let db: RawDB
    private let load: RawStatement
    private let update: RawStatement
    private let layout: KeyLayout

    init(path: String, layout: KeyLayout = SQLiteConfiguration().keyLayout, synchronous: String = "NORMAL", mmapSize: Int) throws {
        db = try RawDB(path: path, synchronous: synchronous, mmapSize: mmapSize)
        self.layout = layout
        // The store's table form (schema version 2): the rowid is the key's slot, `?7`.
        let key = "slot = ?7 AND " + (layout == .checksumAndID ? "crc32 = ?1 AND id = ?2" : "id = ?2")
        load = try db.prepare(
            "SELECT data, version, created_at, expires_at FROM sessions WHERE \(key) AND expires_at > ?3")
        update = try db.prepare(
            "UPDATE sessions SET data = ?3, version = version + 1, expires_at = MAX(expires_at, ?4) WHERE \(key)")
    }

    @inline(__always)
    func load(_ key: String, checksum: UInt32, slot: Int64, now: Int64) throws -> Bool {
        if layout == .checksumAndID { load.bind(1, Int64(checksum)) }
        load.bind(7, slot)
        load.bind(2, text: key)
        load.bind(3, now)
        defer { load.reset() }
        guard try load.step() else { return false }
        let data = load.blob(0)
        return !data.isEmpty && load.int64(1) > 0
    }

    @inline(__always)
    func update(_ key: String, checksum: UInt32, slot: Int64, data: [UInt8], expiresAt: Int64) throws {
        if layout == .checksumAndID { update.bind(1, Int64(checksum)) }
        update.bind(7, slot)
        update.bind(2, text: key)
        update.bind(3, blob: data)
        update.bind(4, expiresAt)
        try update.run()
    }

    func begin() throws { try db.exec("BEGIN") }

    func commit() throws { try db.exec("COMMIT") }

    func deleteExpired(now: Int64) throws -> Int {
        try db.exec("DELETE FROM sessions WHERE expires_at < \(now)")
        return db.changes
    }
}
