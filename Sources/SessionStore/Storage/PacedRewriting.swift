/// A backend that keeps saves responsive while a tool rewrites many rows through it, one
/// write per row (`session-store rekey`): what the backend's own cleanup does for its deletes.
///
/// A rewrite of a whole table writes as fast as the database takes it. Unpaced, it fills
/// the SQLite WAL until the writer itself must empty it, with every save queued behind that
/// (measured: worst save stalls of 0.5-1.9 s during a rekey under load). ``EncryptingBackend``
/// runs its bulk rewrites through ``pacedRewrites(_:)`` when its base backend conforms.
package protocol PacedRewriting: StorageBackend {
    /// Runs `body`, a bulk rewrite of many rows through this backend, as one scope; `body`
    /// calls the pacer's ``RewritePacer/pace()`` before each row's write, from one task at a
    /// time. The backend's upkeep treats the whole scope as one bulk job (on SQLite: as a
    /// cleanup, so the checkpointer never escalates to a checkpoint that holds saves back
    /// between two rows).
    /// - Throws: What `body` throws, ``StorageError``.
    func pacedRewrites<Output: Sendable>(_ body: (any RewritePacer) async throws -> Output) async throws -> Output
}

/// Holds a bulk rewrite back while its backend is too far behind on its upkeep to take
/// another write without holding saves back.
package protocol RewritePacer: Sendable {
    /// Returns when the next row may be written.
    /// - Throws: ``StorageError``, or `CancellationError` while waiting.
    func pace() async throws
}

/// The pacer of a backend that needs none.
package struct UnpacedRewrites: RewritePacer {
    package init() {}
    package func pace() async throws {}
}
