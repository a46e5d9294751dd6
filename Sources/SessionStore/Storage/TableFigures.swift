/// What `session-store stats` reports about one session table, the same for every backend;
/// each backend fills it from its own catalog.
package struct TableFigures: Sendable {
    /// Every row, live or expired.
    package var rows: Int64 = 0
    /// Rows with `expires_at > now`.
    package var live: Int64 = 0
    /// Live rows retired by an id regeneration (version 0), within their grace period.
    package var retired: Int64 = 0
    /// Live rows expiring within an hour, a day, a week, and later.
    package var expiring: [Int64] = [0, 0, 0, 0]
    /// The earliest and latest `created_at` of any row, in milliseconds since the epoch.
    package var oldestCreated: Int64?
    package var newestCreated: Int64?
    /// The rows and the indexes, in bytes, `nil` when the engine cannot tell: SQLite's
    /// `dbstat` (the table's b-tree, the expiry index earlier releases created), InnoDB's
    /// estimates from `information_schema.tables`, PostgreSQL's `pg_table_size` (TOAST
    /// included) and `pg_indexes_size`.
    package var tableBytes: Int64?
    package var indexBytes: Int64?
    /// SQLite: the main database file's size (`page_count * page_size`) and the WAL file's;
    /// `nil` for a server.
    package var fileBytes: Int64?
    package var walBytes: Int64?
    /// What the schema table records for the table.
    package var schemaVersion: Int64?
    package var keyLayout: String?
    /// The cleanup lease row, when there is one (a released lease has expiry 0).
    package var leaseHolder: String?
    package var leaseExpiresAt: Int64?

    /// No rows, nothing known.
    package init() {}
}
