/// A backend that keeps saves responsive while a tool rewrites many rows through it, one
/// write per row (`session-store rekey`): what the backend's own cleanup does for its deletes.
///
/// A rewrite of a whole table writes as fast as the database takes it. Unpaced, it fills
/// the SQLite WAL until the writer itself must empty it, with every save queued behind that
/// (measured: worst save stalls of 0.5-1.9 s during a rekey under load). ``EncryptingBackend``
/// runs each of its rewrites through ``paced(_:)`` when its base backend conforms.
package protocol PacedRewriting: StorageBackend {
    /// Runs `body`, one row's rewrite through this backend, after waiting while the backend
    /// is too far behind on its upkeep to take another bulk write without holding saves back.
    /// - Throws: What `body` throws, ``StorageError``, or `CancellationError` while waiting.
    func paced<Output: Sendable>(_ body: () async throws -> Output) async throws -> Output
}
