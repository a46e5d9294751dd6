// A child process for the SQLite crash and lock tests. Not a product.
//
//   session-store-crash-writer save <db-path> <report-path> <normal|full>
//       Saves sessions from 8 tasks as fast as it can, group commit on. After each
//       `save` returned, appends "<id> <step>\n" to <report-path> with one write(2),
//       so a line in the report means "the store told this process it committed".
//       Each session is created (step 1) and then updated twice (steps 2, 3), so both
//       inserts and updates are reported. Runs until killed.
//
//   session-store-crash-writer set-data <db-path> <text>
//       Sets every row's data of the `sessions` table to <text> and increments its version,
//       on a raw connection, then exits: another process's commit, for the load cache test.
//
//   session-store-crash-writer wal-index-holder <db-path>
//       Prints the process id holding SQLite's "a connection is open" lock on the WAL index
//       (byte 128 of `<db-path>-shm`, shared by every process with a connection), or 0 when
//       none does: a process that lost it lets the next one to open the database reset the
//       WAL index under its mappings.
//
//   session-store-crash-writer lock <db-path> <seconds>
//       Holds `BEGIN EXCLUSIVE` on the database for <seconds>, printing "locked" once it
//       holds the lock, then rolls back and exits (or is killed earlier).
import CSessionStoreSQLite
import Foundation
import SessionStoreCore
import SessionStoreSQLite

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

/// Appends one line to the report with a single write(2): the kernel has it once this
/// returns, so a SIGKILL right after cannot lose it.
final class Report: Sendable {
    let descriptor: Int32

    init(path: String) {
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if descriptor < 0 { fail("cannot open report file \(path)") }
    }

    func append(_ line: String) {
        var bytes = Array((line + "\n").utf8)
        let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written != bytes.count { fail("short write to the report file") }
    }
}

func runSaver(databasePath: String, reportPath: String, synchronous: SQLiteConfiguration.Synchronous) async {
    var configuration = SQLiteConfiguration(path: databasePath)
    configuration.synchronous = synchronous
    configuration.groupCommit = true
    configuration.readerCount = 2
    let store: SessionStore
    do {
        store = try SessionStore(backend: try SQLiteBackend(configuration: configuration))
    } catch {
        fail("cannot open the database: \(error)")
    }
    let report = Report(path: reportPath)
    await withTaskGroup(of: Void.self) { group in
        for worker in 0..<8 {
            group.addTask {
                var count = 0
                while true {
                    count += 1
                    do {
                        var session = store.newSession()
                        try session.set("payload", "worker \(worker) session \(count) " + String(repeating: "x", count: 100))
                        try session.set("step", 1)
                        try await store.save(&session)
                        report.append("\(session.id.text) 1")
                        for step in 2...3 {
                            try session.set("step", step)
                            let outcome = try await store.save(&session)
                            guard outcome == .updated else { fail("update gave \(outcome)") }
                            report.append("\(session.id.text) \(step)")
                        }
                    } catch {
                        fail("save failed: \(error)")
                    }
                }
            }
        }
    }
}

func runLock(databasePath: String, seconds: Double) -> Never {
    var database: OpaquePointer?
    guard sqlite3_open(databasePath, &database) == SQLITE_OK, let database else { fail("cannot open \(databasePath)") }
    guard sqlite3_exec(database, "BEGIN EXCLUSIVE", nil, nil, nil) == SQLITE_OK else {
        fail("BEGIN EXCLUSIVE failed: \(String(cString: sqlite3_errmsg(database)))")
    }
    // The write lock is held from BEGIN EXCLUSIVE on, in WAL mode too.
    FileHandle.standardOutput.write(Data("locked\n".utf8))
    usleep(UInt32(seconds * 1_000_000))
    sqlite3_exec(database, "ROLLBACK", nil, nil, nil)
    sqlite3_close_v2(database)
    exit(0)
}

func runSetData(databasePath: String, text: String) -> Never {
    var database: OpaquePointer?
    guard sqlite3_open(databasePath, &database) == SQLITE_OK, let database else { fail("cannot open \(databasePath)") }
    guard sqlite3_busy_timeout(database, 5_000) == SQLITE_OK else { fail("busy_timeout failed") }
    var statement: OpaquePointer?
    let sql = "UPDATE sessions SET data = CAST(?1 AS BLOB), version = version + 1"
    guard sqlite3_prepare_v2(database, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
        fail("prepare failed: \(String(cString: sqlite3_errmsg(database)))")
    }
    guard sqlite3_bind_text(statement, 1, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self)) == SQLITE_OK,
          sqlite3_step(statement) == SQLITE_DONE
    else { fail("update failed: \(String(cString: sqlite3_errmsg(database)))") }
    guard sqlite3_finalize(statement) == SQLITE_OK, sqlite3_close(database) == SQLITE_OK else { fail("close failed") }
    exit(0)
}

func printWALIndexHolder(databasePath: String) -> Never {
    let descriptor = open(databasePath + "-shm", O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { fail("cannot open the WAL index: errno \(errno)") }
    var lock = flock()
    lock.l_type = Int16(F_WRLCK)
    lock.l_whence = Int16(SEEK_SET)
    lock.l_start = 128
    lock.l_len = 1
    guard fcntl(descriptor, F_GETLK, &lock) == 0 else { fail("F_GETLK failed: errno \(errno)") }
    print(lock.l_type == Int16(F_UNLCK) ? 0 : lock.l_pid)
    exit(0)
}

/// Exits when the test process that started this one is gone (killed, or stopped by a
/// closed pipe): an orphaned saver would otherwise write at full speed until the machine
/// restarts. Checked every 100 ms on a thread of its own.
func exitWithParent() {
    let parent = getppid()
    let watchdog = Thread {
        while true {
            usleep(100_000)
            if getppid() != parent { exit(3) }
        }
    }
    watchdog.start()
}

exitWithParent()
let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "save" where arguments.count == 5:
    guard let synchronous = SQLiteConfiguration.Synchronous(rawValue: arguments[4]) else { fail("bad synchronous level") }
    await runSaver(databasePath: arguments[2], reportPath: arguments[3], synchronous: synchronous)
case "set-data" where arguments.count == 4:
    runSetData(databasePath: arguments[2], text: arguments[3])
case "wal-index-holder" where arguments.count == 3:
    printWALIndexHolder(databasePath: arguments[2])
case "lock" where arguments.count == 4:
    guard let seconds = Double(arguments[3]) else { fail("bad seconds") }
    runLock(databasePath: arguments[2], seconds: seconds)
default:
    fail("usage: session-store-crash-writer save <db> <report> <normal|full> | set-data <db> <text> | wal-index-holder <db> | lock <db> <seconds>")
}
