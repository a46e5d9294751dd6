#if Postgres
import PostgresNIO
import SessionStore

extension PostgresBackend {
    /// Creates the schema, lease and sessions tables and the expiry index if missing, in one
    /// transaction under advisory locks (so backends opening at once do not collide in the
    /// catalog), and checks the recorded schema version and layout.
    /// - Throws: `StorageError` `.schema` for a newer schema version or another layout.
    static func createSchema(_ connection: PostgresConnection, _ statements: PostgresStatements) async throws {
        // The usual case, a table made before: checked without the lock or any DDL, so
        // opens never wait for each other.
        if let recorded = try await schemaRow(connection, table: statements.table), try await tableExists(connection, statements.table) {
            return try checkSchema(recorded, table: statements.table)
        }
        try await transaction(connection) {
            try await createTables(connection, statements)
            guard let recorded = try await schemaRow(connection, table: statements.table) else {
                throw StorageError(
                    kind: .schema, engine: "postgres", operation: "open",
                    message: "schema row of table \(statements.table) missing after it was written")
            }
            try checkSchema(recorded, table: statements.table)
        }
    }

    /// Runs the schema statements inside the caller's transaction, each part under its
    /// advisory lock (shared tables first, then the session table: one order, no deadlock).
    static func createTables(_ connection: PostgresConnection, _ statements: PostgresStatements) async throws {
        let lock = "SELECT pg_advisory_xact_lock($1)"
        let schemaTableExists = try await tableExists(connection, PostgresStatements.schemaTable)
        let leaseTableExists = try await tableExists(connection, PostgresStatements.leaseTable)
        if !schemaTableExists || !leaseTableExists {
            _ = try await rows(connection, lock, [.int(PostgresStatements.sharedTablesLockKey)])
            for statement in PostgresStatements.sharedTableStatements {
                try await run(connection, statement)
            }
        }
        _ = try await rows(connection, lock, [.int(statements.tableLockKey)])
        for statement in statements.tableStatements {
            try await run(connection, statement)
        }
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
