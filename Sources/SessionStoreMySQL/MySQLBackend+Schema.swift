import SessionStoreCore

extension MySQLBackend {
    /// Creates the schema, lease and sessions tables if missing and checks the recorded
    /// schema version and layout.
    /// - Throws: ``StorageError`` `.schema` for a newer schema version or another layout.
    /// Returns the table's recorded schema version.
    static func createSchema(_ connection: MySQLConnection, _ statements: MySQLStatements) throws -> Int {
        try connection.run(MySQLStatements.createSchemaTable)
        try connection.run(MySQLStatements.createLeaseTable)
        try connection.run(statements.createTable)
        let table = statements.table
        let layout = statements.layout.rawValue
        let autoIncrement = statements.autoIncrement ? 1 : 0
        try connection.run(statements.insertSchemaRow)
        let sql = "SELECT version, key_layout, auto_increment FROM \(MySQLStatements.schemaTable) WHERE name = '\(table)'"
        guard let row = try connection.rows(sql).first, let versionText = row[0], let version = Int(versionText) else {
            throw StorageError(kind: .schema, engine: "mysql", operation: "open", message: "schema row missing", statement: sql)
        }
        guard version <= MySQLStatements.schemaVersion else {
            throw StorageError(
                kind: .schema, engine: "mysql", operation: "open",
                message: "table \(table) has schema version \(version); this release reads up to \(MySQLStatements.schemaVersion)",
                statement: sql
            )
        }
        guard row[1] == layout, row[2] == String(autoIncrement) else {
            throw StorageError(
                kind: .schema, engine: "mysql", operation: "open",
                message: "table \(table) was created with key=\(row[1] ?? "?") auto_increment=\(row[2] == "1"); "
                    + "the configuration asks for key=\(layout) auto_increment=\(autoIncrement == 1)",
                statement: sql
            )
        }
        return version
    }
}
