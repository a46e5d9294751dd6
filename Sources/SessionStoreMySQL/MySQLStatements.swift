import SessionStore

/// The SQL text for one table and key layout, built once per backend.
struct MySQLStatements: Sendable {
    static let schemaVersion = 1
    static let schemaTable = "session_store_schema"
    static let leaseTable = "session_store_lease"

    let table: String
    let layout: KeyLayout
    let autoIncrement: Bool

    let createTable: String
    /// Records the table's schema version and layout; ignored when it is already recorded.
    let insertSchemaRow: String
    /// The live row at `now`: key, now.
    let load: String
    /// The row as stored, expired or retired included: key.
    let read: String
    /// ``read`` with the row locked until the transaction ends: key.
    let lock: String
    /// A new row: key, data, version, created_at, expires_at.
    let insert: String
    /// Every column of an existing row: data, version, created_at, expires_at, key.
    let replace: String
    /// The versioned update of a live row: data, expires_at, key, version, now.
    let update: String
    /// The merge's write under the row lock: data, expires_at, key, version.
    let mergeUpdate: String
    let touch: String
    let retire: String
    let delete: String
    let deleteVersioned: String
    let deleteExpired: String
    let leaseAcquire: String
    let leaseRead: String
    let leaseRelease: String

    init(table: String, layout: KeyLayout, autoIncrement: Bool) {
        self.table = table
        self.layout = layout
        self.autoIncrement = autoIncrement
        let keyColumns = layout == .checksumAndID ? "crc32, id" : "id"
        let key = layout == .checksumAndID ? "crc32 = ? AND id = ?" : "id = ?"
        var columns: [String] = []
        if autoIncrement { columns.append("row_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT") }
        if layout == .checksumAndID { columns.append("crc32 INT UNSIGNED NOT NULL") }
        columns += [
            "id VARBINARY(64) NOT NULL",
            "data MEDIUMBLOB NOT NULL",
            "version BIGINT NOT NULL",
            "created_at BIGINT NOT NULL",
            "expires_at BIGINT NOT NULL",
        ]
        if autoIncrement {
            columns.append("PRIMARY KEY (row_id)")
            columns.append("UNIQUE KEY session_key (\(keyColumns))")
        } else {
            columns.append("PRIMARY KEY (\(keyColumns))")
        }
        columns.append("KEY expires_at (expires_at)")
        createTable = "CREATE TABLE IF NOT EXISTS `\(table)` (\(columns.joined(separator: ", "))) "
            + "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        insertSchemaRow = "INSERT IGNORE INTO \(Self.schemaTable) (name, version, key_layout, auto_increment) "
            + "VALUES ('\(table)', \(Self.schemaVersion), '\(layout.rawValue)', \(autoIncrement ? 1 : 0))"
        let row = "SELECT data, version, created_at, expires_at FROM `\(table)` WHERE \(key)"
        load = row + " AND expires_at > ?"
        read = row
        lock = row + " FOR UPDATE"
        let placeholders = layout == .checksumAndID ? "?, ?, ?, ?, ?, ?" : "?, ?, ?, ?, ?"
        insert = "INSERT INTO `\(table)` (\(keyColumns), data, version, created_at, expires_at) VALUES (\(placeholders))"
        replace = "UPDATE `\(table)` SET data = ?, version = ?, created_at = ?, expires_at = ? WHERE \(key)"
        update = "UPDATE `\(table)` SET data = ?, version = version + 1, expires_at = GREATEST(expires_at, ?) "
            + "WHERE \(key) AND version = ? AND expires_at > ?"
        mergeUpdate = "UPDATE `\(table)` SET data = ?, version = version + 1, expires_at = GREATEST(expires_at, ?) "
            + "WHERE \(key) AND version = ?"
        touch = "UPDATE `\(table)` SET expires_at = ? WHERE \(key) AND expires_at > ? AND expires_at < ?"
        // Counts the row whether or not it changes (the connection reports matched rows).
        retire = "UPDATE `\(table)` SET version = 0, expires_at = LEAST(expires_at, ?) WHERE \(key)"
        delete = "DELETE FROM `\(table)` WHERE \(key)"
        deleteVersioned = "DELETE FROM `\(table)` WHERE \(key) AND version = ?"
        deleteExpired = "DELETE FROM `\(table)` WHERE expires_at < ? ORDER BY expires_at LIMIT ?"
        let lease = Self.leaseTable
        leaseAcquire = "INSERT INTO \(lease) (name, holder, expires_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
            + "holder = IF(expires_at <= ? OR holder = VALUES(holder), VALUES(holder), holder), "
            + "expires_at = IF(holder = VALUES(holder), VALUES(expires_at), expires_at)"
        leaseRead = "SELECT holder, expires_at FROM \(lease) WHERE name = ?"
        leaseRelease = "UPDATE \(lease) SET expires_at = 0 WHERE name = ? AND holder = ?"
    }

    static let createSchemaTable = "CREATE TABLE IF NOT EXISTS \(schemaTable) ("
        + "name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, "
        + "version INT NOT NULL, key_layout VARCHAR(16) NOT NULL, auto_increment TINYINT NOT NULL"
        + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    static let createLeaseTable = "CREATE TABLE IF NOT EXISTS \(leaseTable) ("
        + "name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, "
        + "holder VARBINARY(255) NOT NULL, expires_at BIGINT NOT NULL"
        + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    /// The key's bound values, in the order of the key predicate.
    func keyValues(_ key: SessionKey) -> [MySQLValue] {
        layout == .checksumAndID ? [.int(Int64(key.checksum)), .text(key.value)] : [.text(key.value)]
    }
}
