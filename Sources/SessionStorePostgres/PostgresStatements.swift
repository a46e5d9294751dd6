#if Postgres
import SessionStore

/// The SQL text for one table, built once per backend. Values are always bound (`$n`),
/// never spliced into the text; the table name is a checked identifier, double-quoted.
struct PostgresStatements: Sendable {
    static let schemaVersion = 1
    static let schemaTable = "session_store_schema"
    static let leaseTable = "session_store_lease"
    /// The advisory lock the operator tools take for one session table (`schema apply`,
    /// `upgrade`): "ss" and the CRC32 of its name.
    var tableLockKey: Int64 { 0x7373 << 32 | Int64(CRC32.checksum(table)) }

    /// The longest table name: PostgreSQL truncates identifiers at 63 bytes, and the
    /// expiry index's name adds 8 (`_expires`).
    static let maximumTableNameLength = 55

    let table: String
    let createTable: String
    let createIndex: String
    /// Records the table's schema version; ignored when it is already recorded.
    let insertSchemaRow: String
    /// The live row at `now`: $1 id, $2 now.
    let load: String
    /// The row as stored, expired or retired included: $1 id.
    let read: String
    /// ``read`` with the row locked until the transaction ends: $1 id.
    let lock: String
    /// A new row, or the replacement of an expired one (`expires_at <= created_at`), in one
    /// statement: $1 id, $2 data, $3 version, $4 created_at, $5 expires_at. One row back
    /// when it wrote.
    let insert: String
    /// Every column of an existing row: $1 id, $2 data, $3 version, $4 created_at, $5 expires_at.
    let replace: String
    /// The versioned update of a live row: $1 data, $2 expires_at, $3 id, $4 version, $5 now.
    let update: String
    /// The merge's write at the version read: $1 data, $2 expires_at, $3 id, $4 version.
    let mergeUpdate: String
    /// $1 expires_at, $2 id, $3 now.
    let touch: String
    /// Counts the row whether or not it changes: $1 expires_at, $2 id.
    let retire: String
    /// $1 id, $2 version.
    let deleteVersioned: String
    /// One bounded batch: $1 cut-off, $2 limit; returns the count.
    let deleteExpired: String
    /// $1 name, $2 holder, $3 expires_at, $4 now; one row back when the lease is the holder's.
    let leaseAcquire: String
    /// $1 name, $2 holder.
    let leaseRelease: String

    init(table: String) {
        self.table = table
        let quoted = "\"\(table)\""
        createTable = "CREATE TABLE IF NOT EXISTS \(quoted) ("
            + "id text COLLATE \"C\" NOT NULL PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, "
            + "created_at bigint NOT NULL, expires_at bigint NOT NULL)"
        createIndex = "CREATE INDEX IF NOT EXISTS \"\(table)_expires\" ON \(quoted) (expires_at)"
        insertSchemaRow = "INSERT INTO \(Self.schemaTable) (name, version, key_layout) "
            + "VALUES ('\(table)', \(Self.schemaVersion), '\(KeyLayout.idOnly.rawValue)') ON CONFLICT (name) DO NOTHING"
        let row = "SELECT data, version, created_at, expires_at FROM \(quoted) WHERE id = $1"
        load = row + " AND expires_at > $2"
        read = row
        lock = row + " FOR UPDATE"
        insert = "INSERT INTO \(quoted) AS s (id, data, version, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) "
            + "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, "
            + "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at "
            + "WHERE s.expires_at <= EXCLUDED.created_at RETURNING 1"
        replace = "UPDATE \(quoted) SET data = $2, version = $3, created_at = $4, expires_at = $5 WHERE id = $1"
        update = "UPDATE \(quoted) SET data = $1, version = version + 1, expires_at = GREATEST(expires_at, $2) "
            + "WHERE id = $3 AND version = $4 AND expires_at > $5 RETURNING 1"
        mergeUpdate = "UPDATE \(quoted) SET data = $1, version = version + 1, expires_at = GREATEST(expires_at, $2) "
            + "WHERE id = $3 AND version = $4 RETURNING 1"
        touch = "UPDATE \(quoted) SET expires_at = $1 WHERE id = $2 AND expires_at > $3 AND expires_at < $1 RETURNING 1"
        retire = "UPDATE \(quoted) SET version = 0, expires_at = LEAST(expires_at, $1) WHERE id = $2 RETURNING 1"
        deleteVersioned = "DELETE FROM \(quoted) WHERE id = $1 AND version = $2 RETURNING 1"
        // The batch locks the rows it picks and skips rows a writer holds (being saved, so
        // not expired); the outer condition is checked again on the row version it deletes,
        // so a row saved after the pick survives.
        deleteExpired = "WITH gone AS (DELETE FROM \(quoted) WHERE id IN (SELECT id FROM \(quoted) "
            + "WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            + "AND expires_at < $1 RETURNING 1) SELECT count(*) FROM gone"
        leaseAcquire = "INSERT INTO \(Self.leaseTable) AS l (name, holder, expires_at) VALUES ($1, $2, $3) "
            + "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
            + "WHERE l.expires_at <= $4 OR l.holder = EXCLUDED.holder RETURNING 1"
        leaseRelease = "UPDATE \(Self.leaseTable) SET expires_at = 0 WHERE name = $1 AND holder = $2"
    }

    static let createSchemaTable = "CREATE TABLE IF NOT EXISTS \(schemaTable) ("
        + "name text COLLATE \"C\" NOT NULL PRIMARY KEY, version integer NOT NULL, key_layout text NOT NULL)"
    static let createLeaseTable = "CREATE TABLE IF NOT EXISTS \(leaseTable) ("
        + "name text COLLATE \"C\" NOT NULL PRIMARY KEY, holder text COLLATE \"C\" NOT NULL, expires_at bigint NOT NULL)"

    /// The schema statements in the order the backend runs them at open: schema and lease
    /// tables, the session table, its expiry index, its schema row.
    var schemaStatements: [String] {
        [Self.createSchemaTable, Self.createLeaseTable, createTable, createIndex, insertSchemaRow]
    }

    /// Statements that bring a table from `version` to `version + 1`; `nil` when no
    /// migration starts at `version`. Version 1 is the first and current version.
    static func migration(from version: Int) -> [String]? {
        nil
    }
}
#endif
