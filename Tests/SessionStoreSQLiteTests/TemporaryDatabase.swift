import CSessionStoreSQLite
import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite

/// A fresh directory holding one test's database file; removed by ``remove()``.
struct TemporaryDatabase {
    let directory: URL
    let path: String

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("sessionstore-sqlite-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("sessions.db").path
    }

    /// A configuration for this database with small, test-friendly settings.
    func configuration(_ change: (inout SQLiteConfiguration) -> Void = { _ in }) -> SQLiteConfiguration {
        var configuration = SQLiteConfiguration(path: path)
        configuration.readerCount = 2
        change(&configuration)
        return configuration
    }

    func open(_ change: (inout SQLiteConfiguration) -> Void = { _ in }) throws -> SQLiteBackend {
        try SQLiteBackend(configuration: configuration(change))
    }

    func remove() throws {
        try FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` on a fresh temporary database and removes it afterwards.
func withTemporaryDatabase(_ body: (TemporaryDatabase) async throws -> Void) async throws {
    let database = try TemporaryDatabase()
    do {
        try await body(database)
    } catch {
        try database.remove()
        throw error
    }
    try database.remove()
}

/// Runs SQL on its own raw connection (outside the backend), which waits up to
/// `busyTimeoutMilliseconds` for locks, and returns the first column of every row as text.
@discardableResult
func rawSQL(_ path: String, _ sql: String, busyTimeoutMilliseconds: Int32 = 0) throws -> [String?] {
    var database: OpaquePointer?
    guard sqlite3_open(path, &database) == SQLITE_OK, let database else {
        throw RawSQLiteError(message: "cannot open \(path)")
    }
    defer { sqlite3_close_v2(database) }
    guard sqlite3_busy_timeout(database, busyTimeoutMilliseconds) == SQLITE_OK else {
        throw RawSQLiteError(message: String(cString: sqlite3_errmsg(database)))
    }
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
        throw RawSQLiteError(message: String(cString: sqlite3_errmsg(database)))
    }
    defer { sqlite3_finalize(statement) }
    var rows: [String?] = []
    while true {
        let code = sqlite3_step(statement)
        if code == SQLITE_DONE { break }
        guard code == SQLITE_ROW else { throw RawSQLiteError(message: String(cString: sqlite3_errmsg(database))) }
        rows.append(sqlite3_column_text(statement, 0).map { String(cString: $0) })
    }
    return rows
}

/// Runs a script of several statements on its own raw connection (outside the backend).
func rawScript(_ path: String, _ script: String) throws {
    var database: OpaquePointer?
    guard sqlite3_open(path, &database) == SQLITE_OK, let database else {
        throw RawSQLiteError(message: "cannot open \(path)")
    }
    defer { sqlite3_close_v2(database) }
    guard sqlite3_exec(database, script, nil, nil, nil) == SQLITE_OK else {
        throw RawSQLiteError(message: String(cString: sqlite3_errmsg(database)))
    }
}

struct RawSQLiteError: Error {
    let message: String
}

func record(_ text: String, version: Int64 = 1, createdAt: Int64 = 1_000, expiresAt: Int64 = 10_000) -> SessionRecord {
    SessionRecord(data: Array(text.utf8), version: version, createdAt: createdAt, expiresAt: expiresAt)
}
