import CSessionStoreSQLite
import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite
import Testing

@Suite("SQLiteBackend")
struct SQLiteBackendTests {
    // MARK: Opening

    @Test func invalidTableNameIsRejected() async throws {
        try await withTemporaryDatabase { database in
            let error = #expect(throws: SessionStoreError.self) {
                _ = try database.open { $0.table = "sessions; DROP TABLE x" }
            }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test func fileThatIsNotADatabaseIsCorrupt() async throws {
        try await withTemporaryDatabase { database in
            let garbage = String(repeating: "this is not a database file\n", count: 100)
            try garbage.write(toFile: database.path, atomically: true, encoding: .utf8)
            let error = #expect(throws: StorageError.self) { _ = try database.open() }
            #expect(error?.kind == .corrupt)
            #expect(error?.engine == "sqlite")
            #expect(error?.operation == "open")
        }
    }

    @Test func missingDirectoryCannotOpen() async throws {
        try await withTemporaryDatabase { database in
            var configuration = database.configuration()
            configuration.path = database.directory.appendingPathComponent("no/such/dir/s.db").path
            let error = #expect(throws: StorageError.self) { _ = try SQLiteBackend(configuration: configuration) }
            #expect(error?.kind == .cannotOpen)
        }
    }

    @Test(.enabled(if: getuid() != 0, "root can write a read-only file"))
    func readOnlyFileIsReported() async throws {
        try await withTemporaryDatabase { database in
            try await database.open().close()
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: database.path)
            let error = #expect(throws: StorageError.self) { _ = try database.open() }
            #expect(error?.kind == .readOnly)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: database.path)
        }
    }

    @Test func otherKeyLayoutIsASchemaError() async throws {
        try await withTemporaryDatabase { database in
            try await database.open { $0.keyLayout = .idOnly }.close()
            let error = #expect(throws: StorageError.self) { _ = try database.open { $0.keyLayout = .checksumAndID } }
            #expect(error?.kind == .schema)
            #expect(error?.message.contains("sessions") == true)
        }
    }

    @Test func newerSchemaVersionIsASchemaError() async throws {
        try await withTemporaryDatabase { database in
            try await database.open().close()
            try rawSQL(database.path, "UPDATE session_store_schema SET version = 99 WHERE table_name = 'sessions'")
            let error = #expect(throws: StorageError.self) { _ = try database.open() }
            #expect(error?.kind == .schema)
            #expect(error?.message.contains("99") == true)
        }
    }

    @Test func foreignTableIsASchemaError() async throws {
        try await withTemporaryDatabase { database in
            try rawSQL(database.path, "CREATE TABLE sessions (id INTEGER PRIMARY KEY, payload TEXT)")
            let error = #expect(throws: StorageError.self) { _ = try database.open() }
            #expect(error?.kind == .schema)
        }
    }

    @Test func twoTablesLiveInOneFile() async throws {
        try await withTemporaryDatabase { database in
            let first = try database.open { $0.table = "first" }
            let second = try database.open { $0.table = "second"; $0.keyLayout = .idOnly }
            let key = SessionKey(value: "same-id")
            #expect(try await first.insert(key, record("one")))
            #expect(try await second.insert(key, record("two")))
            #expect(try await first.load(key, now: 2_000)?.data == Array("one".utf8))
            #expect(try await second.load(key, now: 2_000)?.data == Array("two".utf8))
            try await first.close()
            try await second.close()
        }
    }

    @Test func walModeIsOn() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try rawSQL(database.path, "PRAGMA journal_mode") == ["wal"])
            try await backend.close()
        }
    }

    @Test func aNewTableHasNoIndexBesideItsKeyButThePartialOwnerIndex() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let indexes = try rawSQL(database.path, "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'")
            try await backend.close()
            // The rowid is the key's slot; cleanup walks it in key order. Only bound rows
            // (an owner) are in the owner index, so anonymous sessions cost no index write.
            #expect(indexes.count == 1 && indexes[0]?.hasSuffix("WHERE owner IS NOT NULL") == true, "\(indexes)")
        }
    }

    // MARK: Group commit

    @Test func concurrentInsertsShareATransaction() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            backend.writer.pauseForTesting()
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<64 {
                    group.addTask { try await backend.insert(SessionKey(value: "id-\(index)"), record("\(index)")) }
                }
                while backend.writer.pendingCount < 64 { await Task.yield() }
                backend.writer.resumeForTesting()
                for try await inserted in group { #expect(inserted) }
            }
            #expect(backend.transactionCount == 1)
            for index in 0..<64 {
                #expect(try await backend.load(SessionKey(value: "id-\(index)"), now: 2_000)?.data == Array("\(index)".utf8))
            }
            try await backend.close()
        }
    }

    @Test func unpausedConcurrentInsertsUseFewerTransactionsThanWrites() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.synchronous = .full }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<64 {
                    group.addTask { try await backend.insert(SessionKey(value: "id-\(index)"), record("\(index)")) }
                }
                for try await inserted in group { #expect(inserted) }
            }
            #expect(backend.transactionCount < 64)
            #expect(try rawSQL(database.path, "SELECT count(*) FROM sessions") == ["64"])
            try await backend.close()
        }
    }

    @Test func batchSizeIsBounded() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.maxBatchSize = 10 }
            backend.writer.pauseForTesting()
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<25 {
                    group.addTask { try await backend.insert(SessionKey(value: "id-\(index)"), record("x")) }
                }
                while backend.writer.pendingCount < 25 { await Task.yield() }
                backend.writer.resumeForTesting()
                for try await inserted in group { #expect(inserted) }
            }
            #expect(backend.transactionCount == 3)
            try await backend.close()
        }
    }

    @Test func groupCommitOffUsesOneTransactionPerWrite() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.groupCommit = false }
            backend.writer.pauseForTesting()
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<8 {
                    group.addTask { try await backend.insert(SessionKey(value: "id-\(index)"), record("x")) }
                }
                while backend.writer.pendingCount < 8 { await Task.yield() }
                backend.writer.resumeForTesting()
                for try await inserted in group { #expect(inserted) }
            }
            #expect(backend.transactionCount == 8)
            try await backend.close()
        }
    }

    @Test func oneFailingWriteDoesNotFailItsBatch() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let key = SessionKey(value: "taken")
            #expect(try await backend.insert(key, record("first")))
            backend.writer.pauseForTesting()
            async let duplicate = backend.insert(key, record("second"))
            async let stale = backend.update(key, data: [1], expectedVersion: 7, expiresAt: 20_000, now: 2_000)
            async let fresh = backend.insert(SessionKey(value: "fresh"), record("new"))
            while backend.writer.pendingCount < 3 { await Task.yield() }
            backend.writer.resumeForTesting()
            #expect(try await duplicate == false)
            #expect(try await stale == false)
            #expect(try await fresh == true)
            #expect(try await backend.load(key, now: 2_000)?.data == Array("first".utf8))
            try await backend.close()
        }
    }

    @Test func cleanupLeaseIsSharedThroughTheFile() async throws {
        try await withTemporaryDatabase { database in
            let first = try database.open()
            let second = try database.open()
            #expect(try await first.acquireCleanupLease(holder: "a", now: 1_000, duration: 500))
            #expect(try await second.acquireCleanupLease(holder: "b", now: 1_200, duration: 500) == false)
            #expect(try await first.acquireCleanupLease(holder: "a", now: 1_300, duration: 500))
            #expect(try await second.acquireCleanupLease(holder: "b", now: 1_700, duration: 500) == false)
            #expect(try await second.acquireCleanupLease(holder: "b", now: 1_800, duration: 500))
            try await first.releaseCleanupLease(holder: "a")
            #expect(try await first.acquireCleanupLease(holder: "a", now: 1_900, duration: 500) == false)
            try await second.releaseCleanupLease(holder: "b")
            #expect(try await first.acquireCleanupLease(holder: "a", now: 1_900, duration: 500))
            try await first.close()
            try await second.close()
        }
    }

    // MARK: Durability and close

    @Test func dataSurvivesCloseAndReopen() async throws {
        try await withTemporaryDatabase { database in
            let key = SessionKey(value: "persistent")
            let backend = try database.open()
            #expect(try await backend.insert(key, record("kept")))
            #expect(try await backend.update(key, data: Array("changed".utf8), expectedVersion: 1, expiresAt: 20_000, now: 2_000))
            try await backend.close()
            let reopened = try database.open()
            let loaded = try await reopened.load(key, now: 2_000)
            #expect(loaded == SessionRecord(data: Array("changed".utf8), version: 2, createdAt: 1_000, expiresAt: 20_000, lastSeen: 2_000))
            try await reopened.close()
        }
    }

    @Test func closeFlushesPendingWrites() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            backend.writer.pauseForTesting()
            let writes = Task {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<20 {
                        group.addTask { try await backend.insert(SessionKey(value: "id-\(index)"), record("x")) }
                    }
                    return try await group.reduce(into: 0) { count, inserted in count += inserted ? 1 : 0 }
                }
            }
            while backend.writer.pendingCount < 20 { await Task.yield() }
            try await backend.close()
            #expect(try await writes.value == 20)
            #expect(try rawSQL(database.path, "SELECT count(*) FROM sessions") == ["20"])
        }
    }

    @Test func callsAfterCloseThrowClosedAndASecondCloseDoesNothing() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let key = SessionKey(value: "k")
            try await backend.close()
            let loadError = await #expect(throws: StorageError.self) { try await backend.load(key, now: 0) }
            #expect(loadError?.kind == .closed)
            let insertError = await #expect(throws: StorageError.self) { try await backend.insert(key, record("x")) }
            #expect(insertError?.kind == .closed)
            let cleanError = await #expect(throws: StorageError.self) { try await backend.deleteExpired(before: 0, limit: 10) }
            #expect(cleanError?.kind == .closed)
            try await backend.close()
        }
    }

    // MARK: Rows

    @Test func expiredRowsAreNotReturned() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let key = SessionKey(value: "short-lived")
            #expect(try await backend.insert(key, record("x", expiresAt: 5_000)))
            #expect(try await backend.load(key, now: 4_999) != nil)
            #expect(try await backend.load(key, now: 5_000) == nil)
            #expect(try await backend.touch(key, expiresAt: 9_000, now: 5_000) == false)
            #expect(try await backend.update(key, data: [1], expectedVersion: 1, expiresAt: 9_000, now: 5_000) == false)
            // An expired row may be replaced by a new session with the same id.
            #expect(try await backend.insert(key, record("y", createdAt: 6_000, expiresAt: 9_000)))
            #expect(try await backend.load(key, now: 6_000)?.data == Array("y".utf8))
            try await backend.close()
        }
    }

    @Test func deleteExpiredWorksInBatches() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            for index in 0..<10 {
                #expect(try await backend.insert(SessionKey(value: "old-\(index)"), record("x", expiresAt: 2_000 + Int64(index))))
            }
            for index in 0..<5 {
                #expect(try await backend.insert(SessionKey(value: "live-\(index)"), record("x", expiresAt: 50_000)))
            }
            #expect(try await backend.deleteExpired(before: 3_000, limit: 4) == 4)
            #expect(try await backend.deleteExpired(before: 3_000, limit: 4) == 4)
            #expect(try await backend.deleteExpired(before: 3_000, limit: 4) == 2)
            #expect(try await backend.deleteExpired(before: 3_000, limit: 4) == 0)
            #expect(try rawSQL(database.path, "SELECT count(*) FROM sessions") == ["5"])
            try await backend.close()
        }
    }

    @Test(arguments: KeyLayout.allCases)
    func idsAreCaseSensitive(_ layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.keyLayout = layout }
            let lower = SessionKey(value: "abcdefghijklmnopqrstuv")
            let upper = SessionKey(value: "ABCDEFGHIJKLMNOPQRSTUV")
            #expect(try await backend.insert(lower, record("lower")))
            #expect(try await backend.insert(upper, record("upper")))
            #expect(try await backend.load(lower, now: 2_000)?.data == Array("lower".utf8))
            #expect(try await backend.load(upper, now: 2_000)?.data == Array("upper".utf8))
            #expect(try await backend.delete(upper, expectedVersion: nil))
            #expect(try await backend.load(lower, now: 2_000) != nil)
            try await backend.close()
        }
    }

    @Test(arguments: KeyLayout.allCases, [false, true])
    func everyOperation(_ layout: KeyLayout, memory: Bool) async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open {
                $0.keyLayout = layout
                if memory { $0.path = ":memory:" }
            }
            let key = SessionKey(value: "session")
            #expect(try await backend.insert(key, record("a", expiresAt: 10_000)))
            #expect(try await backend.insert(key, record("b")) == false)
            #expect(try await backend.update(key, data: Array("c".utf8), expectedVersion: 1, expiresAt: 8_000, now: 2_000))
            #expect(try await backend.update(key, data: [], expectedVersion: 1, expiresAt: 8_000, now: 2_000) == false)
            #expect(try await backend.load(key, now: 2_000) == SessionRecord(data: Array("c".utf8), version: 2, createdAt: 1_000, expiresAt: 10_000, lastSeen: 2_000))
            #expect(try await backend.touch(key, expiresAt: 12_000, now: 2_000))
            #expect(try await backend.touch(key, expiresAt: 11_000, now: 2_000) == false)
            #expect(try await backend.update(key, data: [], expectedVersion: 2, expiresAt: 3_000, now: 2_000))
            #expect(try await backend.load(key, now: 2_000)?.data == [])
            #expect(try await backend.delete(key, expectedVersion: 2) == false)
            #expect(try await backend.retire(key, expiresAt: 3_000))
            #expect(try await backend.retire(key, expiresAt: 4_000))
            let retired = try await backend.load(key, now: 2_000)
            #expect(retired?.version == 0 && retired?.expiresAt == 3_000)
            #expect(try await backend.update(key, data: [1], expectedVersion: 3, expiresAt: 9_000, now: 2_000) == false)
            #expect(try await backend.retire(SessionKey(value: "missing"), expiresAt: 4_000) == false)
            #expect(try await backend.delete(key, expectedVersion: 0))
            #expect(try await backend.delete(key, expectedVersion: nil) == false)
            #expect(try await backend.load(key, now: 2_000) == nil)
            try await backend.close()
        }
    }

    @Test func rowWithWrongColumnTypeIsCorrupt() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let key = SessionKey(value: "damaged")
            #expect(try await backend.insert(key, record("x")))
            try rawSQL(database.path, "UPDATE sessions SET data = 'text, not a blob'")
            let error = await #expect(throws: StorageError.self) { try await backend.load(key, now: 2_000) }
            #expect(error?.kind == .corrupt)
            #expect(error?.message.contains("data") == true)
            try await backend.close()
        }
    }

    @Test func lockHeldElsewhereGivesBusyAfterTheTimeout() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.busyTimeout = .milliseconds(100) }
            var other: OpaquePointer?
            #expect(sqlite3_open(database.path, &other) == SQLITE_OK)
            defer { sqlite3_close_v2(other) }
            #expect(sqlite3_exec(other, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
            let started = ContinuousClock.now
            let error = await #expect(throws: StorageError.self) {
                try await backend.insert(SessionKey(value: "k"), record("x"))
            }
            let waited = ContinuousClock.now - started
            #expect(error?.kind == .busy)
            #expect(error?.statement?.contains("INSERT") == true)
            #expect(waited >= .milliseconds(90), "it waited for the busy timeout")
            #expect(sqlite3_exec(other, "ROLLBACK", nil, nil, nil) == SQLITE_OK)
            #expect(try await backend.insert(SessionKey(value: "k"), record("x")))
            try await backend.close()
        }
    }

    @Test func readsRunInParallelWithAHeldWriteLock() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.readerCount = 3 }
            let key = SessionKey(value: "k")
            #expect(try await backend.insert(key, record("x")))
            var other: OpaquePointer?
            #expect(sqlite3_open(database.path, &other) == SQLITE_OK)
            defer { sqlite3_close_v2(other) }
            #expect(sqlite3_exec(other, "BEGIN IMMEDIATE; DELETE FROM sessions", nil, nil, nil) == SQLITE_OK)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        let loaded = try await backend.load(key, now: 2_000)
                        #expect(loaded != nil)
                    }
                }
                try await group.waitForAll()
            }
            #expect(sqlite3_exec(other, "ROLLBACK", nil, nil, nil) == SQLITE_OK)
            try await backend.close()
        }
    }
}
