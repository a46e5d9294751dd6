import SessionStoreCore

extension MySQLBackend {
    /// Takes or renews the cleanup lease of this table in the shared lease table: granted
    /// when it is free, lapsed at `now`, or already held by `holder`.
    ///
    /// One upsert, then a read of the lease decides, so a call run again after a lost
    /// connection reports the same. Lease expiry follows the callers' clocks; the store
    /// computes `now` and `duration` with its clock-skew allowance.
    /// - Throws: `StorageError`.
    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        let statements = statements
        let name = statements.table
        let (sum, overflow) = now.addingReportingOverflow(max(duration, 1))
        let expiresAt = overflow ? Int64.max : sum
        let acquire: [MySQLValue] = [.text(name), .text(holder), .int(expiresAt), .int(now)]
        return try await call("acquireCleanupLease", retry: .again) { connection, _ in
            _ = try connection.statement(statements.leaseAcquire).execute(acquire)
            let rows = try connection.statement(statements.leaseRead).query([.text(name)], columns: [.bytes, .int])
            guard let row = rows.first, let current = row[0].bytes, let until = row[1].int else { return false }
            return current == Array(holder.utf8) && until > now
        }
    }

    /// Gives up a lease taken with ``acquireCleanupLease(holder:now:duration:)`` when
    /// `holder` has it.
    /// - Throws: `StorageError`.
    public func releaseCleanupLease(holder: String) async throws {
        let sql = statements.leaseRelease
        let parameters: [MySQLValue] = [.text(statements.table), .text(holder)]
        _ = try await call("releaseCleanupLease", retry: .again) { connection, _ in
            try connection.statement(sql).execute(parameters)
        }
    }
}
