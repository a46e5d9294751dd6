#if Postgres
import PostgresNIO
import SessionStoreCore

extension PostgresBackend {
    /// Creates the schema, lease and sessions tables and the expiry index if missing, in one
    /// transaction, and checks the recorded schema version and layout.
    ///
    /// No lock is taken, so opens never wait for each other: when another backend creates
    /// the same table at the same moment, PostgreSQL may fail one `CREATE ... IF NOT EXISTS`
    /// with a unique or duplicate violation in its catalog; that transaction is rolled back
    /// and runs again, and finds the table made.
    /// - Throws: ``StorageError`` `.schema` for a newer schema version or another layout.
    static func createSchema(_ connection: PostgresConnection, _ statements: PostgresStatements) async throws {
        // The usual case, a table made before: checked without any DDL.
        if let recorded = try await schemaRow(connection, table: statements.table), try await tableExists(connection, statements.table) {
            return try checkSchema(recorded, table: statements.table)
        }
        for attempt in 1...3 {
            do {
                try await transaction(connection) {
                    try await createTables(connection, statements)
                    guard let recorded = try await schemaRow(connection, table: statements.table) else {
                        throw StorageError(
                            kind: .schema, engine: "postgres", operation: "open",
                            message: "schema row of table \(statements.table) missing after it was written")
                    }
                    try checkSchema(recorded, table: statements.table)
                }
                return
            } catch let error as PostgresStatementError where attempt < 3 && isConcurrentCreation(error) {
                continue
            }
        }
    }

    /// Runs `body` (a transaction that creates tables) again, up to 3 times in all, when
    /// PostgreSQL refused it for a concurrent creation of the same objects.
    static func retryingConcurrentCreation<T>(_ body: () async throws -> T) async throws -> T {
        for attempt in 1...2 {
            do {
                return try await body()
            } catch let error as PostgresStatementError where attempt < 3 && isConcurrentCreation(error) {
                continue
            }
        }
        return try await body()
    }

    /// Runs the schema statements inside the caller's transaction.
    static func createTables(_ connection: PostgresConnection, _ statements: PostgresStatements) async throws {
        for statement in statements.schemaStatements {
            try await run(connection, statement)
        }
    }

    /// Whether `error` is PostgreSQL refusing a `CREATE ... IF NOT EXISTS` that raced with
    /// the same one in another session (unique violation in the catalog, duplicate table
    /// or object).
    static func isConcurrentCreation(_ error: PostgresStatementError) -> Bool {
        guard let failure = error.underlying as? PSQLError, let state = failure.serverInfo?[.sqlState] else { return false }
        return ["23505", "42P07", "42710"].contains(state)
    }

    /// Fails unless `recorded` is a version and layout this release reads.
    static func checkSchema(_ recorded: (version: Int64, layout: String), table: String) throws {
        guard recorded.version <= Int64(PostgresStatements.schemaVersion) else {
            throw StorageError(
                kind: .schema, engine: "postgres", operation: "open",
                message: "table \(table) has schema version \(recorded.version); this release reads up to "
                    + "\(PostgresStatements.schemaVersion)")
        }
        guard recorded.layout == KeyLayout.idOnly.rawValue else {
            throw StorageError(
                kind: .schema, engine: "postgres", operation: "open",
                message: "table \(table) was recorded with key=\(recorded.layout); this backend keys rows by id")
        }
    }

    /// Whether `table` exists in the connection's schema search path.
    static func tableExists(_ connection: PostgresConnection, _ table: String) async throws -> Bool {
        let rows = try await rows(connection, "SELECT to_regclass($1) IS NOT NULL", [.text("\"\(table)\"")])
        guard let first = rows.first else { return false }
        return try first.decode(Bool.self)
    }

    /// The recorded schema version and layout of `table`, `nil` when there is none (or no
    /// schema table at all).
    static func schemaRow(_ connection: PostgresConnection, table: String) async throws -> (version: Int64, layout: String)? {
        guard try await tableExists(connection, PostgresStatements.schemaTable) else { return nil }
        let sql = "SELECT version::bigint, key_layout FROM \(PostgresStatements.schemaTable) WHERE name = $1"
        guard let row = try await rows(connection, sql, [.text(table)]).first else { return nil }
        do {
            let (version, layout) = try row.decode((Int64, String).self)
            return (version, layout)
        } catch {
            throw PostgresStatementError(underlying: error, statement: sql)
        }
    }
}
#endif
