import CSessionStoreSQLite
import SessionStoreCore

/// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the bind call returns.
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One prepared statement, owned by its ``SQLiteConnection`` and reused after a reset.
///
/// Not `Sendable`: used only by the task or thread that holds its connection.
final class SQLiteStatement {
    /// The SQL text, for errors (never the bound values).
    let sql: String
    /// Unchecked exclusivity: every bind and column read goes through it, and the
    /// statement is used by one thread at a time (see the type's comment).
    @exclusivity(unchecked) private var handle: OpaquePointer?
    private let database: OpaquePointer

    init(database: OpaquePointer, sql: String, persistent: Bool, operation: String) throws(StorageError) {
        self.database = database
        self.sql = sql
        var statement: OpaquePointer?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sqlite3_prepare_v3(database, sql, -1, flags, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw SQLiteConnection.error(database: database, code: code, operation: operation, statement: sql)
        }
        self.handle = statement
    }

    deinit {
        finalize()
    }

    /// Releases the statement; later use is a programming error.
    func finalize() {
        if let handle {
            sqlite3_finalize(handle)
            self.handle = nil
        }
    }

    private var statement: OpaquePointer {
        guard let handle else { preconditionFailure("statement used after finalize") }
        return handle
    }

    /// Binds an integer to parameter `index` (1-based).
    func bind(_ index: Int32, _ value: Int64, operation: String) throws(StorageError) {
        try check(sqlite3_bind_int64(statement, index, value), operation: operation)
    }

    /// Binds text to parameter `index`; SQLite copies it.
    func bind(_ index: Int32, text value: String, operation: String) throws(StorageError) {
        var value = value
        let code = value.withUTF8 { bytes -> Int32 in
            guard let base = bytes.baseAddress, !bytes.isEmpty else {
                return sqlite3_bind_text(statement, index, "", 0, sqliteTransient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { chars in
                sqlite3_bind_text(statement, index, chars, Int32(bytes.count), sqliteTransient)
            }
        }
        try check(code, operation: operation)
    }

    /// Binds NULL to parameter `index`.
    func bindNull(_ index: Int32, operation: String) throws(StorageError) {
        try check(sqlite3_bind_null(statement, index), operation: operation)
    }

    /// Binds text, or NULL for `nil`.
    func bind(_ index: Int32, optionalText value: String?, operation: String) throws(StorageError) {
        if let value { try bind(index, text: value, operation: operation) } else { try bindNull(index, operation: operation) }
    }

    /// Binds a blob, or NULL for `nil`.
    func bind(_ index: Int32, optionalBlob value: [UInt8]?, operation: String) throws(StorageError) {
        if let value { try bind(index, blob: value, operation: operation) } else { try bindNull(index, operation: operation) }
    }

    /// Binds a blob to parameter `index`; SQLite copies it. An empty array binds an
    /// empty blob, never NULL.
    func bind(_ index: Int32, blob value: [UInt8], operation: String) throws(StorageError) {
        let code: Int32
        if value.isEmpty {
            code = sqlite3_bind_zeroblob(statement, index, 0)
        } else {
            code = value.withUnsafeBytes { bytes in
                sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), sqliteTransient)
            }
        }
        try check(code, operation: operation)
    }

    /// Runs one step. Returns `true` when a row is available.
    func step(operation: String) throws(StorageError) -> Bool {
        let code = sqlite3_step(statement)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            throw SQLiteConnection.error(database: database, code: code, operation: operation, statement: sql)
        }
    }

    /// Steps to completion, ignoring rows.
    func run(operation: String) throws(StorageError) {
        while try step(operation: operation) {}
    }

    /// Resets the statement and clears its bindings so it can be reused, and so a
    /// reader releases its snapshot.
    func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    /// The column's storage class (`SQLITE_INTEGER`, `SQLITE_BLOB`, ...).
    /// How many columns the statement's rows have.
    var columnCount: Int32 { sqlite3_column_count(statement) }

    func columnType(_ index: Int32) -> Int32 {
        sqlite3_column_type(statement, index)
    }

    /// Column `index` as an integer; throws `.corrupt` when it does not hold one.
    func int64(_ index: Int32, operation: String) throws(StorageError) -> Int64 {
        guard columnType(index) == SQLITE_INTEGER else {
            throw corruptColumn(index, expected: "INTEGER", operation: operation)
        }
        return sqlite3_column_int64(statement, index)
    }

    /// Column `index` as text; throws `.corrupt` when it does not hold text.
    func text(_ index: Int32, operation: String) throws(StorageError) -> String {
        guard columnType(index) == SQLITE_TEXT, let pointer = sqlite3_column_text(statement, index) else {
            throw corruptColumn(index, expected: "TEXT", operation: operation)
        }
        let count = Int(sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// Column `index` converted to text by SQLite, or `nil` for NULL (for PRAGMA results).
    func anyText(_ index: Int32) -> String? {
        guard columnType(index) != SQLITE_NULL, let pointer = sqlite3_column_text(statement, index) else { return nil }
        return String(cString: pointer)
    }

    /// A copy of column `index` that outlives the row and keeps its storage class, to bind
    /// back into a later statement (a key-order walk's position).
    /// - Throws: ``StorageError`` when SQLite cannot allocate the copy.
    func value(_ index: Int32, operation: String) throws(StorageError) -> SQLiteValue {
        guard let copy = sqlite3_value_dup(sqlite3_column_value(statement, index)) else {
            throw StorageError(
                kind: .other, engine: "sqlite", operation: operation, code: SQLITE_NOMEM,
                message: "out of memory copying column #\(index)", statement: sql)
        }
        return SQLiteValue(copy)
    }

    /// Binds a copied value to parameter `index` with its own storage class; SQLite copies it.
    func bind(_ index: Int32, value: SQLiteValue, operation: String) throws(StorageError) {
        try check(sqlite3_bind_value(statement, index, value.handle), operation: operation)
    }

    /// Column `index` as bytes; throws `.corrupt` when it does not hold a blob.
    func blob(_ index: Int32, operation: String) throws(StorageError) -> [UInt8] {
        guard columnType(index) == SQLITE_BLOB else {
            throw corruptColumn(index, expected: "BLOB", operation: operation)
        }
        let count = Int(sqlite3_column_bytes(statement, index))
        guard count > 0, let pointer = sqlite3_column_blob(statement, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func corruptColumn(_ index: Int32, expected: String, operation: String) -> StorageError {
        let name = sqlite3_column_name(statement, index).map { String(cString: $0) } ?? "#\(index)"
        return StorageError(
            kind: .corrupt, engine: "sqlite", operation: operation,
            message: "column \(name) holds \(Self.typeName(columnType(index))), expected \(expected)",
            statement: sql)
    }

    private static func typeName(_ type: Int32) -> String {
        switch type {
        case SQLITE_INTEGER: "INTEGER"
        case SQLITE_FLOAT: "REAL"
        case SQLITE_TEXT: "TEXT"
        case SQLITE_BLOB: "BLOB"
        default: "NULL"
        }
    }

    private func check(_ code: Int32, operation: String) throws(StorageError) {
        guard code == SQLITE_OK else {
            throw SQLiteConnection.error(database: database, code: code, operation: operation, statement: sql)
        }
    }
}

/// A column value copied out of a row (`sqlite3_value_dup`): a protected value that
/// stays valid after the statement moved on, freed with this object.
final class SQLiteValue: @unchecked Sendable {  // @unchecked: immutable once made; SQLite only reads it when binding
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        sqlite3_value_free(handle)
    }
}
