import SessionStoreCore

/// The SQL text for one table and key layout, built once per backend.
struct MySQLStatements: Sendable {
    /// The schema version this code creates; it still reads and writes version 1.
    /// Version 2 adds the owner, details and last-use columns and the owner index.
    static let schemaVersion = 2
    /// The first schema version with the owner columns.
    static let ownersVersion = 2
    static let schemaTable = "session_store_schema"
    static let leaseTable = "session_store_lease"

    let table: String
    let layout: KeyLayout
    let autoIncrement: Bool
    /// Whether the table has the owner columns (schema version 2); the owner operations
    /// throw `.schema` without them.
    let hasOwners: Bool
    /// The columns a row read returns: data, version, created_at, expires_at, and with the
    /// owner columns owner, details, last_seen.
    let recordColumns: [MySQLColumnKind]
    /// Sets the data, owner and details at a version: data, owner, details, expires_at,
    /// last_seen, key, version, now.
    let rebind: String
    /// Deletes one row of an owner: key, owner.
    let deleteOwnedOne: String
    /// Deletes up to a limit of an owner's rows but one: owner, spared id (or NULL), limit.
    let deleteOwnedBatch: String
    /// An owner's live rows, most recently used first, locked: owner, now.
    let rankOwned: String

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

    init(table: String, layout: KeyLayout, autoIncrement: Bool, version: Int = Self.schemaVersion) {
        self.table = table
        self.layout = layout
        self.autoIncrement = autoIncrement
        let owners = version >= Self.ownersVersion
        hasOwners = owners
        recordColumns = [.bytes, .int, .int, .int] + (owners ? [.bytes, .bytes, .int] : [])
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
        if owners { columns += Self.ownerColumns }
        if autoIncrement {
            columns.append("PRIMARY KEY (row_id)")
            columns.append("UNIQUE KEY session_key (\(keyColumns))")
        } else {
            columns.append("PRIMARY KEY (\(keyColumns))")
        }
        columns.append("KEY expires_at (expires_at)")
        if owners { columns.append(Self.ownerIndex) }
        createTable = "CREATE TABLE IF NOT EXISTS `\(table)` (\(columns.joined(separator: ", "))) "
            + "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        insertSchemaRow = "INSERT IGNORE INTO \(Self.schemaTable) (name, version, key_layout, auto_increment) "
            + "VALUES ('\(table)', \(Self.schemaVersion), '\(layout.rawValue)', \(autoIncrement ? 1 : 0))"
        let ownerColumns = owners ? ", owner, details, last_seen" : ""
        let row = "SELECT data, version, created_at, expires_at\(ownerColumns) FROM `\(table)` WHERE \(key)"
        load = row + " AND expires_at > ?"
        read = row
        lock = row + " FOR UPDATE"
        let placeholders = Array(repeating: "?", count: (layout == .checksumAndID ? 6 : 5) + (owners ? 3 : 0))
            .joined(separator: ", ")
        insert = "INSERT INTO `\(table)` (\(keyColumns), data, version, created_at, expires_at\(ownerColumns)) VALUES (\(placeholders))"
        replace = "UPDATE `\(table)` SET data = ?, version = ?, created_at = ?, expires_at = ?"
            + (owners ? ", owner = ?, details = ?, last_seen = ?" : "") + " WHERE \(key)"
        // With the owner columns, the write's `now` follows the expiry: it is the last use.
        let seen = owners ? ", last_seen = ?" : ""
        update = "UPDATE `\(table)` SET data = ?, version = version + 1, expires_at = GREATEST(expires_at, ?)\(seen) "
            + "WHERE \(key) AND version = ? AND expires_at > ?"
        mergeUpdate = "UPDATE `\(table)` SET data = ?, version = version + 1, expires_at = GREATEST(expires_at, ?)\(seen) "
            + "WHERE \(key) AND version = ?"
        touch = "UPDATE `\(table)` SET expires_at = ?\(seen) WHERE \(key) AND expires_at > ? AND expires_at < ?"
        rebind = "UPDATE `\(table)` SET data = ?, owner = ?, details = ?, version = version + 1, expires_at = ?, last_seen = ? "
            + "WHERE \(key) AND version = ? AND expires_at > ?"
        deleteOwnedOne = "DELETE FROM `\(table)` WHERE \(key) AND owner = ?"
        deleteOwnedBatch = "DELETE FROM `\(table)` WHERE owner = ? AND NOT (id <=> ?) LIMIT ?"
        rankOwned = "SELECT \(keyColumns) FROM `\(table)` WHERE owner = ? AND expires_at > ? AND version <> 0 "
            + "ORDER BY COALESCE(last_seen, created_at) DESC, created_at DESC, id DESC FOR UPDATE"
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

    static let ownerColumns = ["owner VARBINARY(255) NULL", "details VARBINARY(1024) NULL", "last_seen BIGINT NULL"]
    static let ownerIndex = "KEY owner (owner, created_at, id)"

    /// A page of an owner's live rows, newest first: owner, now, then with `afterPosition`
    /// created_at, created_at, id; then the limit.
    func ownedSessions(afterPosition: Bool) -> String {
        let after = afterPosition ? " AND (created_at < ? OR (created_at = ? AND id < ?))" : ""
        return "SELECT id, created_at, COALESCE(last_seen, created_at), expires_at, details FROM `\(table)` "
            + "WHERE owner = ? AND expires_at > ? AND version <> 0\(after) ORDER BY created_at DESC, id DESC LIMIT ?"
    }

    /// A record's bound values for ``insert`` and ``replace``, after the key or before it.
    func recordValues(_ record: SessionRecord) -> [MySQLValue] {
        var values: [MySQLValue] = [.bytes(record.data), .int(record.version), .int(record.createdAt), .int(record.expiresAt)]
        if hasOwners {
            values += [record.owner.map { .text($0) } ?? .null, record.details.map { .bytes($0) } ?? .null, .int(record.lastSeen)]
        }
        return values
    }

    /// The write's `now` as the last use, for ``update``, ``mergeUpdate`` and ``touch``.
    func lastSeen(_ now: Int64) -> [MySQLValue] {
        hasOwners ? [.int(now)] : []
    }

    /// The key's bound values, in the order of the key predicate.
    func keyValues(_ key: SessionKey) -> [MySQLValue] {
        layout == .checksumAndID ? [.int(Int64(key.checksum)), .text(key.value)] : [.text(key.value)]
    }
}
