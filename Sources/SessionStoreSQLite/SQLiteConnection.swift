import CSessionStoreSQLite
import Foundation
import SessionStoreCore

/// One open `sqlite3*` with its prepared statements.
///
/// Not `Sendable`: the writer thread owns one, and the reader pool lends each reader to one
/// task at a time. Statements are prepared once (persistent) and reused; everything is
/// finalized and closed in ``close()`` or `deinit`.
final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]
    private let busy: BusyContext
    /// Keeps the object behind a C hook's context pointer alive while the handle is open.
    var hookOwner: AnyObject?
    /// While set, a locked database fails at once with `SQLITE_BUSY` instead of waiting for
    /// the busy timeout (for work on a thread that must not sleep).
    var failFastWhenBusy: Bool {
        get { busy.failFast }
        set { busy.failFast = newValue }
    }

    /// Opens `path` read-write, creating the file when missing unless `creates` is `false`
    /// (a connection opened after the backend's own, which must not put an empty database
    /// where the file was moved away), and installs the busy handler.
    ///
    /// - Throws: ``StorageError`` (`.cannotOpen` for a missing directory or permissions, or
    ///   a missing file when `creates` is `false`; `.readOnly` when the file cannot be written).
    init(path: String, uri: Bool, busyTimeoutMilliseconds: Int64, creates: Bool = true) throws(StorageError) {
        var flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        if creates { flags |= SQLITE_OPEN_CREATE }
        if uri { flags |= SQLITE_OPEN_URI }
        var database: OpaquePointer?
        let code = sqlite3_open_v2(path, &database, flags, nil)
        guard code == SQLITE_OK, let database else {
            let error: StorageError
            if let database {
                error = Self.error(database: database, code: code, operation: "open", statement: nil)
                sqlite3_close_v2(database)
            } else {
                error = StorageError(
                    kind: .other, engine: "sqlite", operation: "open", code: code,
                    message: "out of memory opening the database")
            }
            throw error
        }
        handle = database
        busy = BusyContext(timeoutNanoseconds: UInt64(max(0, busyTimeoutMilliseconds)) * 1_000_000)
        sqlite3_extended_result_codes(database, 1)
        let context = Unmanaged.passUnretained(busy).toOpaque()
        sqlite3_busy_handler(database, sqliteBusyHandler, context)
        if sqlite3_db_readonly(database, "main") == 1 {
            close()
            throw StorageError(
                kind: .readOnly, engine: "sqlite", operation: "open", code: SQLITE_READONLY,
                message: "the database file \(path) is read-only")
        }
    }

    deinit {
        close()
    }

    /// Keeps this connection's close from checkpointing the WAL. A short-lived connection
    /// that closes while the others are between transactions would otherwise take the
    /// database's exclusive lock for that checkpoint, and a connection opening meanwhile
    /// would find the database busy.
    func skipCheckpointOnClose() throws(StorageError) {
        var applied: Int32 = 0
        let code = csessionstore_sqlite3_db_config_int(database, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &applied)
        guard code == SQLITE_OK, applied == 1 else {
            throw Self.error(database: database, code: code == SQLITE_OK ? SQLITE_ERROR : code, operation: "open", statement: nil)
        }
    }

    /// The raw handle; valid until ``close()``.
    var database: OpaquePointer {
        guard let handle else { preconditionFailure("connection used after close") }
        return handle
    }

    /// Whether the connection is outside any transaction (SQLite rolled back or none began).
    var isAutocommit: Bool { sqlite3_get_autocommit(database) != 0 }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes64(database)) }

    /// The cached prepared statement for `sql`, prepared on first use.
    func statement(_ sql: String, operation: String) throws(StorageError) -> SQLiteStatement {
        if let statement = statements[sql] { return statement }
        let statement = try SQLiteStatement(database: database, sql: sql, persistent: true, operation: operation)
        statements[sql] = statement
        return statement
    }

    /// Runs `sql` once with a transient statement, returning the first column of the first
    /// row as text when there is one (for PRAGMAs).
    @discardableResult
    func execute(_ sql: String, operation: String) throws(StorageError) -> String? {
        let statement = try SQLiteStatement(database: database, sql: sql, persistent: false, operation: operation)
        defer { statement.finalize() }
        var first: String?
        while try statement.step(operation: operation) {
            if first == nil {
                first = statement.anyText(0)
            }
        }
        return first
    }

    /// Runs a cached statement (BEGIN, COMMIT, ...) to completion.
    func run(_ sql: String, operation: String) throws(StorageError) {
        let statement = try statement(sql, operation: operation)
        defer { statement.reset() }
        try statement.run(operation: operation)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction and commits it; rolls back when `body`
    /// or the commit throws, unless SQLite already rolled back (``isAutocommit``), and
    /// rethrows. A failed rollback is reported in one ``StorageError`` with the first error
    /// (``isAutocommit`` is then still false: the caller may close the connection).
    func immediateTransaction<T>(operation: String, _ body: () throws -> T) throws -> T {
        try run("BEGIN IMMEDIATE", operation: operation)
        do {
            let result = try body()
            try run("COMMIT", operation: operation)
            return result
        } catch {
            guard !isAutocommit else { throw error }
            do {
                try run("ROLLBACK", operation: operation)
            } catch let rollbackError {
                let first = error as? StorageError
                throw StorageError(
                    kind: first?.kind ?? .other, engine: "sqlite", operation: operation, code: first?.code,
                    message: "\(first?.message ?? "\(error)") (rollback also failed: \(rollbackError.message))",
                    statement: first?.statement)
            }
            throw error
        }
    }

    /// The error of every call on a backend, reader or writer that was closed.
    static func closedError(_ operation: String) -> StorageError {
        StorageError(kind: .closed, engine: "sqlite", operation: operation, message: "the SQLite backend is closed")
    }

    /// Finalizes every statement and closes the handle. Safe to call twice.
    func close() {
        for statement in statements.values { statement.finalize() }
        statements = [:]
        if let handle {
            sqlite3_close_v2(handle)
            self.handle = nil
        }
        hookOwner = nil
    }

    /// A ``StorageError`` for `code`, with the connection's message and extended code.
    static func error(database: OpaquePointer, code: Int32, operation: String, statement: String?) -> StorageError {
        let extended = sqlite3_extended_errcode(database)
        let effective = (extended & 0xFF) == (code & 0xFF) ? extended : code
        let message = sqlite3_errmsg(database).map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
        return StorageError(
            kind: kind(of: effective), engine: "sqlite", operation: operation, code: effective,
            message: message, statement: statement)
    }

    /// Maps a SQLite result code to a ``StorageError/Kind``.
    static func kind(of code: Int32) -> StorageError.Kind {
        switch code & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: .busy
        case SQLITE_READONLY: .readOnly
        case SQLITE_FULL: .full
        case SQLITE_CORRUPT, SQLITE_NOTADB: .corrupt
        case SQLITE_CANTOPEN: .cannotOpen
        default: .other
        }
    }
}

/// The busy handler's state for one connection: how long to keep retrying, and since when.
///
/// Reached only from the connection's current user, through the C callback.
final class BusyContext {
    let timeoutNanoseconds: UInt64
    var start: UInt64 = 0
    var failFast = false

    init(timeoutNanoseconds: UInt64) {
        self.timeoutNanoseconds = timeoutNanoseconds
    }
}

/// Retries a locked database every ~1 ms until the connection's busy timeout has passed.
/// `context` is the connection's ``BusyContext``; `count` is the number of earlier calls
/// for the same lock.
private func sqliteBusyHandler(_ context: UnsafeMutableRawPointer?, _ count: Int32) -> Int32 {
    guard let context else { return 0 }
    let busy = Unmanaged<BusyContext>.fromOpaque(context).takeUnretainedValue()
    if busy.failFast { return 0 }
    let now = DispatchTime.now().uptimeNanoseconds
    if count == 0 { busy.start = now }
    guard now - busy.start < busy.timeoutNanoseconds else { return 0 }
    usleep(count < 10 ? 200 : 1000)
    return 1
}
