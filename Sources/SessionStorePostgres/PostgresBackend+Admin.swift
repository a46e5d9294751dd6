#if Postgres
package import Logging
import PostgresNIO
package import SessionStoreCore

extension PostgresBackend: AdminBackend {
    package var engine: String { "postgres" }
}

extension PostgresConfiguration: AdminTarget {
    /// PostgreSQL tables are keyed by the id alone.
    package var keyLayout: KeyLayout { .idOnly }

    package var databaseFile: String? { nil }

    package func schemaStatements() throws -> [String] {
        try PostgresBackend.schemaStatements(for: self)
    }

    package func applySchema(logger: Logger) async throws -> (version: Int64, layout: String)? {
        try await PostgresBackend.applySchema(for: self, logger: logger)
    }

    package func openForAdmin(changingNothing: Bool, logger: Logger) async throws -> any AdminBackend {
        try await PostgresBackend(configuration: self, logger: logger)
    }
}

extension PostgresBackend {
    /// The statements that create `configuration`'s table, exactly as the backend runs them.
    /// - Throws: `SessionStoreError` `invalidConfiguration` for a bad table name.
    package static func schemaStatements(for configuration: PostgresConfiguration) throws -> [String] {
        PostgresStatements(table: try SQLIdentifier.validated(configuration.table)).schemaStatements
    }

    /// Runs ``schemaStatements(for:)`` in one transaction, under the table's advisory lock. Returns the schema version and
    /// layout already recorded instead, changing nothing, when the table exists.
    /// - Throws: `StorageError` (`.schema` when the table exists but the store did not
    ///   create it; `.access`, `.connection` when the server cannot be used).
    package static func applySchema(
        for configuration: PostgresConfiguration, logger: Logger = Logger(label: "SessionStorePostgres")
    ) async throws -> (version: Int64, layout: String)? {
        let statements = PostgresStatements(table: try SQLIdentifier.validated(configuration.table))
        do {
            let hosts = try PostgresHostSet(configuration, logger: logger)
            let connection = try await $queryTimeout.withValue(configuration.effectiveQueryTimeout) { try await hosts.connect(id: 0) }
            let result = await settle { try await $queryTimeout.withValue(configuration.effectiveQueryTimeout) {
                try await retryingConcurrentCreation { try await transaction(connection) { () -> (version: Int64, layout: String)? in
                    _ = try await rows(connection, "SELECT pg_advisory_xact_lock($1)", [.int(statements.tableLockKey)])
                    if let existing = try await schemaRow(connection, table: statements.table) { return existing }
                    if try await tableExists(connection, statements.table) {
                        throw StorageError(
                            kind: .schema, engine: "postgres", operation: "schema",
                            message: "table \(statements.table) exists but was not created by the session store "
                                + "(no row in \(PostgresStatements.schemaTable))")
                    }
                    try await createTables(connection, statements)
                    return nil
                } }
            } }
            do {
                try await connection.close()
            } catch {
                logger.debug("closing the PostgreSQL schema connection failed", metadata: ["error": "\(error)"])
            }
            return try result.get()
        } catch {
            throw classified(error, operation: "schema", statement: nil)
        }
    }

    /// Counts, expiry histogram, sizes, schema row and cleanup lease of the table.
    /// - Throws: `StorageError`.
    /// The number of live sessions of each owner that has any (version not 0), in no
    /// particular order.
    /// - Throws: `StorageError`.
    package func liveSessionsPerOwner(now: Int64) async throws -> [Int64] {
        let sql = "SELECT count(*) FROM \"\(statements.table)\" WHERE owner IS NOT NULL AND expires_at > $1 AND version <> 0 GROUP BY owner"
        let rows = try await call("stats", retry: .read) { connection, _ in
            try await Self.rows(connection, sql, [.int(now)])
        }
        return try rows.map { try $0.decode(Int64.self) }
    }

    package func tableFigures(now: Int64) async throws -> TableFigures {
        let table = statements.table
        return try await call("stats", retry: .read) { connection, _ in
            var figures = TableFigures()
            let hour: Int64 = 3_600_000
            let (day, week) = (24 * hour, 7 * 24 * hour)
            let sql = "SELECT count(*), count(*) FILTER (WHERE expires_at > $1), "
                + "count(*) FILTER (WHERE expires_at > $1 AND version = 0), "
                + "count(*) FILTER (WHERE expires_at > $1 AND expires_at <= $1 + $2), "
                + "count(*) FILTER (WHERE expires_at > $1 + $2 AND expires_at <= $1 + $3), "
                + "count(*) FILTER (WHERE expires_at > $1 + $3 AND expires_at <= $1 + $4), "
                + "count(*) FILTER (WHERE expires_at > $1 + $4), min(created_at), max(created_at), "
                + "pg_table_size($5::regclass), pg_indexes_size($5::regclass) FROM \"\(table)\""
            // `now` is an app's clock; the sums stay far from overflow for any real date.
            let values: [PostgresValue] = [.int(now), .int(hour), .int(day), .int(week), .text("\"\(table)\"")]
            if let row = try await Self.rows(connection, sql, values).first {
                do {
                    let columns = try row.decode((Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64?, Int64?, Int64, Int64).self)
                    figures.rows = columns.0
                    figures.live = columns.1
                    figures.retired = columns.2
                    figures.expiring = [columns.3, columns.4, columns.5, columns.6]
                    figures.oldestCreated = columns.7
                    figures.newestCreated = columns.8
                    figures.tableBytes = columns.9
                    figures.indexBytes = columns.10
                } catch {
                    throw PostgresStatementError(underlying: error, statement: sql)
                }
            }
            if let schema = try await Self.schemaRow(connection, table: table) {
                figures.schemaVersion = schema.version
                figures.keyLayout = schema.layout
            }
            let leaseSQL = "SELECT holder, expires_at FROM \(PostgresStatements.leaseTable) WHERE name = $1"
            if let lease = try await Self.rows(connection, leaseSQL, [.text(table)]).first {
                do {
                    let (holder, until) = try lease.decode((String, Int64).self)
                    figures.leaseHolder = holder
                    figures.leaseExpiresAt = until
                } catch {
                    throw PostgresStatementError(underlying: error, statement: leaseSQL)
                }
            }
            return figures
        }
    }

    /// Reads every row of the table (so a damaged page or TOAST value surfaces as an
    /// error) and, when the `amcheck` extension is installed, checks both B-tree indexes
    /// with `bt_index_check`. `["ok"]` when nothing is found, otherwise the problems.
    /// - Throws: `StorageError`.
    package func integrityCheck() async throws -> [String] {
        let table = statements.table
        return try await call("check", retry: .read) { connection, _ in
            var problems: [String] = []
            let scan = "SELECT count(*), count(*) FILTER (WHERE version < 0 OR created_at > expires_at AND version > 0), "
                + "coalesce(sum(length(data)), 0)::bigint FROM \"\(table)\""
            if let row = try await Self.rows(connection, scan, []).first {
                let (_, odd, _) = try row.decode((Int64, Int64, Int64).self)
                if odd > 0 { problems.append("\(odd) rows with a negative version or created after they expire") }
            }
            let amcheck = try await Self.rows(connection, "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'", [])
            if !amcheck.isEmpty {
                let indexes = "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = $1::regclass"
                for row in try await Self.rows(connection, indexes, [.text("\"\(table)\"")]) {
                    let index = try row.decode(String.self)
                    do {
                        _ = try await Self.rows(connection, "SELECT bt_index_check($1::regclass)", [.text(index)])
                    } catch let error as PostgresStatementError
                        where !(error.underlying is PostgresQueryTimeout || error.underlying is PostgresConnectionClosed) {
                        // A connection timed out or closed fails the whole check instead.
                        let failure = PostgresFailure(error.underlying, operation: "check", statement: error.statement)
                        problems.append("index \(index): \(failure?.error.message ?? "\(error.underlying)")")
                    }
                }
            }
            return problems.isEmpty ? ["ok"] : problems
        }
    }

    /// The recorded schema version and key layout of the table.
    /// - Throws: `StorageError`.
    package func recordedSchema() async throws -> (version: Int64, layout: String)? {
        let table = statements.table
        return try await call("schema", retry: .read) { connection, _ in
            try await Self.schemaRow(connection, table: table)
        }
    }

    /// Up to `limit` rows after `cursor` in key order (from the start when `nil`), only
    /// those live at `liveAt` when given; one short query per page.
    /// - Throws: `StorageError`.
    package func storedRows(after cursor: SessionKey?, limit: Int, liveAt: Int64?) async throws -> [StoredRow] {
        let table = statements.table
        let live = liveAt == nil ? "" : " AND expires_at > $3"
        let sql = "SELECT id, data, version, created_at, expires_at FROM \"\(table)\" WHERE id > $1\(live) ORDER BY id LIMIT $2"
        let values: [PostgresValue] = [.text(cursor?.value ?? ""), .int(Int64(limit))] + (liveAt.map { [.int($0)] } ?? [])
        return try await call("scan", retry: .read) { connection, _ in
            try await Self.rows(connection, sql, values).map { row -> StoredRow in
                do {
                    let (id, data, version, createdAt, expiresAt) = try row.decode((String, ByteBuffer, Int64, Int64, Int64).self)
                    return (SessionKey(value: id), .success(SessionRecord(
                        data: Array(data.readableBytesView), version: version, createdAt: createdAt, expiresAt: expiresAt)))
                } catch {
                    // The key alone, when only the other columns are unreadable.
                    let id: String
                    do {
                        id = try row.makeRandomAccess()[0].decode(String.self, context: .default)
                    } catch {
                        id = ""
                    }
                    return (SessionKey(value: id), .failure(StorageError(
                        kind: .corrupt, engine: "postgres", operation: "scan", message: "row columns could not be read", statement: sql)))
                }
            }
        }
    }

    /// Always `0`: the id column is `text NOT NULL`, so every row can be keyed.
    package func unkeyedRowCount() async throws -> Int64 {
        0
    }

    /// Writes copied rows with their versions and times, in one transaction: a row the
    /// table lacks is inserted; one it has (read under its row lock) is overwritten only
    /// when `replaceIf(stored, copy)` says so. Returns how many rows were written. Not
    /// retried after a lost connection; running the copy again finishes it.
    /// - Throws: `StorageError`; nothing of the batch is written then.
    package func importRows(
        _ rows: [(key: SessionKey, record: SessionRecord)],
        replaceIf: @escaping @Sendable (_ stored: SessionRecord, _ copy: SessionRecord) -> Bool
    ) async throws -> Int {
        let statements = statements
        return try await call("import", retry: .never) { connection, _ in
            try await Self.transaction(connection) {
                var written = 0
                for (key, record) in rows {
                    let values = PostgresStatements.recordValues(key.value, record)
                    if let stored = try await Self.row(connection, statements.lock, [.text(key.value)]) {
                        guard replaceIf(stored, record) else { continue }
                        _ = try await Self.rows(connection, statements.replace, values)
                    } else {
                        _ = try await Self.rows(connection, statements.insert.sql, values)
                    }
                    written += 1
                }
                return written
            }
        }
    }

    /// Rows with `expires_at < before`, which a cleanup at that cut-off deletes.
    /// - Throws: `StorageError`.
    package func countExpired(before: Int64) async throws -> Int64 {
        let sql = "SELECT count(*) FROM \"\(statements.table)\" WHERE expires_at < $1"
        return try await call("count", retry: .read) { connection, _ in
            guard let row = try await Self.rows(connection, sql, [.int(before)]).first else {
                throw StorageError(kind: .other, engine: "postgres", operation: "count", message: "no count returned", statement: sql)
            }
            return try row.decode(Int64.self)
        }
    }

    /// The statements ``upgradeSchema()`` would run: migrations from the recorded version
    /// to the current one, each followed by its version bump.
    /// - Throws: `StorageError` `.schema` when the table has no schema row, is newer than
    ///   this release, or no migration leads from its version.
    package func pendingMigrations() async throws -> (from: Int64, to: Int64, statements: [String]) {
        guard let recorded = try await recordedSchema() else {
            throw StorageError(
                kind: .schema, engine: "postgres", operation: "upgrade",
                message: "table \(statements.table) has no row in \(PostgresStatements.schemaTable)")
        }
        return try Self.migrationPlan(from: recorded.version, table: statements.table)
    }

    private static func migrationPlan(from start: Int64, table: String) throws -> (from: Int64, to: Int64, statements: [String]) {
        let plan = try MigrationPlan(
            from: start, to: Int64(PostgresStatements.schemaVersion), table: table, schemaTable: PostgresStatements.schemaTable,
            engine: "postgres", migration: PostgresStatements.migration(from:))
        return (plan.from, plan.to, plan.statements)
    }

    /// Applies ``pendingMigrations()`` in one transaction (PostgreSQL's DDL is
    /// transactional: a cut-off upgrade leaves the table at its old version), under the
    /// table's advisory lock, after re-reading the version. Returns the versions before and
    /// after; equal when there was nothing to do.
    /// - Throws: `StorageError`.
    package func upgradeSchema() async throws -> (from: Int64, to: Int64) {
        let table = statements.table
        let lockKey = statements.tableLockKey
        return try await call("upgrade", retry: .never) { connection, _ in
            try await Self.transaction(connection) {
                _ = try await Self.rows(connection, "SELECT pg_advisory_xact_lock($1)", [.int(lockKey)])
                guard let recorded = try await Self.schemaRow(connection, table: table) else {
                    throw StorageError(
                        kind: .schema, engine: "postgres", operation: "upgrade",
                        message: "table \(table) has no row in \(PostgresStatements.schemaTable)")
                }
                let plan = try Self.migrationPlan(from: recorded.version, table: table)
                for statement in plan.statements {
                    try await Self.run(connection, statement)
                }
                return (plan.from, plan.to)
            }
        }
    }
}
#endif
