#if Postgres
import SessionStoreCore

/// A keyed statement's text and the name postgres-nio prepares it under, made once per
/// backend so that no execution hashes the text again. The name is the text's hash: one
/// name per text on a connection, and a connection serves one backend.
struct PostgresKeyedStatement: Sendable {
    let sql: String
    let name: String

    init(_ sql: String) {
        self.sql = sql
        name = "ss_" + String(UInt(bitPattern: sql.hashValue), radix: 36)
    }
}

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
    let load: PostgresKeyedStatement
    /// The row as stored, expired or retired included: $1 id.
    let read: PostgresKeyedStatement
    /// ``read`` with the row locked until the transaction ends: $1 id.
    let lock: PostgresKeyedStatement
    /// A new row, or the replacement of an expired one (`expires_at <= created_at`), in one
    /// statement: $1 id, $2 data, $3 version, $4 created_at, $5 expires_at, $6 owner,
    /// $7 details, $8 last_seen. One row back when it wrote.
    let insert: PostgresKeyedStatement
    /// Every column of an existing row: the values of ``insert``.
    let replace: String
    /// The versioned update of a live row: $1 data, $2 expires_at, $3 id, $4 version, $5 now.
    let update: PostgresKeyedStatement
    /// The merge's write at the version read: $1 data, $2 expires_at, $3 id, $4 version, $5 now.
    let mergeUpdate: PostgresKeyedStatement
    /// The partial index on the owner (only bound rows are in it).
    let createOwnerIndex: String
    /// Sets data, owner and details at a version: $1 data, $2 owner, $3 details,
    /// $4 expires_at, $5 now, $6 id, $7 version.
    let rebind: PostgresKeyedStatement
    /// Deletes one row of an owner: $1 id, $2 owner.
    let deleteOwnedOne: PostgresKeyedStatement
    /// Deletes up to $3 rows of owner $1 whose id is not $2 (NULL: none spared); returns the count.
    let deleteOwnedBatch: String
    /// Deletes the live rows of owner $1 (expiry after $2, version not 0) ranked after the
    /// $3 most recently used; returns the count.
    let trimOwned: String
    /// $1 expires_at, $2 id, $3 now.
    let touch: PostgresKeyedStatement
    /// Counts the row whether or not it changes: $1 expires_at, $2 id.
    let retire: PostgresKeyedStatement
    /// $1 id, $2 version.
    let deleteVersioned: PostgresKeyedStatement
    /// One bounded batch: $1 cut-off, $2 limit; returns the count.
    let deleteExpired: String
    /// $1 name, $2 holder, $3 expires_at, $4 now; one row back when the lease is the holder's.
    let leaseAcquire: PostgresKeyedStatement
    /// $1 name, $2 holder.
    let leaseRelease: String

    init(table: String) {
        self.table = table
        let quoted = "\"\(table)\""
        createTable = "CREATE TABLE IF NOT EXISTS \(quoted) ("
            + "id text COLLATE \"C\" NOT NULL PRIMARY KEY, data bytea NOT NULL, version bigint NOT NULL, "
            + "created_at bigint NOT NULL, expires_at bigint NOT NULL, "
            + "owner text COLLATE \"C\", details bytea, last_seen bigint)"
        // Only bound rows are indexed: anonymous sessions cost the index nothing.
        createOwnerIndex = "CREATE INDEX IF NOT EXISTS \"\(table)_owner\" ON \(quoted) (owner, created_at, id) WHERE owner IS NOT NULL"
        createIndex = "CREATE INDEX IF NOT EXISTS \"\(table)_expires\" ON \(quoted) (expires_at)"
        insertSchemaRow = "INSERT INTO \(Self.schemaTable) (name, version, key_layout) "
            + "VALUES ('\(table)', \(Self.schemaVersion), '\(KeyLayout.idOnly.rawValue)') ON CONFLICT (name) DO NOTHING"
        let row = "SELECT data, version, created_at, expires_at, owner, details, last_seen FROM \(quoted) WHERE id = $1"
        load = PostgresKeyedStatement(row + " AND expires_at > $2")
        read = PostgresKeyedStatement(row)
        lock = PostgresKeyedStatement(row + " FOR UPDATE")
        insert = PostgresKeyedStatement("INSERT INTO \(quoted) AS s (id, data, version, created_at, expires_at, owner, details, last_seen) "
            + "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            + "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version, "
            + "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner, "
            + "details = EXCLUDED.details, last_seen = EXCLUDED.last_seen "
            + "WHERE s.expires_at <= EXCLUDED.created_at RETURNING 1")
        replace = "UPDATE \(quoted) SET data = $2, version = $3, created_at = $4, expires_at = $5, owner = $6, details = $7, "
            + "last_seen = $8 WHERE id = $1"
        // A write's `now` is the session's last use.
        update = PostgresKeyedStatement("UPDATE \(quoted) SET data = $1, version = version + 1, expires_at = GREATEST(expires_at, $2), last_seen = $5 "
            + "WHERE id = $3 AND version = $4 AND expires_at > $5 RETURNING 1")
        mergeUpdate = PostgresKeyedStatement("UPDATE \(quoted) SET data = $1, version = version + 1, expires_at = GREATEST(expires_at, $2), last_seen = $5 "
            + "WHERE id = $3 AND version = $4 RETURNING 1")
        touch = PostgresKeyedStatement("UPDATE \(quoted) SET expires_at = $1, last_seen = $3 WHERE id = $2 AND expires_at > $3 AND expires_at < $1 RETURNING 1")
        rebind = PostgresKeyedStatement("UPDATE \(quoted) SET data = $1, owner = $2, details = $3, version = version + 1, expires_at = $4, last_seen = $5 "
            + "WHERE id = $6 AND version = $7 AND expires_at > $5 RETURNING 1")
        deleteOwnedOne = PostgresKeyedStatement("DELETE FROM \(quoted) WHERE id = $1 AND owner = $2 RETURNING 1")
        deleteOwnedBatch = "WITH gone AS (DELETE FROM \(quoted) WHERE id IN (SELECT id FROM \(quoted) "
            + "WHERE owner = $1 AND id IS DISTINCT FROM $2 LIMIT $3 FOR UPDATE) RETURNING 1) SELECT count(*) FROM gone"
        // Every trim ranks the owner's rows the same way; the ranked rows are locked, so two
        // trims of one owner run one after the other and the second sees the first's result.
        trimOwned = "WITH gone AS (DELETE FROM \(quoted) WHERE id IN (SELECT id FROM \(quoted) "
            + "WHERE owner = $1 AND expires_at > $2 AND version <> 0 "
            + "ORDER BY COALESCE(last_seen, created_at) DESC, created_at DESC, id DESC OFFSET $3 FOR UPDATE) RETURNING 1) "
            + "SELECT count(*) FROM gone"
        retire = PostgresKeyedStatement("UPDATE \(quoted) SET version = 0, expires_at = LEAST(expires_at, $1) WHERE id = $2 RETURNING 1")
        deleteVersioned = PostgresKeyedStatement("DELETE FROM \(quoted) WHERE id = $1 AND version = $2 RETURNING 1")
        // The batch locks the rows it picks and skips rows a writer holds (being saved, so
        // not expired); the outer condition is checked again on the row version it deletes,
        // so a row saved after the pick survives.
        deleteExpired = "WITH gone AS (DELETE FROM \(quoted) WHERE id IN (SELECT id FROM \(quoted) "
            + "WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            + "AND expires_at < $1 RETURNING 1) SELECT count(*) FROM gone"
        leaseAcquire = PostgresKeyedStatement("INSERT INTO \(Self.leaseTable) AS l (name, holder, expires_at) VALUES ($1, $2, $3) "
            + "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
            + "WHERE l.expires_at <= $4 OR l.holder = EXCLUDED.holder RETURNING 1")
        leaseRelease = "UPDATE \(Self.leaseTable) SET expires_at = 0 WHERE name = $1 AND holder = $2"
    }

    /// A page of owner $1's live rows (expiry after $2, version not 0), newest first, at
    /// most $3; with `afterPosition`, only rows after created time $4 and id $5.
    func ownedSessions(afterPosition: Bool) -> String {
        let after = afterPosition ? " AND (created_at, id) < ($4, $5)" : ""
        return "SELECT id, created_at, COALESCE(last_seen, created_at), expires_at, details FROM \"\(table)\" "
            + "WHERE owner = $1 AND expires_at > $2 AND version <> 0\(after) ORDER BY created_at DESC, id DESC LIMIT $3"
    }

    /// A record's bound values for ``insert`` and ``replace``, after its id.
    static func recordValues(_ id: String, _ record: SessionRecord) -> [PostgresValue] {
        [
            .text(id), .bytes(record.data), .int(record.version), .int(record.createdAt), .int(record.expiresAt),
            record.owner.map { .text($0) } ?? .null, record.details.map { .bytes($0) } ?? .null, .int(record.lastSeen),
        ]
    }

    static let createSchemaTable = "CREATE TABLE IF NOT EXISTS \(schemaTable) ("
        + "name text COLLATE \"C\" NOT NULL PRIMARY KEY, version integer NOT NULL, key_layout text NOT NULL)"
    static let createLeaseTable = "CREATE TABLE IF NOT EXISTS \(leaseTable) ("
        + "name text COLLATE \"C\" NOT NULL PRIMARY KEY, holder text COLLATE \"C\" NOT NULL, expires_at bigint NOT NULL)"

    /// The schema statements in the order the backend runs them at open: schema and lease
    /// tables, the session table, its expiry index, its schema row.
    var schemaStatements: [String] {
        [Self.createSchemaTable, Self.createLeaseTable, createTable, createIndex, createOwnerIndex, insertSchemaRow]
    }

    /// Statements that bring a table from `version` to `version + 1`; `nil` when no
    /// migration starts at `version`. Version 1 is the first and current version.
    static func migration(from version: Int) -> [String]? {
        nil
    }
}
#endif
