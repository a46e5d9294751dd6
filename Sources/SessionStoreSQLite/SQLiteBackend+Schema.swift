import CSessionStoreSQLite
import SessionStoreCore

extension SQLiteBackend {
    /// Sets WAL mode, durability and mmap on the writer, then creates or checks the
    /// session table in one transaction (dropping the expiry index earlier versions made).
    ///
    /// Reading the journal mode reads the file header, so a file that is not a database
    /// fails here with `.corrupt` rather than on the first save.
    ///
    /// Returns the table's schema version: `queries`' for a table it created. Calls
    /// `beforeSchema` once the file proved a database, just before the schema is read.
    static func prepareWriter(
        _ connection: SQLiteConnection, configuration: SQLiteConfiguration, queries: SQLiteQueries,
        beforeSchema: () -> Void = {}
    ) throws(StorageError) -> Int64 {
        try SQLiteSlot.register(on: connection)
        if !configuration.isMemory {
            let mode = try connection.execute("PRAGMA journal_mode = WAL", operation: "open")
            guard mode?.lowercased() == "wal" else {
                throw StorageError(
                    kind: .other, engine: "sqlite", operation: "open",
                    message: "could not switch the database to WAL mode (journal mode is \(mode ?? "unknown"))",
                    statement: "PRAGMA journal_mode = WAL")
            }
        }
        try connection.execute("PRAGMA synchronous = \(configuration.synchronous.rawValue.uppercased())", operation: "open")
        if !configuration.isMemory {
            // A WAL file that was started over is truncated back to what a paced cleanup
            // lets it hold: frames of a 4 KB page and a 24-byte header, after a 32-byte header.
            let limit = Int(SQLiteCheckpointer.fileLimitPages) * (4096 + 24) + 32
            let applied = try connection.execute("PRAGMA journal_size_limit = \(limit)", operation: "open")
            guard applied == String(limit) else {
                throw StorageError(
                    kind: .other, engine: "sqlite", operation: "open",
                    message: "journal_size_limit is \(applied ?? "unknown"), not \(limit)",
                    statement: "PRAGMA journal_size_limit")
            }
        }
        try connection.execute("PRAGMA mmap_size = \(configuration.mmapSize)", operation: "open")
        beforeSchema()
        do {
            return try connection.immediateTransaction(operation: "open") { () throws(StorageError) -> Int64 in
                try createOrCheckSchema(connection, queries: queries, dropsExpiryIndex: configuration.dropsExpiryIndex)
            }
        } catch {
            // The open fails anyway; when the rollback failed too, closing the connection
            // discards the transaction.
            if !connection.isAutocommit { connection.close() }
            // Only SQLite calls run in that transaction: its errors are all `StorageError`s.
            throw error as? StorageError ?? StorageError(kind: .other, engine: "sqlite", operation: "open", message: "\(error)")
        }
    }

    /// Sets mmap on a reader and prepares its SELECT, which also proves the file readable.
    static func prepareReader(
        _ connection: SQLiteConnection, configuration: SQLiteConfiguration, queries: SQLiteQueries
    ) throws(StorageError) {
        try connection.execute("PRAGMA mmap_size = \(configuration.mmapSize)", operation: "open")
        try connection.execute("PRAGMA query_only = 1", operation: "open")
        _ = try connection.statement(queries.load, operation: "open")
    }

    /// Checks the table's schema row, or creates the table with `queries` when it has none;
    /// returns the table's schema version.
    private static func createOrCheckSchema(
        _ connection: SQLiteConnection, queries: SQLiteQueries, dropsExpiryIndex: Bool
    ) throws(StorageError) -> Int64 {
        let schemaTable = SQLiteQueries.schemaTable
        try connection.execute(SQLiteQueries.createSchemaTable, operation: "open")
        try connection.execute(createLeaseTable, operation: "open")
        let select = "SELECT version, key_layout FROM \(schemaTable) WHERE table_name = ?1"
        let statement = try connection.statement(select, operation: "open")
        defer { statement.reset() }
        try statement.bind(1, text: queries.table, operation: "open")
        if try statement.step(operation: "open") {
            let version = try statement.int64(0, operation: "open")
            let layout = try statement.text(1, operation: "open")
            statement.reset()
            guard version <= SQLiteQueries.schemaVersion else {
                throw schemaError(
                    "table \(queries.table) has schema version \(version), newer than version \(SQLiteQueries.schemaVersion) this library supports",
                    statement: select)
            }
            guard layout == queries.layout.rawValue else {
                throw schemaError(
                    "table \(queries.table) uses key layout \"\(layout)\" but the configuration asks for \"\(queries.layout.rawValue)\"",
                    statement: select)
            }
            // Versions before the key-order cleanup created an index on expires_at; nothing
            // reads it now, and every save, touch and cleanup would keep rewriting it. The
            // schema version stays 1: an older release opens the table without it and still
            // works (its cleanup slices then scan the table; `session-store schema` of that
            // release prints the CREATE INDEX to put it back).
            if dropsExpiryIndex {
                try connection.execute(queries.dropExpiryIndex, operation: "open")
            }
            return version
        }
        statement.reset()
        let existing = try connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '\(queries.table)'", operation: "open")
        guard existing == nil else {
            throw schemaError(
                "table \(queries.table) exists but was not created by the session store (no row in \(schemaTable))",
                statement: select)
        }
        try connection.execute(queries.createTable, operation: "open")
        if queries.hasOwners { try connection.execute(queries.createOwnerIndex, operation: "open") }
        try connection.execute(queries.insertSchemaRow, operation: "open")
        return SQLiteQueries.schemaVersion
    }

    private static func schemaError(_ message: String, statement: String) -> StorageError {
        StorageError(kind: .schema, engine: "sqlite", operation: "open", message: message, statement: statement)
    }
}
