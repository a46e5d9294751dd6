#if Postgres
import PostgresNIO
import SessionStore

extension PostgresBackend {
    /// Creates the schema, lease and sessions tables and the expiry index if missing, in one
    /// transaction under an advisory lock (so backends opening at once do not collide in
    /// the catalog), and checks the recorded schema version and layout.
    /// - Throws: ``StorageError`` `.schema` for a newer schema version or another layout.
    static func createSchema(_ connection: PostgresConnection, _ statements: PostgresStatements) async throws {
        try await transaction(connection) {
            _ = try await rows(connection, "SELECT pg_advisory_xact_lock($1)", [.int(PostgresStatements.schemaLockKey)])
            for statement in statements.schemaStatements {
                try await run(connection, statement)
            }
            guard let recorded = try await schemaRow(connection, table: statements.table) else {
                throw StorageError(
                    kind: .schema, engine: "postgres", operation: "open",
                    message: "schema row of table \(statements.table) missing after it was written")
            }
            try checkSchema(recorded, table: statements.table)
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

    /// The recorded schema version and layout of `table`, `nil` when there is none (or no
    /// schema table at all).
    static func schemaRow(_ connection: PostgresConnection, table: String) async throws -> (version: Int64, layout: String)? {
        let exists = try await rows(connection, "SELECT to_regclass($1) IS NOT NULL", [.text(PostgresStatements.schemaTable)])
        guard let first = exists.first, try first.decode(Bool.self) else { return nil }
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
