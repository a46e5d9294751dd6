package import SessionStore

extension SQLiteBackend: PacedRewriting {
    /// Runs a bulk rewrite (`rekey`) under the same WAL regime as a cleanup, from its first
    /// row to its last: meanwhile the checkpointer starts copying early and does not escalate
    /// to a TRUNCATE (which holds saves back), and once the WAL passes
    /// ``SQLiteCheckpointer/cleanupPacePages`` the pacer waits until it is copied back and
    /// copies the last frames on the writer's connection, so the next write starts the WAL
    /// over. The WAL then never reaches the size at which the writer empties it itself with
    /// the saves queued behind it.
    ///
    /// One scope for the whole rewrite, not one per row: with a scope per row, the moments
    /// between two rows (or two batches of a `rekey`) left no cleanup running, and a
    /// checkpoint pass then escalated to a TRUNCATE that held saves back.
    package func pacedRewrites<Output: Sendable>(_ body: (any RewritePacer) async throws -> Output) async throws -> Output {
        try checkOpen("rewrite")
        guard let checkpointer else { return try await body(UnpacedRewrites()) }
        return try await checkpointer.whileCleaning {
            try await body(SQLiteRewritePacer(backend: self, checkpointer: checkpointer))
        }
    }

    /// Copies the WAL's last frames back on the writer thread, between two writes.
    fileprivate func copyTail(_ checkpointer: SQLiteCheckpointer) async throws {
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

/// Paces a bulk rewrite on a SQLite backend by its WAL (see ``SQLiteBackend/pacedRewrites(_:)``).
private struct SQLiteRewritePacer: RewritePacer {
    let backend: SQLiteBackend
    let checkpointer: SQLiteCheckpointer

    func pace() async throws {
        try backend.checkOpen("rewrite")
        if try await checkpointer.paceCleanup(patience: backend.configuration.busyTimeout) {
            try await backend.copyTail(checkpointer)
        }
    }
}
