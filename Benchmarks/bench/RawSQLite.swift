import CSessionStoreSQLite

/// `SQLITE_TRANSIENT`: SQLite copies bound bytes before the bind call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A bare SQLite connection for the floor, the naive store and table fills: the C API
/// with prepared statements and nothing else.
///
/// Not `Sendable`: each benchmark thread opens its own.
final class RawDB {
    let handle: OpaquePointer
    let path: String

    /// Opens `path` with the same settings the store uses: WAL, `synchronous`, `mmap_size`.
    init(path: String, synchronous: String = "NORMAL", mmapSize: Int = 0, busyTimeoutMillis: Int32 = 120_000) throws {
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let db else {
            sqlite3_close_v2(db)
            throw BenchError("sqlite3_open_v2(\(path)) failed: \(code)")
        }
        handle = db
        self.path = path
        sqlite3_busy_timeout(db, busyTimeoutMillis)
        try exec("PRAGMA journal_mode = WAL")
        try exec("PRAGMA synchronous = \(synchronous)")
        try exec("PRAGMA mmap_size = \(mmapSize)")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    func exec(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        if code != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "code \(code)"
            sqlite3_free(message)
            throw BenchError("sqlite: \(text) in: \(sql)")
        }
    }

    func prepare(_ sql: String) throws -> RawStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw BenchError("sqlite prepare: \(String(cString: sqlite3_errmsg(handle))) in: \(sql)")
        }
        return RawStatement(statement, db: self)
    }

    /// The first column of the first row, as an integer.
    func scalar(_ sql: String) throws -> Int64 {
        let statement = try prepare(sql)
        guard try statement.step() else { return 0 }
        return statement.int64(0)
    }

    var changes: Int { Int(sqlite3_changes64(handle)) }

    var errorMessage: String { String(cString: sqlite3_errmsg(handle)) }
}

/// One prepared statement of a ``RawDB``, reused after `reset()`.
final class RawStatement {
    let handle: OpaquePointer
    private let db: RawDB

    init(_ handle: OpaquePointer, db: RawDB) {
        self.handle = handle
        self.db = db
    }

    deinit {
        sqlite3_finalize(handle)
    }

    @inline(__always)
    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(handle, index, value)
    }

    @inline(__always)
    func bind(_ index: Int32, text: String) {
        var text = text
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                _ = sqlite3_bind_text(handle, index, chars.baseAddress, Int32(chars.count), transient)
            }
        }
    }

    @inline(__always)
    func bind(_ index: Int32, blob: [UInt8]) {
        blob.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(handle, index, bytes.baseAddress, Int32(bytes.count), transient)
        }
    }

    /// One step; `true` when a row is available.
    @inline(__always)
    func step() throws -> Bool {
        let code = sqlite3_step(handle)
        if code == SQLITE_ROW { return true }
        if code == SQLITE_DONE { return false }
        let message = db.errorMessage
        sqlite3_reset(handle)
        throw BenchError("sqlite step failed (\(code)): \(message)")
    }

    /// Steps to the end and resets.
    @inline(__always)
    func run() throws {
        defer { sqlite3_reset(handle) }
        while try step() {}
    }

    @inline(__always)
    func reset() {
        sqlite3_reset(handle)
    }

    @inline(__always)
    func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    @inline(__always)
    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: pointer)
    }
}
