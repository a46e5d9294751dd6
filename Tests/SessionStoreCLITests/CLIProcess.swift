import CSessionStoreSQLite
import Foundation
import SessionStoreTestSupport
import SessionStoreTesting
import Logging
import SessionStore
import SessionStoreSQLite
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built `session-store` executable, run as a child process the way an operator runs it.
enum CLI {
    /// What one run printed and how it ended.
    struct Run: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String

        /// Standard output parsed as a JSON object.
        func json() throws -> [String: Any] {
            let value = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
            return try #require(value as? [String: Any], "not a JSON object: \(stdout)")
        }

        var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// The executable's path: built beside this test bundle.
    static var path: String? {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for directory in candidates {
            let path = directory.appendingPathComponent("session-store").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// A started child whose output goes to files in `directory`.
    final class Child: Sendable {
        let process: ChildProcess
        let stdoutPath: String
        let stderrPath: String

        init(_ arguments: [String], directory: URL) throws {
            let name = UUID().uuidString
            stdoutPath = directory.appendingPathComponent("\(name).out").path
            stderrPath = directory.appendingPathComponent("\(name).err").path
            guard FileManager.default.createFile(atPath: stdoutPath, contents: nil),
                  FileManager.default.createFile(atPath: stderrPath, contents: nil) else {
                throw CLIFixtureError(message: "cannot create output files in \(directory.path)")
            }
            let path = try #require(CLI.path, "session-store not built: run swift build --build-tests")
            process = try ChildProcess.spawn(path, arguments, stdout: .file(stdoutPath), stderr: .file(stderrPath))
        }

        /// What the child wrote to standard error so far.
        func stderrSoFar() throws -> String {
            try String(contentsOfFile: stderrPath, encoding: .utf8)
        }

        /// Waits for the child to end (off the cooperative pool) and returns its run.
        func wait() async throws -> Run {
            let ended = await process.wait()
            return Run(
                status: ended.status,
                stdout: try String(contentsOfFile: stdoutPath, encoding: .utf8),
                stderr: try String(contentsOfFile: stderrPath, encoding: .utf8))
        }

        /// SIGKILLs the child.
        func kill() {
            process.kill()
        }
    }

    /// Runs `session-store arguments` to completion.
    static func run(_ arguments: [String], in directory: URL) async throws -> Run {
        try await Child(arguments, directory: directory).wait()
    }
}

struct CLIFixtureError: Error {
    let message: String
}

/// A fresh directory for one test's files; removed afterwards whether the test passed or not.
func withScratchDirectory(_ body: (URL) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("session-store-cli-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    do {
        try await body(directory)
    } catch {
        try FileManager.default.removeItem(at: directory)
        throw error
    }
    try FileManager.default.removeItem(at: directory)
}

/// The current wall-clock time in milliseconds, as the CLI reads it.
func nowMilliseconds() -> Int64 { SystemSessionClock().now() }

/// Milliseconds in an hour.
let hour: Int64 = 3_600_000

/// Runs SQL on its own raw connection, returning the first column of every row as text.
@discardableResult
func rawSQL(_ path: String, _ sql: String) throws -> [String?] {
    var database: OpaquePointer?
    guard sqlite3_open(path, &database) == SQLITE_OK, let database else {
        throw CLIFixtureError(message: "cannot open \(path)")
    }
    defer { sqlite3_close_v2(database) }
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(database, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
        throw CLIFixtureError(message: String(cString: sqlite3_errmsg(database)))
    }
    defer { sqlite3_finalize(statement) }
    var rows: [String?] = []
    while true {
        let code = sqlite3_step(statement)
        if code == SQLITE_DONE { break }
        guard code == SQLITE_ROW else { throw CLIFixtureError(message: String(cString: sqlite3_errmsg(database))) }
        rows.append(sqlite3_column_text(statement, 0).map { String(cString: $0) })
    }
    return rows
}

/// Runs a script of `;`-separated statements on its own connection, as `sqlite3 FILE < script` would.
func runScript(_ path: String, _ script: String) throws {
    var database: OpaquePointer?
    guard sqlite3_open(path, &database) == SQLITE_OK, let database else {
        throw CLIFixtureError(message: "cannot open \(path)")
    }
    defer { sqlite3_close_v2(database) }
    var message: UnsafeMutablePointer<CChar>?
    guard sqlite3_exec(database, script, nil, nil, &message) == SQLITE_OK else {
        let text = message.map { String(cString: $0) } ?? "unknown error"
        sqlite3_free(message)
        throw CLIFixtureError(message: text)
    }
}

/// A SQLite file in `directory` and its URL, with rows written through a real backend.
struct SQLiteFixture {
    let path: String
    let url: String

    init(_ directory: URL, name: String = "sessions.db", options: String = "") {
        path = directory.appendingPathComponent(name).path
        url = "sqlite://\(path)" + (options.isEmpty ? "" : "?" + options)
    }

    /// Opens the backend the URL names, runs `body`, closes it.
    func withBackend<T>(_ body: (SQLiteBackend) async throws -> T) async throws -> T {
        var parsed = try StoreURL(url)
        _ = try SessionStoreConfiguration(url: &parsed)
        let backend = try SQLiteBackend(configuration: try SQLiteConfiguration(url: &parsed))
        let result: T
        do {
            result = try await body(backend)
        } catch {
            try await backend.close()
            throw error
        }
        try await backend.close()
        return result
    }
}

/// A record whose data is a valid encoding of one attribute.
func sessionRecord(_ value: String, version: Int64 = 1, createdAt: Int64, expiresAt: Int64) -> SessionRecord {
    SessionRecord(
        data: AttributeCodec.encode(["user": Array("\"\(value)\"".utf8)]), version: version,
        createdAt: createdAt, expiresAt: expiresAt)
}

/// A logger for stores the tests open: only warnings and errors, so test output stays quiet.
let quietLogger: Logger = {
    var logger = Logger(label: "session-store-cli-tests")
    logger.logLevel = .warning
    return logger
}()
