import CSessionStoreSQLite
import Foundation
import SessionStoreTestSupport
import SessionStoreTesting
import SessionStore
@testable import SessionStoreSQLite
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Mounts for the disk-trouble tests: a size-limited tmpfs and read-only bind mounts.
/// They need root (or CAP_SYS_ADMIN); tests that need them are disabled when mounting is
/// refused, and a test beside each makes the same fault without a mount.
enum Mounts {
    static let available: Bool = {
        guard let directory = try? TemporaryDatabase() else { return false }
        defer { _ = try? directory.remove() }
        guard (try? run("/bin/mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", directory.directory.path)) != nil else {
            return false
        }
        return (try? run("/bin/umount", directory.directory.path)) != nil
    }()

    static func run(_ tool: String, _ arguments: String...) throws {
        let ended = try ChildProcess.spawn(tool, arguments).waitBlocking()
        guard ended == .exited(0) else {
            throw RawSQLiteError(message: "\(tool) \(arguments.joined(separator: " ")) ended with \(ended)")
        }
    }
}

/// Runs one statement on the backend's writer connection, between its writes; for
/// making a fault from inside SQLite (size cap, query-only) and lifting it again.
func onWriter(_ backend: SQLiteBackend, _ sql: String) async throws {
    _ = try await backend.writer.submit(.alone, operation: "test") { connection in
        try connection.execute(sql, operation: "test")
        return .changes(0)
    }
}

func storageError(_ body: () async throws -> Void) async -> StorageError? {
    do {
        try await body()
    } catch let error as StorageError {
        return error
    } catch {
        Issue.record("expected a StorageError, got \(error)")
        return nil
    }
    return nil
}

/// Saves new sessions of about 4 KiB until one fails; returns the saved ones and the error.
func fill(_ store: SessionStore, limit: Int) async throws -> (saved: [Session], error: (any Error)?) {
    var saved: [Session] = []
    for index in 0..<limit {
        var session = store.newSession()
        try session.set("blob", String(repeating: "\(index % 10)", count: 4000))
        do {
            try await store.save(&session)
        } catch {
            return (saved, error)
        }
        saved.append(session)
    }
    return (saved, nil)
}

@Suite("SQLite disk and lock faults", .serialized)
struct SQLiteFaultTests {
    @Test func exclusiveLockHeldByAnotherProcessGivesBusyThenWritesResume() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.busyTimeout = .milliseconds(200) }
            let store = try SessionStore(backend: backend)
            var before = store.newSession()
            try before.set("user", "alice")
            try await store.save(&before)

            let output = try ChildProcess.makePipe()
            let holder = try CrashWriter.launch(["lock", database.path, "30"], output: .descriptor(output.write))
            close(output.write)
            defer { close(output.read) }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(output.read, &buffer, buffer.count)
            let greeting = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
            #expect(greeting.hasPrefix("locked"), "the other process holds BEGIN EXCLUSIVE")

            var blocked = store.newSession()
            try blocked.set("user", "bob")
            let started = ContinuousClock.now
            let error = await storageError { try await store.save(&blocked) }
            #expect(error?.kind == .busy)
            #expect(ContinuousClock.now - started >= .milliseconds(180), "waited for the busy timeout first")
            #expect(!blocked.isStored, "a failed save leaves the session unsaved")
            #expect(try await store.load(before.id).isStored, "reads go on beside the lock (WAL)")

            // The lock holder crashes: the lock goes with it.
            CrashWriter.kill(holder)
            #expect(try await store.save(&blocked) == .created, "the same save succeeds once the lock is gone")
            #expect(try await store.load(blocked.id).isStored)
            try await store.shutdown()
            #expect(try integrityCheck(database.path) == "ok")
        }
    }

    @Test(.enabled(if: Mounts.available, "mounting is not permitted here"))
    func readOnlyFilesystemGivesReadOnlyThenOpensOnceWritable() async throws {
        try await withTemporaryDatabase { database in
            let store = try SessionStore(backend: try database.open())
            var session = store.newSession()
            try session.set("user", "alice")
            try await store.save(&session)
            try await store.shutdown()

            // The same directory again, through a read-only bind mount: root cannot write it.
            let view = database.directory.path + "-ro"
            try FileManager.default.createDirectory(atPath: view, withIntermediateDirectories: false)
            defer {
                _ = try? Mounts.run("/bin/umount", view)
                _ = try? FileManager.default.removeItem(atPath: view)
            }
            try Mounts.run("/bin/mount", "--bind", database.directory.path, view)
            try Mounts.run("/bin/mount", "-o", "remount,bind,ro", view)
            var configuration = database.configuration()
            configuration.path = view + "/sessions.db"
            let error = #expect(throws: StorageError.self) { _ = try SQLiteBackend(configuration: configuration) }
            #expect(error?.kind == .readOnly)

            try Mounts.run("/bin/mount", "-o", "remount,bind,rw", view)
            let reopened = try SessionStore(backend: try SQLiteBackend(configuration: configuration))
            #expect(try await reopened.load(session.id).isStored, "the data is intact and the store opens")
            var more = reopened.newSession()
            try more.set("user", "bob")
            #expect(try await reopened.save(&more) == .created)
            try await reopened.shutdown()
        }
    }

    @Test func databaseTurnedReadOnlyWhileOpenGivesReadOnlyThenWritesResume() async throws {
        // Simulated inside SQLite: `PRAGMA query_only` makes the writer connection refuse
        // writes with SQLITE_READONLY, as a file that became unwritable does.
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let store = try SessionStore(backend: backend)
            var session = store.newSession()
            try session.set("user", "alice")
            try await store.save(&session)
            try await onWriter(backend, "PRAGMA query_only = 1")
            try session.set("user", "mallory")
            let error = await storageError { try await store.save(&session) }
            #expect(error?.kind == .readOnly)
            #expect(try await store.load(session.id).get("user", as: String.self) == "alice", "nothing was written")
            try await onWriter(backend, "PRAGMA query_only = 0")
            #expect(try await store.save(&session) == .updated, "the same save succeeds once writable")
            try await store.shutdown()
        }
    }

    @Test(.enabled(if: Mounts.available, "mounting is not permitted here"))
    func fullDiskGivesFullThenSavesResumeOnceSpaceIsThere() async throws {
        try await withTemporaryDatabase { database in
            try Mounts.run("/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", database.directory.path)
            do {
                try await fillTheDiskThenFreeSpace(database)
            } catch {
                try Mounts.run("/bin/umount", database.directory.path)
                throw error
            }
            // shutdown() closed every connection: nothing holds the mount any more.
            try Mounts.run("/bin/umount", database.directory.path)
        }
    }

    private func fillTheDiskThenFreeSpace(_ database: TemporaryDatabase) async throws {
        let store = try SessionStore(backend: try database.open())
        let (saved, error) = try await fill(store, limit: 2000)
        #expect((error as? StorageError)?.kind == .full, "the save that found the disk full: \(String(describing: error))")
        #expect(saved.count > 10 && saved.count < 2000)

        try Mounts.run("/bin/mount", "-o", "remount,size=16m", database.directory.path)
        var after = store.newSession()
        try after.set("user", "alice")
        #expect(try await store.save(&after) == .created, "saves work again once there is space")
        for session in saved {
            #expect(try await store.load(session.id).isStored, "every save reported before the disk filled is kept")
        }
        try await store.shutdown()
        #expect(try integrityCheck(database.path) == "ok")
    }

    @Test func databaseAtItsSizeCapGivesFullThenSavesResumeOnceRaised() async throws {
        // A size-limited file: `PRAGMA max_page_count` makes SQLite return SQLITE_FULL
        // exactly as a full disk does.
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let store = try SessionStore(backend: backend)
            try await onWriter(backend, "PRAGMA max_page_count = 64")
            let (saved, error) = try await fill(store, limit: 2000)
            #expect((error as? StorageError)?.kind == .full, "the save that hit the cap: \(String(describing: error))")
            #expect(saved.count > 5 && saved.count < 2000)

            try await onWriter(backend, "PRAGMA max_page_count = 1000000")
            var after = store.newSession()
            try after.set("user", "alice")
            #expect(try await store.save(&after) == .created, "saves work again once the cap is raised")
            for session in saved {
                #expect(try await store.load(session.id).isStored, "every save reported before the cap is kept")
            }
            try await store.shutdown()
            #expect(try integrityCheck(database.path) == "ok")
        }
    }
}
