import SessionStore

extension SQLiteBackend: PacedRewriting {
    /// Runs a bulk rewrite's row (`rekey`) under the same WAL regime as a cleanup slice: while
    /// it runs, the checkpointer starts copying early and does not escalate to a TRUNCATE
    /// (which holds saves back), and once the WAL passes
    /// ``SQLiteCheckpointer/cleanupPacePages`` the rewrite waits until it is copied back and
    /// copies the last frames on the writer's connection, so the next write starts the WAL
    /// over. The WAL then never reaches the size at which the writer empties it itself with
    /// the saves queued behind it.
    package func paced<Output: Sendable>(_ body: () async throws -> Output) async throws -> Output {
        try checkOpen("rewrite")
        guard let checkpointer else { return try await body() }
        return try await checkpointer.whileCleaning {
            if try await checkpointer.paceCleanup(patience: configuration.busyTimeout) {
                try await copyTail(checkpointer)
            }
            return try await body()
        }
    }

    /// Copies the WAL's last frames back on the writer thread, between two writes.
    private func copyTail(_ checkpointer: SQLiteCheckpointer) async throws {
        do {
            _ = try await writer.submit(.background, operation: "rewrite") { connection in
                checkpointer.copyTail(connection.database)
                return .changes(0)
            }
        } catch {
            // The job never ran (cancelled while queued, or the backend closed).
            checkpointer.releasePasses()
            throw error
        }
    }
}
