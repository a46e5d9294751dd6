import Foundation
import Logging
import SessionStoreCore
@testable import SessionStoreSQLite
import SessionStoreTestSupport
import SessionStoreTesting
import Testing

/// What happens around a store's life: its file removed or replaced under it, its
/// descriptors after shutdown, cancelled writes, and configuration checked before any file
/// is made.
@Suite("SQLite lifecycle")
struct SQLiteLifecycleTests {
    /// Saves one session; `.fileMoved` is expected once the file is gone.
    func saveOne(_ store: SessionStore) async throws -> Session {
        var session = store.newSession()
        try session.set("user", "alice")
        try await store.save(&session)
        return session
    }

    @Test(arguments: [["sessions.db"], ["sessions.db", "sessions.db-wal", "sessions.db-shm"]])
    func deletedDatabaseFileFailsSavesWithATypedErrorAndALogLine(_ removed: [String]) async throws {
        try await withTemporaryDatabase { database in
            let log = CapturedLog()
            let store = try SessionStore(backend: try SQLiteBackend(configuration: database.configuration(), logger: log.logger))
            var kept = try await saveOne(store)
            for name in removed {
                try FileManager.default.removeItem(at: database.directory.appendingPathComponent(name))
            }
            let error = await #expect(throws: StorageError.self) { _ = try await saveOne(store) }
            #expect(error?.kind == .fileMoved)
            try kept.set("more", 1)
            let updateError = await #expect(throws: StorageError.self) { try await store.save(&kept) }
            #expect(updateError?.kind == .fileMoved, "updates fail too, nothing reports success")
            #expect(log.lines(at: .error).count == 1, "one error line, not one per save: \(log.lines(at: .error))")
            try await store.shutdown()
        }
    }

    @Test func replacedDatabaseFileFailsSaves() async throws {
        try await withTemporaryDatabase { database in
            let store = try SessionStore(backend: try database.open())
            _ = try await saveOne(store)
            let moved = database.path + ".old"
            try FileManager.default.moveItem(atPath: database.path, toPath: moved)
            try FileManager.default.copyItem(atPath: moved, toPath: database.path)
            let error = await #expect(throws: StorageError.self) { _ = try await saveOne(store) }
            #expect(error?.kind == .fileMoved)
            try await store.shutdown()
        }
    }

    @Test func shutdownLeavesNoDescriptorOfTheDatabaseFilesOpen() async throws {
        try await withTemporaryDatabase { database in
            let store = try SessionStore(backend: try database.open { $0.readerCount = 4 })
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        let session = try await saveOne(store)
                        _ = try await store.load(session.id)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try Self.openDescriptors(under: database.directory.path) > 0, "the store had its files open")
            try await store.shutdown()
            #expect(try Self.openDescriptors(under: database.directory.path) == 0, "every connection closed before shutdown returned")
        }
    }

    #if os(Linux)
    @Test func shutdownRemovesTheReaderLockFile() async throws {
        try await withTemporaryDatabase { database in
            let lockFile = database.path + "-readers"
            let store = try SessionStore(backend: try database.open())
            _ = try await saveOne(store)
            #expect(FileManager.default.fileExists(atPath: lockFile), "the backend announced itself")
            try await store.shutdown()
            #expect(!FileManager.default.fileExists(atPath: lockFile))
            #expect(FileManager.default.fileExists(atPath: database.path))
        }
    }

    @Test func theReaderLockFileStaysUntilTheLastBackendOnTheDatabaseCloses() async throws {
        try await withTemporaryDatabase { database in
            let lockFile = database.path + "-readers"
            let first = try database.open()
            let second = try database.open()
            try await first.close()
            #expect(FileManager.default.fileExists(atPath: lockFile), "the second backend still holds it")
            let third = try database.open()
            try await second.close()
            #expect(FileManager.default.fileExists(atPath: lockFile), "the third backend still holds it")
            try await third.close()
            #expect(!FileManager.default.fileExists(atPath: lockFile))
        }
    }
    #endif

    #if os(Linux)
    /// Operators find the writer and the checkpointer by name in `top -H`, `perf` and
    /// `/proc` (a name Linux refuses leaves the thread under its starter's name).
    @Test func theWriterAndCheckpointerThreadsCarryTheirNames() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let wanted: Set = [SQLiteThreadName.writer, SQLiteThreadName.checkpointer]
            // A thread takes its name once it runs; this waits for that, not for a speed.
            var names = try Self.threadNames()
            for _ in 0..<1000 where !wanted.isSubset(of: names) {
                try await Task.sleep(for: .milliseconds(10))
                names = try Self.threadNames()
            }
            #expect(wanted.isSubset(of: names), "threads: \(names)")
            try await backend.close()
        }
    }

    /// The names of this process's threads.
    static func threadNames() throws -> Set<String> {
        var names: Set<String> = []
        for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") {
            guard let comm = FileManager.default.contents(atPath: "/proc/self/task/\(task)/comm") else {
                continue  // The thread ended since the listing (other tests run beside this one).
            }
            names.insert(String(decoding: comm, as: UTF8.self).trimmingCharacters(in: .newlines))
        }
        return names
    }
    #endif

    @Test func aCancelledWriteThatIsStillQueuedNeverRuns() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let key = SessionKey(value: SessionID.generate().text)
            backend.writer.pauseForTesting()
            let write = Task { try await backend.insert(key, record("x")) }
            while backend.writer.pendingCount == 0 { await Task.yield() }
            write.cancel()
            let result = await write.result
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(backend.writer.pendingCount == 0, "the job left the queue")
            backend.writer.resumeForTesting()
            #expect(try await backend.insert(key, record("y")), "the cancelled insert never ran")
            try await backend.close()
        }
    }

    @Test(arguments: [
        { (configuration: inout SQLiteConfiguration) in configuration.readerCount = 0 },
        { configuration in configuration.readerCount = 65 },
        { configuration in configuration.maxBatchSize = 0 },
        { configuration in configuration.mmapSize = -1 },
    ] as [@Sendable (inout SQLiteConfiguration) -> Void])
    func anInvalidConfigurationInCodeThrowsBeforeTheFileIsCreated(
        _ change: @Sendable (inout SQLiteConfiguration) -> Void
    ) async throws {
        try await withTemporaryDatabase { database in
            let error = #expect(throws: SessionStoreError.self) { _ = try database.open(change) }
            #expect(error?.code == .invalidConfiguration)
            #expect(!FileManager.default.fileExists(atPath: database.path), "no database file was created")
        }
    }

    @Test func anUnknownOptionIsRejectedBeforeTheFileIsCreated() async throws {
        try await withTemporaryDatabase { database in
            await #expect(throws: SessionStoreError.self) {
                _ = try await SessionStore.open("sqlite://\(database.path)?frobnicate=1", backends: [.sqlite])
            }
            #expect(!FileManager.default.fileExists(atPath: database.path), "no database file was created")
        }
    }

    @Test(arguments: ["%00.evil", "%0a", "%1b[31m", "%7f"])
    func aControlCharacterInThePathIsRejected(_ suffix: String) async throws {
        try await withTemporaryDatabase { database in
            let error = await #expect(throws: SessionStoreError.self) {
                _ = try await SessionStore.open("sqlite://\(database.path)\(suffix)", backends: [.sqlite])
            }
            #expect(error?.code == .invalidConfiguration)
            #expect(!FileManager.default.fileExists(atPath: database.path), "the truncated path was not opened")
        }
    }

    /// Descriptors of this process whose target lies under `directory`.
    static func openDescriptors(under directory: String) throws -> Int {
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        var count = 0
        for descriptor in descriptors {
            // A descriptor listed a moment ago may be closed by now: that one is not open.
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)") else {
                continue
            }
            if target.hasPrefix(directory) { count += 1 }
        }
        return count
    }
}
