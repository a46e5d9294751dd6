import SessionStoreCore

extension SQLiteBackend {
    /// The table holding one cleanup lease per session table, so several processes
    /// sharing the database file do not clean at the same time.
    static let leaseTable = "session_store_lease"

    static var createLeaseTable: String {
        "CREATE TABLE IF NOT EXISTS \(leaseTable) (table_name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)"
    }

    /// Grants the cleanup lease of this table when it is free, expired, or already held
    /// by `holder` (which then renews it), in one statement through the writer.
    /// - Throws: `StorageError`.
    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        let table = queries.table
        let sql = """
            INSERT INTO \(Self.leaseTable) (table_name, holder, expires_at) VALUES (?1, ?2, ?3) \
            ON CONFLICT (table_name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
            WHERE \(Self.leaseTable).expires_at <= ?4 OR \(Self.leaseTable).holder = excluded.holder
            """
        let (expiry, overflow) = now.addingReportingOverflow(duration)
        let expiresAt = overflow ? Int64.max : expiry
        // The lease table only: no session row changes.
        return try await writeStatement("acquireCleanupLease", sql, keys: []) { statement in
            try statement.bind(1, text: table, operation: "acquireCleanupLease")
            try statement.bind(2, text: holder, operation: "acquireCleanupLease")
            try statement.bind(3, expiresAt, operation: "acquireCleanupLease")
            try statement.bind(4, now, operation: "acquireCleanupLease")
        } > 0
    }

    /// Gives up the cleanup lease when `holder` has it.
    /// - Throws: `StorageError`.
    public func releaseCleanupLease(holder: String) async throws {
        let table = queries.table
        let sql = "DELETE FROM \(Self.leaseTable) WHERE table_name = ?1 AND holder = ?2"
        _ = try await writeStatement("releaseCleanupLease", sql, keys: []) { statement in
            try statement.bind(1, text: table, operation: "releaseCleanupLease")
            try statement.bind(2, text: holder, operation: "releaseCleanupLease")
        }
    }
}
