import CSessionStoreSQLite
import Foundation
package import Logging
package import SessionStore

extension SQLiteQueries {
    /// The schema statements in the order the backend runs them on a fresh database
    /// (see `createOrCheckSchema`): the schema and lease tables, the session table and its
    /// schema row (no index on `expires_at`: cleanup walks the key, see
    /// `SQLiteBackend.deleteExpired`). `session-store schema` prints exactly these.
    var schemaStatements: [String] {
        [Self.createSchemaTable, SQLiteBackend.createLeaseTable, createTable] + (hasOwners ? [createOwnerIndex] : [])
            + [insertSchemaRow]
    }

    /// Statements that bring this table from `version` to `version + 1`; `nil` when no
    /// migration starts at `version`.
    ///
    /// 1 → 2 rebuilds the table as a slotted one (``SQLiteTableForm/slotted``) with every
    /// row, in one transaction; it calls ``SQLiteSlot/functionName``, which only the
    /// store's own connections have (`session-store upgrade` runs it). Two keys that share
    /// a slot fail it on the primary key, changing nothing.
    ///
    /// 2 → 3 adds the owner, details and last-use columns (NULL in every existing row: an
    /// unbound session last used at its creation) and the partial owner index.
    func migration(from version: Int64) -> [String]? {
        switch version {
        case 1:
            // This table's statements are version 1's, whose key columns are the layout's own.
            let slotted = SQLiteQueries(table: "\(table)_slotted", layout: layout, version: 2)
            let columns = "\(keyColumns), data, version, created_at, expires_at"
            return [
                slotted.createTable,
                "INSERT INTO \(slotted.table) (slot, \(columns)) SELECT \(SQLiteSlot.functionName)(id), \(columns) FROM \(table)",
                "DROP TABLE \(table)",
                "ALTER TABLE \(slotted.table) RENAME TO \(table)",
            ]
        case 2:
            let withOwners = SQLiteQueries(table: table, layout: layout, version: Self.ownersVersion)
            return [
                "ALTER TABLE \(table) ADD COLUMN owner TEXT",
                "ALTER TABLE \(table) ADD COLUMN details BLOB",
                "ALTER TABLE \(table) ADD COLUMN last_seen INTEGER",
                withOwners.createOwnerIndex,
            ]
        default:
            return nil
        }
    }

    /// Every column of a row whatever its expiry: the key as in every statement.
    var readRow: String {
        "SELECT data, version, created_at, expires_at FROM \(table) WHERE \(keyCondition)"
    }

    /// Overwrites every column of an existing row: `?3` data, `?4` version, `?5` created,
    /// `?6` expires.
    var replaceRow: String {
        "UPDATE \(table) SET data = ?3, version = ?4, created_at = ?5, expires_at = ?6 WHERE \(keyCondition)"
    }

    /// Rows in key order, at most `?3`, live at `?4` only when `liveOnly`: after the cursor
    /// `(?1, ?2)` (a slotted table: after the slot `?7`, from the start when `fromStart`).
    /// A slotted table leaves out rows whose slot is not their id's (written from outside
    /// the store, which no key can reach), so the cursor always moves on.
    func scan(liveOnly: Bool, fromStart: Bool) -> String {
        let live = liveOnly ? " AND expires_at > ?4" : ""
        switch form {
        case .clustered:
            let after = layout == .checksumAndID ? "(crc32, id) > (?1, ?2)" : "id > ?2"
            return """
                SELECT id, data, version, created_at, expires_at FROM \(table) \
                WHERE \(after) AND typeof(id) = 'text'\(live) ORDER BY \(keyColumns) LIMIT ?3
                """
        case .slotted:
            let after = fromStart ? "" : "slot > ?7 AND "
            return """
                SELECT id, data, version, created_at, expires_at FROM \(table) \
                WHERE \(after)typeof(id) = 'text' AND slot = \(SQLiteSlot.functionName)(id)\(live) ORDER BY slot LIMIT ?3
                """
        }
    }

    /// Counts the rows ``scan(liveOnly:fromStart:)`` leaves out: an id that is not text, or
    /// (slotted) a slot that is not the id's.
    var unkeyedRows: String {
        switch form {
        case .clustered:
            "SELECT count(*) FROM \(table) WHERE typeof(id) <> 'text'"
        case .slotted:
            "SELECT count(*) FROM \(table) WHERE typeof(id) <> 'text' OR slot IS NOT \(SQLiteSlot.functionName)(id)"
        }
    }
}

/// How a table's statements take a key: `?1` the checksum (only the checksum layout
/// computes it), `?2` the id, `?7` the slot (slotted tables). Two flags, so a load's
/// closure captures them rather than every statement's text.
struct SQLiteKeyBinding: Sendable {
    let checksum: Bool
    let slotted: Bool

    func bind(_ key: SessionKey, to statement: SQLiteStatement, operation: String) throws(StorageError) {
        if checksum { try statement.bind(1, Int64(key.checksum), operation: operation) }
        try statement.bind(2, text: key.value, operation: operation)
        if slotted { try statement.bind(SQLiteQueries.slotParameter, SQLiteSlot.of(key), operation: operation) }
    }
}

extension SQLiteBackend: AdminBackend {
    package var engine: String { "sqlite" }
}

extension SQLiteConfiguration: AdminTarget {
    package var databaseFile: String? { isMemory ? nil : path }

    package func schemaStatements() throws -> [String] {
        try SQLiteBackend.schemaStatements(for: self)
    }

    package func applySchema(logger: Logger) async throws -> (version: Int64, layout: String)? {
        try SQLiteBackend.applySchema(for: self)
    }

    /// Opens the file with one reader: an operator command reads one query at a time.
    package func openForAdmin(changingNothing: Bool, logger: Logger) async throws -> any AdminBackend {
        var configuration = self
        configuration.readerCount = 1
        configuration.dropsExpiryIndex = !changingNothing
        return try SQLiteBackend(configuration: configuration, logger: logger)
    }
}

extension SQLiteBackend {
    /// The statements that create `configuration`'s table, exactly as the backend runs them.
    /// - Throws: `SessionStoreError` `invalidConfiguration` for a bad table name.
    package static func schemaStatements(for configuration: SQLiteConfiguration) throws -> [String] {
        let table = try SQLIdentifier.validated(configuration.table)
        return SQLiteQueries(table: table, layout: configuration.keyLayout).schemaStatements
    }

    /// Runs ``schemaStatements(for:)`` in one transaction, creating the database file when
    /// missing. Returns the schema version and layout already recorded instead, changing
    /// nothing, when the table exists.
    /// - Throws: ``StorageError`` (`.schema` when the table exists but the store did not
    ///   create it).
    package static func applySchema(for configuration: SQLiteConfiguration) throws -> (version: Int64, layout: String)? {
        let table = try SQLIdentifier.validated(configuration.table)
        let queries = SQLiteQueries(table: table, layout: configuration.keyLayout)
        let connection = try SQLiteConnection(
            path: configuration.path, uri: false, busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds)
        defer { connection.close() }
        return try connection.immediateTransaction(operation: "schema") { () throws(StorageError) -> (version: Int64, layout: String)? in
            if let existing = try schemaRow(connection, table: table) { return existing }
            let found = try connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '\(table)'", operation: "schema")
            guard found == nil else {
                throw StorageError(
                    kind: .schema, engine: "sqlite", operation: "schema",
                    message: "table \(table) exists but was not created by the session store (no row in \(SQLiteQueries.schemaTable))")
            }
            for statement in queries.schemaStatements {
                try connection.execute(statement, operation: "schema")
            }
            return nil
        }
    }

    /// The recorded schema version and key layout of `table`, or `nil` when there is none.
    private static func schemaRow(_ connection: SQLiteConnection, table: String) throws(StorageError) -> (version: Int64, layout: String)? {
        let known = try connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '\(SQLiteQueries.schemaTable)'", operation: "schema")
        guard known != nil else { return nil }
        let statement = try SQLiteStatement(
            database: connection.database,
            sql: "SELECT version, key_layout FROM \(SQLiteQueries.schemaTable) WHERE table_name = ?1",
            persistent: false, operation: "schema")
        defer { statement.finalize() }
        try statement.bind(1, text: table, operation: "schema")
        guard try statement.step(operation: "schema") else { return nil }
        return (try statement.int64(0, operation: "schema"), try statement.text(1, operation: "schema"))
    }

    /// Counts, expiry histogram, sizes, schema row and cleanup lease of the table, read on
    /// the writer's thread (full-table aggregates must not occupy the cooperative pool).
    /// - Throws: ``StorageError``.
    package func tableFigures(now: Int64) async throws -> TableFigures {
        let queries = queries
        let path = configuration.isMemory ? nil : configuration.path
        var figures = try await adminRead("stats") { connection throws(StorageError) in
            var figures = TableFigures()
            let hour: Int64 = 3_600_000
            let counts = try SQLiteStatement(
                database: connection.database,
                sql: """
                    SELECT count(*), count(*) FILTER (WHERE expires_at > ?1), \
                    count(*) FILTER (WHERE expires_at > ?1 AND version = 0), \
                    count(*) FILTER (WHERE expires_at > ?1 AND expires_at <= ?2), \
                    count(*) FILTER (WHERE expires_at > ?2 AND expires_at <= ?3), \
                    count(*) FILTER (WHERE expires_at > ?3 AND expires_at <= ?4), \
                    count(*) FILTER (WHERE expires_at > ?4), \
                    min(created_at), max(created_at) FROM \(queries.table)
                    """,
                persistent: false, operation: "stats")
            defer { counts.finalize() }
            try counts.bind(1, now, operation: "stats")
            try counts.bind(2, now.addingClamped(hour), operation: "stats")
            try counts.bind(3, now.addingClamped(24 * hour), operation: "stats")
            try counts.bind(4, now.addingClamped(7 * 24 * hour), operation: "stats")
            guard try counts.step(operation: "stats") else { return figures }
            figures.rows = try counts.int64(0, operation: "stats")
            figures.live = try counts.int64(1, operation: "stats")
            figures.retired = try counts.int64(2, operation: "stats")
            figures.expiring = try (Int32(3)...6).map { column throws(StorageError) in
                try counts.int64(column, operation: "stats")
            }
            if counts.columnType(7) == SQLITE_INTEGER {
                figures.oldestCreated = try counts.int64(7, operation: "stats")
                figures.newestCreated = try counts.int64(8, operation: "stats")
            }
            if let schema = try Self.schemaRow(connection, table: queries.table) {
                figures.schemaVersion = schema.version
                figures.keyLayout = schema.layout
            }
            let lease = try SQLiteStatement(
                database: connection.database,
                sql: "SELECT holder, expires_at FROM \(Self.leaseTable) WHERE table_name = ?1",
                persistent: false, operation: "stats")
            defer { lease.finalize() }
            try lease.bind(1, text: queries.table, operation: "stats")
            if try lease.step(operation: "stats") {
                figures.leaseHolder = try lease.text(0, operation: "stats")
                figures.leaseExpiresAt = try lease.int64(1, operation: "stats")
            }
            let pages = Int64(try connection.execute("PRAGMA page_count", operation: "stats") ?? "0") ?? 0
            let pageSize = Int64(try connection.execute("PRAGMA page_size", operation: "stats") ?? "0") ?? 0
            figures.fileBytes = pages * pageSize
            // dbstat is an optional part of SQLite: without it only the file size is known.
            let hasDBStat = try connection.execute(
                "SELECT 1 FROM pragma_module_list WHERE name = 'dbstat'", operation: "stats") != nil
            if hasDBStat {
                let sizes = try SQLiteStatement(
                    database: connection.database,
                    sql: "SELECT name, sum(pgsize) FROM dbstat WHERE name IN (?1, ?2) GROUP BY name",
                    persistent: false, operation: "stats")
                defer { sizes.finalize() }
                try sizes.bind(1, text: queries.table, operation: "stats")
                try sizes.bind(2, text: SQLiteQueries.expiryIndex(of: queries.table), operation: "stats")
                figures.tableBytes = 0
                figures.indexBytes = 0
                while try sizes.step(operation: "stats") {
                    let bytes = try sizes.int64(1, operation: "stats")
                    if try sizes.text(0, operation: "stats") == queries.table {
                        figures.tableBytes = bytes
                    } else {
                        figures.indexBytes = bytes
                    }
                }
            }
            return figures
        }
        figures.walBytes = try path.map { try Self.fileSize($0 + "-wal") } ?? 0
        return figures
    }

    /// The size of a file, `0` when it does not exist.
    private static func fileSize(_ path: String) throws -> Int64 {
        guard FileManager.default.fileExists(atPath: path) else { return 0 }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// `PRAGMA integrity_check`: `["ok"]` for a sound file, otherwise SQLite's findings
    /// (at most 100).
    /// - Throws: ``StorageError``.
    package func integrityCheck() async throws -> [String] {
        try await adminRead("check") { connection throws(StorageError) in
            let statement = try SQLiteStatement(
                database: connection.database, sql: "PRAGMA integrity_check(100)", persistent: false, operation: "check")
            defer { statement.finalize() }
            var messages: [String] = []
            while try statement.step(operation: "check") {
                messages.append(statement.anyText(0) ?? "")
            }
            return messages
        }
    }

    /// The recorded schema version and key layout of the table.
    /// - Throws: ``StorageError``.
    package func recordedSchema() async throws -> (version: Int64, layout: String)? {
        let table = queries.table
        return try await adminRead("schema") { connection throws(StorageError) in
            try Self.schemaRow(connection, table: table)
        }
    }

    /// Up to `limit` rows after `cursor` in key order (from the start when `nil`), only
    /// those live at `liveAt` when given. Each page is its own short read, so a copy or
    /// check of a live database never holds a snapshot for long. Rows whose id is not text
    /// cannot be keyed and are left out (`check` counts them separately).
    /// - Throws: ``StorageError``.
    package func storedRows(after cursor: SessionKey?, limit: Int, liveAt: Int64?) async throws -> [StoredRow] {
        let queries = queries
        let sql = queries.scan(liveOnly: liveAt != nil, fromStart: cursor == nil)
        return try await adminRead("scan") { connection throws(StorageError) in
            let statement = try connection.statement(sql, operation: "scan")
            defer { statement.reset() }
            if let cursor {
                try queries.keyBinding.bind(cursor, to: statement, operation: "scan")
            } else if queries.form == .clustered {
                try queries.keyBinding.bind(SessionKey(value: ""), to: statement, operation: "scan")  // before every key
            }
            try statement.bind(3, Int64(limit), operation: "scan")
            if let liveAt { try statement.bind(4, liveAt, operation: "scan") }
            var rows: [StoredRow] = []
            while try statement.step(operation: "scan") {
                let key = SessionKey(value: try statement.text(0, operation: "scan"))
                let record = Result { () throws(StorageError) -> SessionRecord in
                    SessionRecord(
                        data: try statement.blob(1, operation: "scan"),
                        version: try statement.int64(2, operation: "scan"),
                        createdAt: try statement.int64(3, operation: "scan"),
                        expiresAt: try statement.int64(4, operation: "scan"))
                }
                rows.append((key, record))
            }
            return rows
        }
    }

    /// Rows of the table whose id column does not hold text (only ever written from outside
    /// the store), which ``storedRows(after:limit:liveAt:)`` cannot key.
    /// - Throws: ``StorageError``.
    package func unkeyedRowCount() async throws -> Int64 {
        let sql = queries.unkeyedRows
        return try await adminRead("check") { connection throws(StorageError) in
            Int64(try connection.execute(sql, operation: "check") ?? "0") ?? 0
        }
    }

    /// Writes copied rows with their versions and times, in one transaction: a row the
    /// table lacks is inserted; one it has is overwritten only when `replaceIf(stored, copy)`
    /// says so (the copy's policy, decided by the caller). Returns how many rows were written.
    /// - Throws: ``StorageError``; nothing of the batch is written then.
    package func importRows(
        _ rows: [(key: SessionKey, record: SessionRecord)],
        replaceIf: @escaping @Sendable (_ stored: SessionRecord, _ copy: SessionRecord) -> Bool
    ) async throws -> Int {
        let queries = queries
        let outcome = try await writer.submit(.alone, operation: "import", multiStatement: true) { connection in
            let read = try connection.statement(queries.readRow, operation: "import")
            let insert = try connection.statement(queries.insert, operation: "import")
            let replace = try connection.statement(queries.replaceRow, operation: "import")
            var written = 0
            for (key, record) in rows {
                try queries.keyBinding.bind(key, to: read, operation: "import")
                var stored: SessionRecord?
                do {
                    defer { read.reset() }
                    if try read.step(operation: "import") {
                        stored = SessionRecord(
                            data: try read.blob(0, operation: "import"), version: try read.int64(1, operation: "import"),
                            createdAt: try read.int64(2, operation: "import"), expiresAt: try read.int64(3, operation: "import"))
                    }
                }
                let statement: SQLiteStatement
                if let stored {
                    guard replaceIf(stored, record) else { continue }
                    statement = replace
                } else {
                    statement = insert
                }
                defer { statement.reset() }
                try queries.keyBinding.bind(key, to: statement, operation: "import")
                try statement.bind(3, blob: record.data, operation: "import")
                try statement.bind(4, record.version, operation: "import")
                try statement.bind(5, record.createdAt, operation: "import")
                try statement.bind(6, record.expiresAt, operation: "import")
                try statement.run(operation: "import")
                guard connection.changes == 1 else {
                    // Only a live row of another key in the slot stops an insert of a key the
                    // table lacks; the whole batch is rolled back rather than lose the row.
                    throw StorageError(
                        kind: .other, engine: "sqlite", operation: "import",
                        message: "the row of another id holds the slot of a copied id; nothing of the batch was written",
                        statement: queries.insert)
                }
                written += 1
            }
            return .changes(written)
        }
        guard case .changes(let written) = outcome else { preconditionFailure("import produced no count") }
        return written
    }

    /// The number of live sessions of each owner that has any (version not 0), in no
    /// particular order; empty on a table from before the owner columns.
    /// - Throws: ``StorageError``.
    package func liveSessionsPerOwner(now: Int64) async throws -> [Int64] {
        guard queries.hasOwners else { return [] }
        let table = queries.table
        return try await adminRead("stats") { connection throws(StorageError) in
            let statement = try SQLiteStatement(
                database: connection.database,
                sql: "SELECT count(*) FROM \(table) WHERE owner IS NOT NULL AND expires_at > ?1 AND version <> 0 GROUP BY owner",
                persistent: false, operation: "stats")
            defer { statement.finalize() }
            try statement.bind(1, now, operation: "stats")
            var counts: [Int64] = []
            while try statement.step(operation: "stats") { counts.append(try statement.int64(0, operation: "stats")) }
            return counts
        }
    }

    /// Rows with `expires_at < before`, which a cleanup at that cut-off deletes.
    /// - Throws: ``StorageError``.
    package func countExpired(before: Int64) async throws -> Int64 {
        let table = queries.table
        return try await adminRead("count") { connection throws(StorageError) in
            let statement = try SQLiteStatement(
                database: connection.database, sql: "SELECT count(*) FROM \(table) WHERE expires_at < ?1",
                persistent: false, operation: "count")
            defer { statement.finalize() }
            try statement.bind(1, before, operation: "count")
            guard try statement.step(operation: "count") else { return 0 }
            return try statement.int64(0, operation: "count")
        }
    }

    /// The statements ``upgradeSchema()`` would run: the migrations from the recorded
    /// version to ``SQLiteQueries/schemaVersion``, each followed by its version bump.
    /// - Throws: ``StorageError`` `.schema` when the table has no schema row, is newer than
    ///   this release, or no migration leads from its version.
    /// Also lists the drop of the expiry index releases before the key-order cleanup
    /// created, when the table still has it (an open with ``SQLiteConfiguration/dropsExpiryIndex``
    /// off); any other open already dropped it.
    package func pendingMigrations() async throws -> (from: Int64, to: Int64, statements: [String]) {
        guard let recorded = try await recordedSchema() else {
            throw StorageError(
                kind: .schema, engine: "sqlite", operation: "upgrade",
                message: "table \(queries.table) has no row in \(SQLiteQueries.schemaTable)")
        }
        var plan = try Self.migrationPlan(from: recorded.version, queries: queries)
        let index = SQLiteQueries.expiryIndex(of: queries.table)
        let hasIndex = try await adminRead("schema") { connection throws(StorageError) in
            try connection.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name = '\(index)'", operation: "schema") != nil
        }
        if hasIndex { plan.statements.append(queries.dropExpiryIndex) }
        return plan
    }

    private static func migrationPlan(from start: Int64, queries: SQLiteQueries) throws(StorageError) -> (from: Int64, to: Int64, statements: [String]) {
        let table = queries.table
        guard start <= SQLiteQueries.schemaVersion else {
            throw StorageError(
                kind: .schema, engine: "sqlite", operation: "upgrade",
                message: "table \(table) has schema version \(start), newer than version \(SQLiteQueries.schemaVersion) this release knows")
        }
        var statements: [String] = []
        var version = start
        while version < SQLiteQueries.schemaVersion {
            guard let steps = queries.migration(from: version) else {
                throw StorageError(
                    kind: .schema, engine: "sqlite", operation: "upgrade",
                    message: "no migration from schema version \(version) of table \(table)")
            }
            statements += steps
            version += 1
            statements.append(
                "UPDATE \(SQLiteQueries.schemaTable) SET version = \(version) WHERE table_name = '\(table)'")
        }
        return (start, SQLiteQueries.schemaVersion, statements)
    }

    /// Applies ``pendingMigrations()`` in one transaction that first re-reads the version,
    /// so two upgrades at once cannot both apply a step. Returns the versions before and
    /// after; equal when there was nothing to do.
    /// - Throws: ``StorageError``.
    ///
    /// An upgrade that changes the table's form (version 1 → 2) is refused while another
    /// backend has the database open, whose statements are for the old form; the backend
    /// that ran it then fails every operation with `.schema` until reopened.
    package func upgradeSchema() async throws -> (from: Int64, to: Int64) {
        let queries = queries
        let table = queries.table
        let dropIndex = queries.dropExpiryIndex
        // A rebuild, or the owner columns, which the statements of a backend already open
        // would not fill (an expired bound row replaced by its insert would keep its owner).
        let rebuilds = queries.form != SQLiteTableForm(version: SQLiteQueries.schemaVersion) || !queries.hasOwners
        let readers = readers
        let path = configuration.path
        let box = SQLiteResultBox<(from: Int64, to: Int64)>()
        _ = try await writer.submit(.alone, operation: "upgrade", multiStatement: true) { connection in
            // Inside the write transaction: a backend that opens after this check reads the
            // schema once the upgrade committed (it announces itself before it reads it).
            if rebuilds, readers?.isSharedWithAnotherBackend == true {
                throw StorageError(
                    kind: .busy, engine: "sqlite", operation: "upgrade",
                    message: "another session store has \(path) open; stop it before upgrading table \(table) to version \(SQLiteQueries.schemaVersion), which rebuilds it or adds columns its statements do not fill")
            }
            guard let recorded = try Self.schemaRow(connection, table: table) else {
                throw StorageError(
                    kind: .schema, engine: "sqlite", operation: "upgrade",
                    message: "table \(table) has no row in \(SQLiteQueries.schemaTable)")
            }
            let plan = try Self.migrationPlan(from: recorded.version, queries: queries)
            try connection.execute(dropIndex, operation: "upgrade")
            for statement in plan.statements {
                try connection.execute(statement, operation: "upgrade")
            }
            box.value = (plan.from, plan.to)
            return .changes(plan.statements.count)
        }
        guard let result = box.value else { preconditionFailure("upgrade ran without a result") }
        if SQLiteTableForm(version: result.to) != queries.form || (result.to >= SQLiteQueries.ownersVersion) != queries.hasOwners {
            formChanged.store(true, ordering: .releasing)
        }
        return result
    }

    /// Runs `body` once on a connection outside any write: the writer's thread, so
    /// long reads stay off Swift's cooperative pool and see every committed write.
    private func adminRead<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (SQLiteConnection) throws(StorageError) -> T
    ) async throws -> T {
        let box = SQLiteResultBox<T>()
        _ = try await writer.submit(.read, operation: operation) { connection in
            box.value = try body(connection)
            return .changes(0)
        }
        guard let value = box.value else { preconditionFailure("\(operation) ran without a result") }
        return value
    }
}

extension Int64 {
    /// `self + other`, saturating at `Int64.max`.
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
