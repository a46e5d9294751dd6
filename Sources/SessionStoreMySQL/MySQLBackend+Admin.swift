package import Logging
package import SessionStore

extension MySQLBackend: AdminBackend {
    package var engine: String { "mysql" }
}

extension MySQLConfiguration: AdminTarget {
    package var databaseFile: String? { nil }

    package func schemaStatements() throws -> [String] {
        try MySQLBackend.schemaStatements(for: self)
    }

    package func applySchema(logger: Logger) async throws -> (version: Int64, layout: String)? {
        try await MySQLBackend.applySchema(for: self, logger: logger)
    }

    package func openForAdmin(changingNothing: Bool, logger: Logger) async throws -> any AdminBackend {
        try await MySQLBackend(configuration: self, logger: logger)
    }
}

extension MySQLStatements {
    /// The schema statements in the order the backend runs them at open (see
    /// `createSchema`): schema and lease tables, the session table with its expiry index,
    /// its schema row. `session-store schema` prints exactly these.
    var schemaStatements: [String] {
        [Self.createSchemaTable, Self.createLeaseTable, createTable, insertSchemaRow]
    }

    /// Statements that bring a table from `version` to `version + 1`; `nil` when no
    /// migration starts at `version`. Version 1 is the first and current version.
    ///
    /// 1 → 2 adds the owner, details and last-use columns (NULL in every existing row: an
    /// unbound session last used at its creation) and the owner index, in one `ALTER
    /// TABLE` (MariaDB's `IF NOT EXISTS` makes a rerun after a cut-off upgrade harmless).
    static func migration(from version: Int, table: String) -> [String]? {
        switch version {
        case 1:
            let columns = ownerColumns.map { "ADD COLUMN IF NOT EXISTS \($0)" }
            return ["ALTER TABLE `\(table)` " + (columns + ["ADD KEY IF NOT EXISTS owner (owner, created_at, id)"]).joined(separator: ", ")]
        default:
            return nil
        }
    }

    /// Rows after a cursor in key order, at most a limit, live only when `liveOnly`.
    /// Parameters: the cursor (checksum, checksum, id; or id), `now` when `liveOnly`, limit.
    func scan(liveOnly: Bool) -> String {
        let order = layout == .checksumAndID ? "crc32, id" : "id"
        // Expanded rather than a row comparison, so every server uses the key's range.
        let after = layout == .checksumAndID ? "(crc32 > ? OR (crc32 = ? AND id > ?))" : "id > ?"
        let live = liveOnly ? " AND expires_at > ?" : ""
        return "SELECT id, data, version, created_at, expires_at FROM `\(table)` WHERE \(after)\(live) "
            + "ORDER BY \(order) LIMIT ?"
    }

    /// The cursor's bound values for ``scan(liveOnly:)``.
    func cursorValues(_ cursor: SessionKey?) -> [MySQLValue] {
        let checksum = Int64(cursor?.checksum ?? 0)
        let id = cursor?.value ?? ""
        // With no cursor, every row is after (-1, ""): crc32 is unsigned.
        let first = cursor == nil ? Int64(-1) : checksum
        return layout == .checksumAndID ? [.int(first), .int(first), .text(id)] : [.text(id)]
    }
}

extension MySQLBackend {
    /// The statements that create `configuration`'s table, exactly as the backend runs them.
    /// - Throws: `SessionStoreError` `invalidConfiguration` for a bad table name.
    package static func schemaStatements(for configuration: MySQLConfiguration) throws -> [String] {
        let table = try SQLIdentifier.validated(configuration.table)
        return MySQLStatements(
            table: table, layout: configuration.keyLayout, autoIncrement: configuration.autoIncrementPrimaryKey
        ).schemaStatements
    }

    /// Runs ``schemaStatements(for:)`` on one connection. Returns the schema version and
    /// layout already recorded instead, changing nothing, when the table exists. (MySQL
    /// commits each `CREATE TABLE` by itself; every statement is idempotent.)
    /// - Throws: ``StorageError`` (`.schema` when the table exists but the store did not
    ///   create it; `.access`, `.connection` when the server cannot be used).
    package static func applySchema(
        for configuration: MySQLConfiguration, logger: Logger = Logger(label: "SessionStoreMySQL")
    ) async throws -> (version: Int64, layout: String)? {
        let table = try SQLIdentifier.validated(configuration.table)
        let statements = MySQLStatements(
            table: table, layout: configuration.keyLayout, autoIncrement: configuration.autoIncrementPrimaryKey)
        let pool = MySQLPool(configuration: configuration, logger: logger)
        let result = await Result {
            try await pool.run("schema", retry: .again) { (connection, _) -> (version: Int64, layout: String)? in
                if let existing = try schemaRow(connection, table: table) { return existing }
                guard try !tableExists(connection, table) else {
                    throw StorageError(
                        kind: .schema, engine: "mysql", operation: "schema",
                        message: "table \(table) exists but was not created by the session store (no row in \(MySQLStatements.schemaTable))")
                }
                for statement in statements.schemaStatements {
                    try connection.run(statement)
                }
                return nil
            }
        }
        await pool.close()
        return try result.get()
    }

    private static func tableExists(_ connection: MySQLConnection, _ table: String) throws -> Bool {
        try !connection.rows(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '\(table)'"
        ).isEmpty
    }

    /// The recorded schema version and layout of `table`, `nil` when there is none.
    private static func schemaRow(_ connection: MySQLConnection, table: String) throws -> (version: Int64, layout: String)? {
        guard try tableExists(connection, MySQLStatements.schemaTable) else { return nil }
        let sql = "SELECT version, key_layout FROM \(MySQLStatements.schemaTable) WHERE name = '\(table)'"
        guard let row = try connection.rows(sql).first else { return nil }
        guard let versionText = row[0], let version = Int64(versionText), let layout = row[1] else {
            throw StorageError(kind: .corrupt, engine: "mysql", operation: "schema", message: "schema row has NULL columns", statement: sql)
        }
        return (version, layout)
    }

    /// Counts, expiry histogram, sizes, schema row and cleanup lease of the table.
    /// - Throws: ``StorageError``.
    /// The number of live sessions of each owner that has any (version not 0), in no
    /// particular order; empty on a table from before the owner columns.
    /// - Throws: `StorageError`.
    package func liveSessionsPerOwner(now: Int64) async throws -> [Int64] {
        guard statements.hasOwners else { return [] }
        let sql = "SELECT count(*) FROM `\(statements.table)` WHERE owner IS NOT NULL AND expires_at > ? AND version <> 0 GROUP BY owner"
        let rows = try await call("stats", retry: .again) { connection, _ in
            try connection.statement(sql).query([.int(now)], columns: [.int])
        }
        return rows.compactMap { $0[0].int }
    }

    package func tableFigures(now: Int64) async throws -> TableFigures {
        let table = statements.table
        return try await call("stats", retry: .again) { connection, _ in
            var figures = TableFigures()
            let hour: Int64 = 3_600_000
            let bounds = [now, now.addingClamped(hour), now.addingClamped(24 * hour), now.addingClamped(7 * 24 * hour)]
            func between(_ low: Int64, _ high: Int64?) -> String {
                "CAST(COALESCE(SUM(expires_at > \(low)" + (high.map { " AND expires_at <= \($0)" } ?? "") + "), 0) AS SIGNED)"
            }
            let sql = "SELECT COUNT(*), \(between(now, nil)), "
                + "CAST(COALESCE(SUM(expires_at > \(now) AND version = 0), 0) AS SIGNED), "
                + "\(between(bounds[0], bounds[1])), \(between(bounds[1], bounds[2])), "
                + "\(between(bounds[2], bounds[3])), \(between(bounds[3], nil)), "
                + "MIN(created_at), MAX(created_at) FROM `\(table)`"
            guard let row = try connection.rows(sql).first else { return figures }
            func number(_ index: Int) throws -> Int64 {
                guard let text = row[index], let value = Int64(text) else {
                    throw StorageError(kind: .other, engine: "mysql", operation: "stats", message: "unexpected NULL count", statement: sql)
                }
                return value
            }
            figures.rows = try number(0)
            figures.live = try number(1)
            figures.retired = try number(2)
            figures.expiring = try (3...6).map(number)
            figures.oldestCreated = row[7].flatMap { Int64($0) }
            figures.newestCreated = row[8].flatMap { Int64($0) }
            let sizes = try connection.rows(
                "SELECT data_length, index_length FROM information_schema.tables "
                    + "WHERE table_schema = DATABASE() AND table_name = '\(table)'")
            if let size = sizes.first {
                figures.tableBytes = size[0].flatMap { Int64($0) }
                figures.indexBytes = size[1].flatMap { Int64($0) }
            }
            if let schema = try Self.schemaRow(connection, table: table) {
                figures.schemaVersion = schema.version
                figures.keyLayout = schema.layout
            }
            let lease = try connection.rows(
                "SELECT holder, expires_at FROM \(MySQLStatements.leaseTable) WHERE name = '\(table)'")
            if let lease = lease.first, let holder = lease[0], let until = lease[1].flatMap({ Int64($0) }) {
                figures.leaseHolder = holder
                figures.leaseExpiresAt = until
            }
            return figures
        }
    }

    /// `CHECK TABLE`: `["ok"]` when the server finds nothing, otherwise its messages.
    /// - Throws: ``StorageError``.
    package func integrityCheck() async throws -> [String] {
        let table = statements.table
        return try await call("check", retry: .again) { connection, _ in
            // Columns: Table, Op, Msg_type, Msg_text.
            let rows = try connection.rows("CHECK TABLE `\(table)`")
            let problems = rows.filter { row in
                !(row.count > 3 && row[2]?.lowercased() == "status" && row[3]?.lowercased() == "ok")
            }
            return problems.isEmpty ? ["ok"] : problems.map { row in row.compactMap { $0 }.joined(separator: " ") }
        }
    }

    /// The recorded schema version and key layout of the table.
    /// - Throws: ``StorageError``.
    package func recordedSchema() async throws -> (version: Int64, layout: String)? {
        let table = statements.table
        return try await call("schema", retry: .again) { connection, _ in
            try Self.schemaRow(connection, table: table)
        }
    }

    /// Up to `limit` rows after `cursor` in key order (from the start when `nil`), only
    /// those live at `liveAt` when given; one short query per page.
    /// - Throws: ``StorageError``.
    package func storedRows(after cursor: SessionKey?, limit: Int, liveAt: Int64?) async throws -> [StoredRow] {
        let statements = statements
        let sql = statements.scan(liveOnly: liveAt != nil)
        let parameters = statements.cursorValues(cursor) + (liveAt.map { [MySQLValue.int($0)] } ?? []) + [.int(Int64(limit))]
        return try await call("scan", retry: .again) { connection, _ in
            let rows = try connection.statement(sql).query(parameters, columns: [.bytes, .bytes, .int, .int, .int])
            return rows.map { row -> StoredRow in
                let key = SessionKey(value: String(decoding: row[0].bytes ?? [], as: UTF8.self))
                guard let data = row[1].bytes, let version = row[2].int, let createdAt = row[3].int,
                      let expiresAt = row[4].int else {
                    return (key, .failure(StorageError(
                        kind: .corrupt, engine: "mysql", operation: "scan", message: "row has NULL columns", statement: sql)))
                }
                return (key, .success(SessionRecord(data: data, version: version, createdAt: createdAt, expiresAt: expiresAt)))
            }
        }
    }

    /// Always `0`: the id column is `VARBINARY NOT NULL`, so every row can be keyed.
    package func unkeyedRowCount() async throws -> Int64 {
        0
    }

    /// Writes copied rows with their versions and times, in one transaction: a row the
    /// table lacks is inserted; one it has (read under its row lock) is overwritten only
    /// when `replaceIf(stored, copy)` says so. Returns how many rows were written. Not
    /// retried after a lost connection; running the copy again finishes it.
    /// - Throws: ``StorageError``; nothing of the batch is written then.
    package func importRows(
        _ rows: [(key: SessionKey, record: SessionRecord)],
        replaceIf: @escaping @Sendable (_ stored: SessionRecord, _ copy: SessionRecord) -> Bool
    ) async throws -> Int {
        let statements = statements
        return try await call("import", retry: .never) { connection, _ in
            try connection.transaction {
                var written = 0
                for (key, record) in rows {
                    let keyValues = statements.keyValues(key)
                    let values = statements.recordValues(record)
                    if let stored = try Self.row(connection, statements, statements.lock, keyValues, operation: "import") {
                        guard replaceIf(stored, record) else { continue }
                        _ = try connection.statement(statements.replace).execute(values + keyValues)
                    } else {
                        _ = try connection.statement(statements.insert).execute(keyValues + values)
                    }
                    written += 1
                }
                return written
            }
        }
    }

    /// Rows with `expires_at < before`, which a cleanup at that cut-off deletes.
    /// - Throws: ``StorageError``.
    package func countExpired(before: Int64) async throws -> Int64 {
        let table = statements.table
        return try await call("count", retry: .again) { connection, _ in
            let sql = "SELECT COUNT(*) FROM `\(table)` WHERE expires_at < \(before)"
            guard let text = try connection.rows(sql).first?[0], let count = Int64(text) else {
                throw StorageError(kind: .other, engine: "mysql", operation: "count", message: "no count returned", statement: sql)
            }
            return count
        }
    }

    /// The statements ``upgradeSchema()`` would run: migrations from the recorded version
    /// to the current one, each followed by its version bump.
    /// - Throws: ``StorageError`` `.schema` when the table has no schema row, is newer than
    ///   this release, or no migration leads from its version.
    package func pendingMigrations() async throws -> (from: Int64, to: Int64, statements: [String]) {
        guard let recorded = try await recordedSchema() else {
            throw StorageError(
                kind: .schema, engine: "mysql", operation: "upgrade",
                message: "table \(statements.table) has no row in \(MySQLStatements.schemaTable)")
        }
        return try Self.migrationPlan(from: recorded.version, table: statements.table)
    }

    private static func migrationPlan(from start: Int64, table: String) throws -> (from: Int64, to: Int64, statements: [String]) {
        let plan = try MigrationPlan(
            from: start, to: Int64(MySQLStatements.schemaVersion), table: table, schemaTable: MySQLStatements.schemaTable,
            engine: "mysql", migration: { MySQLStatements.migration(from: $0, table: table) })
        return (plan.from, plan.to, plan.statements)
    }

    /// Applies ``pendingMigrations()`` on one connection after re-reading the version.
    /// MySQL commits DDL statements one by one, so each step's version bump follows its
    /// statements; a step cut off half-way is finished by running the upgrade again, which
    /// is why every migration statement must be idempotent. Returns the versions before
    /// and after; equal when there was nothing to do.
    /// - Throws: ``StorageError``.
    package func upgradeSchema() async throws -> (from: Int64, to: Int64) {
        let table = statements.table
        return try await call("upgrade", retry: .never) { connection, _ in
            guard let recorded = try Self.schemaRow(connection, table: table) else {
                throw StorageError(
                    kind: .schema, engine: "mysql", operation: "upgrade",
                    message: "table \(table) has no row in \(MySQLStatements.schemaTable)")
            }
            let plan = try Self.migrationPlan(from: recorded.version, table: table)
            for statement in plan.statements {
                try connection.run(statement)
            }
            return (plan.from, plan.to)
        }
    }
}

extension Int64 {
    /// `self + other`, saturating at `Int64.max`.
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body.
    fileprivate init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
