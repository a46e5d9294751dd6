#if Postgres
import SessionStoreCore

extension PostgresBackend {
    /// Takes or renews the cleanup lease of this table in the shared lease table: granted
    /// when it is free, lapsed at `now`, or already held by `holder`.
    ///
    /// One `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`, so a call run again
    /// after a lost connection reports the same (a holder renews its own lease). Lease
    /// expiry follows the callers' clocks; the store computes `now` and `duration` with its
    /// clock-skew allowance.
    /// - Throws: `StorageError`.
    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        let sql = statements.leaseAcquire
        let (sum, overflow) = now.addingReportingOverflow(max(duration, 1))
        let values: [PostgresValue] = [.text(statements.table), .text(holder), .int(overflow ? Int64.max : sum), .int(now)]
        return try await call("acquireCleanupLease", retry: .again) { connection, _ in
            try await Self.count(connection, sql, values) > 0
        }
    }

    /// Gives up a lease taken with ``acquireCleanupLease(holder:now:duration:)`` when
    /// `holder` has it.
    /// - Throws: `StorageError`.
    public func releaseCleanupLease(holder: String) async throws {
        let sql = statements.leaseRelease
        let values: [PostgresValue] = [.text(statements.table), .text(holder)]
        try await call("releaseCleanupLease", retry: .again) { connection, _ in
            _ = try await Self.rows(connection, sql, values)
        }
    }
}
#endif
