/// The statements that bring a server backend's table from its recorded schema version to
/// the current one, each step followed by its version bump; shared by the MySQL and
/// PostgreSQL backends (`session-store upgrade`).
package struct MigrationPlan: Sendable {
    package let from: Int64
    package let to: Int64
    package let statements: [String]

    /// Plans the upgrade of `table` from version `start` to `current`, with `migration(v)`
    /// giving the statements from `v` to `v + 1` (`nil` when there is none).
    /// - Throws: ``StorageError`` `.schema` when `start` is newer than `current` or no
    ///   migration leads from a version on the way.
    package init(
        from start: Int64, to current: Int64, table: String, schemaTable: String, engine: String,
        migration: (Int) -> [String]?
    ) throws {
        guard start <= current else {
            throw StorageError(
                kind: .schema, engine: engine, operation: "upgrade",
                message: "table \(table) has schema version \(start), newer than version \(current) this release knows")
        }
        var statements: [String] = []
        var version = start
        while version < current {
            guard let steps = migration(Int(version)) else {
                throw StorageError(
                    kind: .schema, engine: engine, operation: "upgrade",
                    message: "no migration from schema version \(version) of table \(table)")
            }
            statements += steps
            version += 1
            statements.append("UPDATE \(schemaTable) SET version = \(version) WHERE name = '\(table)'")
        }
        self.from = start
        self.to = current
        self.statements = statements
    }
}
