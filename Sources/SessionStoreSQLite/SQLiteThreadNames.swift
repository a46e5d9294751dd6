/// The names of the backend's own threads, as `top -H`, `perf` and `/proc` show them (at
/// most 15 bytes each, all Linux keeps; `startBackendThread` cuts a longer one).
enum SQLiteThreadName {
    /// The writer thread (``SQLiteWriter``).
    static let writer = "sssqlite.writer"
    /// The checkpointer thread (``SQLiteCheckpointer``).
    static let checkpointer = "sssqlite.ckpt"
    /// The thread that opens a backend for `StorageBackendFactory.sqlite`.
    static let opener = "sssqlite.open"
}
