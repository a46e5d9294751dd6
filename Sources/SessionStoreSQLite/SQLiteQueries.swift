import SessionStoreCore

/// How a session table keeps its rows, by schema version.
enum SQLiteTableForm: Sendable {
    /// Version 1: a `WITHOUT ROWID` table clustered on the key. Its interior pages hold
    /// whole rows, so a lookup in a large table reads several uncached pages.
    case clustered
    /// Version 2: a rowid table whose rowid is the key's slot (``SQLiteSlot``); the key
    /// stays a column, matched by every statement.
    case slotted

    init(version: Int64) {
        self = version >= 2 ? .slotted : .clustered
    }
}

/// The SQL of every operation for one table, key layout and table form, built once.
///
/// Parameters are numbered: `?1` is always the checksum, `?2` the id and `?7` the slot
/// (each simply not referenced where the layout or form has no such column), then each
/// statement's own values from `?3` to `?6`, and `?8` owner, `?9` details, `?10` last use.
struct SQLiteQueries: Sendable {
    /// The schema version this code creates; it still reads and writes every earlier one.
    /// Version 3 adds the owner, details and last-use columns (``hasOwners``).
    static let schemaVersion: Int64 = 3
    /// The first schema version with the owner columns.
    static let ownersVersion: Int64 = 3
    /// The parameter every keyed statement of a slotted table binds the slot to.
    static let slotParameter: Int32 = 7
    /// The table recording each session table's schema version and key layout.
    static let schemaTable = "session_store_schema"
    /// Creates ``schemaTable``.
    static let createSchemaTable =
        "CREATE TABLE IF NOT EXISTS \(schemaTable) (table_name TEXT PRIMARY KEY, version INTEGER NOT NULL, key_layout TEXT NOT NULL)"

    /// The name of the index on `expires_at` that versions before the key-order cleanup
    /// created with each table; opening a table drops it (see `createOrCheckSchema`).
    static func expiryIndex(of table: String) -> String { "\(table)_expires" }

    let table: String
    let layout: KeyLayout
    let form: SQLiteTableForm
    /// Whether the table has the `owner`, `details` and `last_seen` columns and the owner
    /// index (schema version 3); without them the owner operations throw `.schema`.
    let hasOwners: Bool
    let keyBinding: SQLiteKeyBinding
    /// The key's condition in a `WHERE` (slot, checksum and id, as the form and layout have).
    let keyCondition: String
    let createTable: String
    /// Drops the expiry index earlier versions created (``expiryIndex(of:)``), when present.
    let dropExpiryIndex: String
    /// Records this table's schema version and key layout in ``schemaTable``.
    let insertSchemaRow: String
    /// `SELECT data, version, created_at, expires_at` of a live row, or one row of NULLs
    /// when there is none; `?3` = now.
    let load: String
    /// Upsert that replaces only an expired row; `?3` data, `?4` version, `?5` created, `?6` expires.
    let insert: String
    /// `?3` data, `?4` expires, `?5` expected version, `?6` now; ``SQLiteRowChange/update``
    /// gives the row it leaves.
    let update: String
    /// `?3` expires, `?4` now; ``SQLiteRowChange/touch`` gives the row it leaves.
    let touch: String
    /// `?3` data, `?4` expires, `?5` expected version, `?6` now, `?8` owner, `?9` details.
    let rebind: String
    /// The partial index on the owner (only bound rows are in it).
    let createOwnerIndex: String
    /// Deletes the row `?1`/`?2`/`?7` when its owner is `?8`.
    let deleteOwnedOne: String
    /// Deletes up to `?4` rows of owner `?8` whose id is not `?3` (NULL: none spared).
    let deleteOwnedBatch: String
    /// Deletes the live rows of owner `?8` (expiry after `?3`, version not 0) ranked after
    /// the `?4` most recently used.
    let trimOwned: String
    /// Sets version 0 (retired) and moves expiry back to `?3` when earlier.
    let retire: String
    let delete: String
    /// `?3` expected version.
    let deleteVersion: String
    /// The key columns in key order (`crc32, id` or `id`; `slot` in a slotted table), for
    /// the cleanup's walk.
    let keyColumns: String
    /// How many columns the key has: the values a walk position binds.
    let keyWidth: Int32

    /// The statements for `table` with `layout`, in the form of schema `version` (by
    /// default the one this code creates).
    init(table: String, layout: KeyLayout, version: Int64 = Self.schemaVersion) {
        self.table = table
        self.layout = layout
        let form = SQLiteTableForm(version: version)
        self.form = form
        let owners = version >= Self.ownersVersion
        hasOwners = owners
        let checksum = layout == .checksumAndID
        keyBinding = SQLiteKeyBinding(checksum: checksum, slotted: form == .slotted)
        let layoutKey = checksum ? "crc32 = ?1 AND id = ?2" : "id = ?2"
        let columns = "data BLOB NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL"
            + (owners ? ", owner TEXT, details BLOB, last_seen INTEGER" : "")
        let idColumns = checksum ? "crc32 INTEGER NOT NULL, id TEXT NOT NULL" : "id TEXT NOT NULL"
        let replace = "data = excluded.data, version = excluded.version, created_at = excluded.created_at, "
            + "expires_at = excluded.expires_at"
            + (owners ? ", owner = excluded.owner, details = excluded.details, last_seen = excluded.last_seen" : "")
            + " WHERE \(table).expires_at <= excluded.created_at"
        let ownerColumns = owners ? ", owner, details, last_seen" : ""
        let ownerValues = owners ? ", ?8, ?9, ?10" : ""
        switch form {
        case .clustered:
            keyCondition = layoutKey
            keyColumns = checksum ? "crc32, id" : "id"
            keyWidth = checksum ? 2 : 1
            let primaryKey = checksum ? "PRIMARY KEY (crc32, id)" : "PRIMARY KEY (id)"
            createTable = "CREATE TABLE IF NOT EXISTS \(table) (\(idColumns), \(columns), \(primaryKey)) WITHOUT ROWID"
            insert = """
                INSERT INTO \(table) (\(checksum ? "crc32, id" : "id"), data, version, created_at, expires_at\(ownerColumns)) \
                VALUES (\(checksum ? "?1, ?2" : "?2"), ?3, ?4, ?5, ?6\(ownerValues)) ON CONFLICT (\(keyColumns)) DO UPDATE SET \(replace)
                """
        case .slotted:
            keyCondition = "slot = ?7 AND " + layoutKey
            keyColumns = "slot"
            keyWidth = 1
            createTable = "CREATE TABLE IF NOT EXISTS \(table) (slot INTEGER PRIMARY KEY, \(idColumns), \(columns))"
            // A live row of another key in the slot is left alone (the insert reports a taken
            // id); an expired one is replaced, key included.
            insert = """
                INSERT INTO \(table) (slot, \(checksum ? "crc32, id" : "id"), data, version, created_at, expires_at\(ownerColumns)) \
                VALUES (?7, \(checksum ? "?1, ?2" : "?2"), ?3, ?4, ?5, ?6\(ownerValues)) ON CONFLICT (slot) DO UPDATE SET \
                \(checksum ? "crc32 = excluded.crc32, " : "")id = excluded.id, \(replace)
                """
        }
        let key = keyCondition
        insertSchemaRow = "INSERT INTO \(Self.schemaTable) (table_name, version, key_layout) VALUES ('\(table)', \(Self.schemaVersion), '\(layout.rawValue)')"
        dropExpiryIndex = "DROP INDEX IF EXISTS \(Self.expiryIndex(of: table))"
        // Always one row, all NULL when no live row matches: a statement that ran to its end
        // closes its read transaction at once, one left on a row keeps it open until reset,
        // which lets a miss's read lock linger like a hit's (``SQLiteReaderPool``).
        load = """
            SELECT s.data, s.version, s.created_at, s.expires_at\(owners ? ", s.owner, s.details, s.last_seen" : "") \
            FROM (SELECT 1) AS one LEFT JOIN \(table) AS s ON \(key) AND expires_at > ?3
            """
        let seen = owners ? ", last_seen = ?6" : ""
        update = """
            UPDATE \(table) SET data = ?3, version = version + 1, expires_at = MAX(expires_at, ?4)\(seen) \
            WHERE \(key) AND version = ?5 AND expires_at > ?6
            """
        touch = "UPDATE \(table) SET expires_at = ?3\(owners ? ", last_seen = ?4" : "") WHERE \(key) AND expires_at < ?3 AND expires_at > ?4"
        rebind = """
            UPDATE \(table) SET data = ?3, owner = ?8, details = ?9, version = version + 1, expires_at = ?4, last_seen = ?6 \
            WHERE \(key) AND version = ?5 AND expires_at > ?6
            """
        // Only bound rows are indexed: anonymous sessions cost the index nothing.
        createOwnerIndex = "CREATE INDEX IF NOT EXISTS \(table)_owner ON \(table) (owner, created_at, id) WHERE owner IS NOT NULL"
        deleteOwnedOne = "DELETE FROM \(table) WHERE \(key) AND owner = ?8"
        deleteOwnedBatch = """
            DELETE FROM \(table) WHERE slot IN (SELECT slot \
            FROM \(table) WHERE owner = ?8 AND id IS NOT ?3 LIMIT ?4)
            """
        trimOwned = """
            DELETE FROM \(table) WHERE slot IN (SELECT slot \
            FROM \(table) WHERE owner = ?8 AND expires_at > ?3 AND version <> 0 \
            ORDER BY coalesce(last_seen, created_at) DESC, created_at DESC, id DESC LIMIT -1 OFFSET ?4)
            """
        retire = "UPDATE \(table) SET version = 0, expires_at = MIN(expires_at, ?3) WHERE \(key)"
        delete = "DELETE FROM \(table) WHERE \(key)"
        deleteVersion = "DELETE FROM \(table) WHERE \(key) AND version = ?3"
    }

    /// A cleanup slice's scan: up to `?2` rows in key order after the position bound from
    /// `?3` (from the table's start when `afterPosition` is false), each row's key, whether
    /// it expired before `?1`, and the bytes of its data (which SQLite reads from the
    /// row's header, not its pages).
    func walkScan(afterPosition: Bool) -> String {
        let after = afterPosition ? " WHERE (\(keyColumns)) > (\(positionParameters(from: 3)))" : ""
        return "SELECT \(keyColumns), expires_at < ?1, length(data) FROM \(table)\(after) ORDER BY \(keyColumns) LIMIT ?2"
    }

    /// A cleanup slice's delete: the rows expired before `?1` in the key range after the
    /// position bound from `?3` and up to the one bound next, either end open when absent.
    func walkDelete(afterPosition: Bool, upToPosition: Bool) -> String {
        var conditions: [String] = []
        var next: Int32 = 3
        if afterPosition {
            conditions.append("(\(keyColumns)) > (\(positionParameters(from: next)))")
            next += keyWidth
        }
        if upToPosition {
            conditions.append("(\(keyColumns)) <= (\(positionParameters(from: next)))")
        }
        conditions.append("expires_at < ?1")
        return "DELETE FROM \(table) WHERE " + conditions.joined(separator: " AND ")
    }

    private func positionParameters(from first: Int32) -> String {
        (first..<first + keyWidth).map { "?\($0)" }.joined(separator: ", ")
    }
}

extension SQLiteQueries {
    /// A page of owner `?8`'s live rows (expiry after `?3`, version not 0), newest first,
    /// at most `?4`; with `afterPosition`, only rows after created time `?5` and id `?6`.
    func ownedSessions(afterPosition: Bool) -> String {
        let after = afterPosition ? " AND (created_at < ?5 OR (created_at = ?5 AND id < ?6))" : ""
        return """
            SELECT id, created_at, coalesce(last_seen, created_at), expires_at, details FROM \(table) \
            WHERE owner = ?8 AND expires_at > ?3 AND version <> 0\(after) ORDER BY created_at DESC, id DESC LIMIT ?4
            """
    }
}

/// What ``SQLiteQueries/update`` or ``SQLiteQueries/touch`` does to the one row it changes,
/// with the values bound: the load cache keeps the row it leaves
/// (``SQLiteLoadCache/rowWritten(_:for:)``). Kept in step with those statements.
enum SQLiteRowChange: Sendable {
    case update(data: [UInt8], expiresAt: Int64, now: Int64)
    case touch(expiresAt: Int64, now: Int64)

    /// The row the statement leaves when it changed `previous` (the row as stored before it),
    /// in a table with the owner columns when `owners`.
    func row(from previous: SessionRecord, owners: Bool) -> SessionRecord {
        var row = previous
        switch self {
        case .update(let data, let expiresAt, let now):
            row.data = data
            row.version += 1
            row.expiresAt = max(previous.expiresAt, expiresAt)
            if owners { row.lastSeen = now }
        case .touch(let expiresAt, let now):
            row.expiresAt = expiresAt
            if owners { row.lastSeen = now }
        }
        return row
    }
}
