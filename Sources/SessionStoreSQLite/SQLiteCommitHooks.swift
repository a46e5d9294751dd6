import CSessionStoreSQLite

/// The writer connection's commit and WAL hooks: a commit about to begin (under the write
/// lock) and a commit that reached the WAL are told to the load cache, which confirms from
/// them that the header it reads after a write is that write's own; the WAL's growth wakes
/// the checkpointer.
///
/// Installing a WAL hook turns SQLite's automatic checkpoint off: the checkpointer's thread
/// is then the only one that checkpoints (``SQLiteCheckpointer``).
final class SQLiteCommitHooks: Sendable {
    private let checkpointer: SQLiteCheckpointer?
    private let loadCache: SQLiteLoadCache?

    private init(checkpointer: SQLiteCheckpointer?, loadCache: SQLiteLoadCache?) {
        self.checkpointer = checkpointer
        self.loadCache = loadCache
    }

    /// Installs the hooks on `connection`, which keeps them (and what they call) alive until
    /// it closes. Call it before any other thread uses `connection`.
    static func install(on connection: SQLiteConnection, checkpointer: SQLiteCheckpointer?, loadCache: SQLiteLoadCache?) {
        let hooks = SQLiteCommitHooks(checkpointer: checkpointer, loadCache: loadCache)
        connection.hookOwner = hooks
        let context = Unmanaged.passUnretained(hooks).toOpaque()
        // Both return the previous hook's context (none here), not a result code.
        sqlite3_wal_hook(connection.database, sqliteWALHook, context)
        if loadCache != nil { sqlite3_commit_hook(connection.database, sqliteCommitHook, context) }
    }

    fileprivate func commitWillBegin() {
        loadCache?.commitWillBegin()
    }

    fileprivate func committed(frames: Int32, database: OpaquePointer?) {
        loadCache?.commitReachedWAL(frames: frames)
        checkpointer?.walGrew(to: frames, writer: database)
    }
}

/// SQLite's commit hook: returns 0 so the commit goes on.
private func sqliteCommitHook(_ context: UnsafeMutableRawPointer?) -> Int32 {
    guard let context else { return 0 }
    Unmanaged<SQLiteCommitHooks>.fromOpaque(context).takeUnretainedValue().commitWillBegin()
    return 0
}

/// SQLite's WAL hook, after a commit: `frames` is the WAL's frame count it left. Returns
/// SQLITE_OK so the commit itself is unaffected.
private func sqliteWALHook(
    _ context: UnsafeMutableRawPointer?, _ database: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ frames: Int32
) -> Int32 {
    guard let context else { return SQLITE_OK }
    Unmanaged<SQLiteCommitHooks>.fromOpaque(context).takeUnretainedValue().committed(frames: frames, database: database)
    return SQLITE_OK
}
