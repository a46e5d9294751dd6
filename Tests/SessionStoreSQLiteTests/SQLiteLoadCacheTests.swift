import CSessionStoreSQLite
import Foundation
import Logging
import SessionStoreCore
@testable import SessionStoreSQLite
import Synchronization
import Testing

/// A load of a row nothing changed since it was last loaded is answered without SQLite
/// (``SQLiteLoadCache``); any commit, by this backend or anything else on the file, makes
/// the next load read the database again.
@Suite("SQLite load cache")
struct SQLiteLoadCacheTests {
    static let row = SessionKey(value: "cached-row")

    static let other = SessionKey(value: "other-row")

    /// A backend on `database` with ``row`` ("a") and ``other`` ("o") stored, both live.
    func openWithTwoRows(_ database: TemporaryDatabase) async throws -> SQLiteBackend {
        let backend = try database.open()
        #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
        #expect(try await backend.insert(Self.other, record("o", expiresAt: 1_000_000)))
        return backend
    }

    func hits(_ backend: SQLiteBackend) throws -> Int {
        try #require(backend.loadCache).hits.load(ordering: .relaxed)
    }

    @Test func aLoadOfAnUnchangedRowIsAnsweredFromTheCache() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            let first = try await backend.load(Self.row, now: 2)
            let answered = try hits(backend)
            let second = try await backend.load(Self.row, now: 2)
            #expect(first?.data == Array("a".utf8) && second == first)
            #expect(try hits(backend) == answered + 1)
            try await backend.close()
        }
    }

    @Test func aSaveOfThisBackendIsSeenByTheNextLoad() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            #expect(try await backend.update(Self.row, data: Array("b".utf8), expectedVersion: 1, expiresAt: 0, now: 2))
            let loaded = try await backend.load(Self.row, now: 2)
            #expect(loaded?.data == Array("b".utf8) && loaded?.version == 2)
            #expect(loaded?.createdAt == 1_000 && loaded?.expiresAt == 1_000_000, "the rest of the row as stored")
            try await backend.close()
        }
    }

    @Test func aSaveOfThisBackendLeavesTheOtherKeptRowsAnswered() async throws {
        try await withTemporaryDatabase { database in
            let backend = try await openWithTwoRows(database)
            let other = Self.other
            _ = try await backend.load(Self.row, now: 2)
            _ = try await backend.load(other, now: 2)
            let answered = try hits(backend)
            #expect(try await backend.update(Self.row, data: Array("b".utf8), expectedVersion: 1, expiresAt: 0, now: 2))
            #expect(try await backend.load(other, now: 2)?.data == Array("o".utf8))
            #expect(try hits(backend) == answered + 1, "the row the save did not write is still answered from the cache")
            try await backend.close()
        }
    }

    /// ``row`` bound to an owner, with details: what the saves below start from.
    static var bound: SessionRecord {
        var bound = record("a", expiresAt: 1_000_000)
        bound.owner = "user-1"
        bound.details = Array("device".utf8)
        return bound
    }

    /// Inserts ``bound``, runs `write` on the backend, then loads ``row`` at `now`: the load
    /// must be answered from the cache. Returns that row and the row the database holds,
    /// read after reopening it.
    func keptAndStored(
        _ database: TemporaryDatabase, now: Int64, _ write: (SQLiteBackend) async throws -> Void
    ) async throws -> (kept: SessionRecord?, stored: SessionRecord?) {
        let backend = try database.open()
        #expect(try await backend.insert(Self.row, Self.bound))
        try await write(backend)
        let answered = try hits(backend)
        let kept = try await backend.load(Self.row, now: now)
        #expect(try hits(backend) == answered + 1, "the written row is answered without SQLite")
        try await backend.close()
        let reopened = try database.open()
        let stored = try await reopened.load(Self.row, now: now)
        try await reopened.close()
        return (kept, stored)
    }

    @Test func theRowAnInsertOfThisBackendLeftIsAnsweredFromTheCacheAsStored() async throws {
        try await withTemporaryDatabase { database in
            let (kept, stored) = try await keptAndStored(database, now: 2) { _ in }
            #expect(kept == Self.bound && stored == Self.bound)
        }
    }

    @Test func theRowASaveOfThisBackendLeftIsAnsweredFromTheCacheAsStored() async throws {
        try await withTemporaryDatabase { database in
            let (kept, stored) = try await keptAndStored(database, now: 8) { backend in
                _ = try await backend.load(Self.row, now: 2)
                #expect(try await backend.update(Self.row, data: Array("b".utf8), expectedVersion: 1, expiresAt: 2_000_000, now: 7))
            }
            var expected = Self.bound
            expected.data = Array("b".utf8)
            expected.version = 2
            expected.expiresAt = 2_000_000
            expected.lastSeen = 7
            #expect(kept == expected && stored == expected)
        }
    }

    @Test func theRowAMergeOfThisBackendLeftIsAnsweredFromTheCacheAsStored() async throws {
        try await withTemporaryDatabase { database in
            let (kept, stored) = try await keptAndStored(database, now: 10) { backend in
                let merged: Bool = try await backend.merge(Self.row, now: 9) { current in
                    (.replace(data: Array("m".utf8), expiresAt: 500), current != nil)
                }
                #expect(merged)
            }
            #expect(kept == stored && stored?.data == Array("m".utf8) && stored?.expiresAt == 1_000_000 && stored?.lastSeen == 9)
        }
    }

    @Test func theRowATouchOfThisBackendLeftIsAnsweredFromTheCacheAsStored() async throws {
        try await withTemporaryDatabase { database in
            let (kept, stored) = try await keptAndStored(database, now: 12) { backend in
                let touched = try await backend.touch(Self.row, expiresAt: 3_000_000, now: 11)
                #expect(touched)
            }
            #expect(kept == stored && stored?.expiresAt == 3_000_000 && stored?.lastSeen == 11 && stored?.version == 1)
        }
    }

    @Test func aSaveThatChangesNoRowKeepsNothing() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            #expect(try await !backend.update(Self.row, data: Array("b".utf8), expectedVersion: 5, expiresAt: 0, now: 2))
            #expect(try await !backend.update(Self.other, data: Array("b".utf8), expectedVersion: 1, expiresAt: 0, now: 2))
            #expect(try await backend.load(Self.row, now: 2)?.data == Array("a".utf8))
            #expect(try await backend.load(Self.other, now: 2) == nil)
            try await backend.close()
        }
    }

    @Test func aKeyWrittenTwiceInOneTransactionIsLoadedFromTheDatabase() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            // Held writes share one group-commit transaction: a save, then a delete of the
            // same row, whose end state only the database knows.
            backend.writer.pauseForTesting()
            async let saved = backend.update(Self.row, data: Array("b".utf8), expectedVersion: 1, expiresAt: 0, now: 2)
            while backend.writer.pendingCount < 1 { await Task.yield() }
            async let deleted = backend.delete(Self.row, expectedVersion: 2)
            while backend.writer.pendingCount < 2 { await Task.yield() }
            let answered = try hits(backend)
            backend.writer.resumeForTesting()
            let (wasSaved, wasDeleted) = try await (saved, deleted)
            #expect(wasSaved && wasDeleted)
            #expect(try await backend.load(Self.row, now: 2) == nil)
            #expect(try hits(backend) == answered)
            try await backend.close()
        }
    }

    @Test func aSavedRowIsNotAnsweredAfterACommitElsewhere() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            #expect(try await backend.update(Self.row, data: Array("b".utf8), expectedVersion: 1, expiresAt: 0, now: 2))
            _ = try rawSQL(database.path, "UPDATE sessions SET data = CAST('raw' AS BLOB), version = version + 1")
            let loaded = try await backend.load(Self.row, now: 2)
            #expect(loaded?.data == Array("raw".utf8) && loaded?.version == 3)
            try await backend.close()
        }
    }

    @Test func aCommitElsewhereBetweenTwoSavesOfThisBackendDropsEveryKeptRow() async throws {
        try await withTemporaryDatabase { database in
            let backend = try await openWithTwoRows(database)
            let other = Self.other
            _ = try await backend.load(Self.row, now: 2)
            let answered = try hits(backend)
            _ = try rawSQL(database.path, "UPDATE sessions SET data = CAST('raw' AS BLOB), version = version + 1")
            // The next save of this backend must not take the other connection's commit for its own.
            #expect(try await backend.update(other, data: Array("p".utf8), expectedVersion: 2, expiresAt: 0, now: 2))
            let loaded = try await backend.load(Self.row, now: 2)
            #expect(loaded?.data == Array("raw".utf8) && loaded?.version == 2)
            #expect(try hits(backend) == answered)
            try await backend.close()
        }
    }

    @Test func aWriteOfRowsTheCacheIsNotToldDropsEveryKeptRow() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let lasting = SessionKey(value: "lasting-row")
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000)))
            #expect(try await backend.insert(lasting, record("l", expiresAt: 1_000_000)))
            #expect(try await backend.load(Self.row, now: 2) != nil)
            let answered = try hits(backend)
            // A cleanup deletes by expiry, not by key: a caller whose clock is behind the
            // cleanup's then finds no row, as the database answers.
            #expect(try await backend.deleteExpired(before: 5_000, limit: 100) == 1)
            #expect(try await backend.load(Self.row, now: 2) == nil)
            #expect(try hits(backend) == answered)
            try await backend.close()
        }
    }

    @Test func aLoadOverlappingASaveOfThisBackendIsNotKeptPastTheSave() async throws {
        // Driven step by step on the cache itself: the load reads the row, the save begins
        // (its commit not visible yet, so the header is unchanged) and the load is kept; once
        // the save committed, the kept row must not be answered.
        try await withCacheOnTwoRows { connection, cache, _ in
            let (missed, ticket) = cache.lookup(Self.row, now: 2)
            #expect(missed == nil)
            let loaded = try #require(ticket)
            cache.writeWillBegin(keys: [Self.row])
            cache.keep(record("a", expiresAt: 1_000_000), for: Self.row, after: loaded)
            try commitChange(of: Self.row, on: connection)
            cache.writeDidEnd(committed: true)
            let (answered, _) = cache.lookup(Self.row, now: 2)
            #expect(answered == nil, "the row loaded before the save is answered after it")
        }
    }

    /// A database with ``row`` and ``other`` stored, a connection on it and a cache over
    /// that connection whose header is trusted for the epoch, as after a first save.
    func withCacheOnTwoRows(_ body: (SQLiteConnection, SQLiteLoadCache, _ path: String) throws -> Void) async throws {
        try await withTemporaryDatabase { database in
            let backend = try await openWithTwoRows(database)
            try await backend.close()
            let connection = try SQLiteConnection(path: database.path, uri: false, busyTimeoutMilliseconds: 1_000)
            let count = try connection.statement("SELECT count(*) FROM sessions", operation: "test")
            #expect(try count.step(operation: "test"))
            count.reset()
            let cache = try #require(SQLiteLoadCache(connection: connection, logger: Logger(label: "test")))
            SQLiteCommitHooks.install(on: connection, checkpointer: nil, loadCache: cache)
            defer { cache.close() }
            // A first save starts the WAL file (with new salts, which the cache does not take
            // for its own commit's); the next ones add to it.
            try save(Self.other, on: connection, through: cache)
            try body(connection, cache, database.path)
        }
    }

    /// Commits a change of `key`'s row (``row`` or ``other``) on `connection`, as the writer
    /// does between ``SQLiteLoadCache/writeWillBegin(keys:)`` and
    /// ``SQLiteLoadCache/writeDidEnd(committed:)``.
    func commitChange(of key: SessionKey = SQLiteLoadCacheTests.row, on connection: SQLiteConnection) throws {
        let update = try connection.statement(
            "UPDATE sessions SET version = version + 1 WHERE id = '\(key.value)'", operation: "test")
        defer { update.reset() }
        try update.run(operation: "test")
        #expect(sqlite3_changes(connection.database) == 1)
    }

    /// A whole save of `key`'s row, told to `cache` as the writer tells it.
    func save(_ key: SessionKey, on connection: SQLiteConnection, through cache: SQLiteLoadCache) throws {
        cache.writeWillBegin(keys: [key])
        try commitChange(of: key, on: connection)
        cache.writeDidEnd(committed: true)
    }

    @Test(arguments: [false, true])
    func aLoadOfTheStateASaveLeftIsKeptPastTheNextSave(keptAfterTheSaveEnded: Bool) async throws {
        // The lookup runs between the save's commit and the save's end (which confirms the
        // header the load read), the keep before or after that end: the next save must not
        // make the row miss.
        try await withCacheOnTwoRows { connection, cache, _ in
            cache.writeWillBegin(keys: [Self.row])
            try commitChange(on: connection)
            let (missed, ticket) = cache.lookup(Self.other, now: 2)
            #expect(missed == nil)
            let loaded = try #require(ticket)
            if keptAfterTheSaveEnded { cache.writeDidEnd(committed: true) }
            cache.keep(record("o", expiresAt: 1_000_000), for: Self.other, after: loaded)
            if !keptAfterTheSaveEnded { cache.writeDidEnd(committed: true) }
            try save(Self.row, on: connection, through: cache)
            let (answered, _) = cache.lookup(Self.other, now: 2)
            #expect(answered??.data == Array("o".utf8))
        }
    }

    @Test func aLoadKeptDuringASaveThatWroteNothingStaysAnsweredPastIt() async throws {
        try await withCacheOnTwoRows { connection, cache, _ in
            let (_, ticket) = cache.lookup(Self.row, now: 2)
            cache.writeWillBegin(keys: [Self.row])
            cache.keep(record("a", expiresAt: 1_000_000), for: Self.row, after: try #require(ticket))
            cache.writeDidEnd(committed: false)
            try save(Self.other, on: connection, through: cache)
            let (answered, _) = cache.lookup(Self.row, now: 2)
            #expect(answered??.data == Array("a".utf8))
        }
    }

    @Test func aCommitElsewhereBetweenASavesCommitAndItsEndIsNotTakenForTheSaves() async throws {
        // The other connection commits after this backend's save committed and before the
        // save's end reads the header: the header is not the save's, and the kept row goes.
        try await withCacheOnTwoRows { connection, cache, path in
            let (_, ticket) = cache.lookup(Self.row, now: 2)
            cache.keep(record("a", expiresAt: 1_000_000), for: Self.row, after: try #require(ticket))
            #expect(cache.lookup(Self.row, now: 2).result??.data == Array("a".utf8))
            cache.writeWillBegin(keys: [Self.other])
            try commitChange(of: Self.other, on: connection)
            _ = try rawSQL(path, "UPDATE sessions SET data = CAST('raw' AS BLOB) WHERE id = 'cached-row'")
            cache.writeDidEnd(committed: true)
            #expect(cache.lookup(Self.row, now: 2).result == nil, "the row as it was before the other commit")
        }
    }

    @Test func aSaveThatStartsTheWALOverLeavesTheOtherKeptRowsAnswered() async throws {
        try await withCacheOnTwoRows { connection, cache, _ in
            for _ in 0..<3 { try save(Self.other, on: connection, through: cache) }  // more frames than the save after the checkpoint writes
            let (_, ticket) = cache.lookup(Self.row, now: 2)
            cache.keep(record("a", expiresAt: 1_000_000), for: Self.row, after: try #require(ticket))
            // Every frame copied back and no reader: the next save starts the WAL over.
            try connection.execute("PRAGMA wal_checkpoint(PASSIVE)", operation: "test")
            try save(Self.other, on: connection, through: cache)
            #expect(cache.lookup(Self.row, now: 2).result??.data == Array("a".utf8))
        }
    }

    @Test func aCommitOfAnotherConnectionIsSeenByTheNextLoad() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            let answered = try hits(backend)
            _ = try rawSQL(database.path, "UPDATE sessions SET data = CAST('raw' AS BLOB), version = version + 1")
            let loaded = try await backend.load(Self.row, now: 2)
            #expect(loaded?.data == Array("raw".utf8) && loaded?.version == 2)
            _ = try rawSQL(database.path, "DELETE FROM sessions")
            #expect(try await backend.load(Self.row, now: 2) == nil, "a row deleted elsewhere is not answered")
            #expect(try hits(backend) == answered)
            try await backend.close()
        }
    }

    @Test func aSaveOfAnotherBackendOnTheFileIsSeenByTheNextLoad() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let other = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            _ = try await backend.load(Self.row, now: 2)
            let answered = try hits(backend)
            #expect(try await other.update(Self.row, data: Array("other".utf8), expectedVersion: 1, expiresAt: 0, now: 2))
            #expect(try await backend.load(Self.row, now: 2)?.data == Array("other".utf8))
            #expect(try await other.delete(Self.row, expectedVersion: nil))
            #expect(try await backend.load(Self.row, now: 2) == nil)
            #expect(try hits(backend) == answered, "only the loads before any change were answered from the cache")
            try await other.close()
            try await backend.close()
        }
    }

    @Test func aCommitOfAnotherProcessIsSeenByTheNextLoad() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            _ = try await backend.load(Self.row, now: 2)
            let answered = try hits(backend)
            let child = try CrashWriter.launch(["set-data", database.path, "from another process"])
            #expect(await child.wait() == .exited(0))
            let loaded = try await backend.load(Self.row, now: 2)
            #expect(loaded?.data == Array("from another process".utf8) && loaded?.version == 2)
            #expect(try hits(backend) == answered, "only the loads before the other process's commit were answered from the cache")
            try await backend.close()
        }
    }

    @Test func theCacheKeepsThisProcesssHoldOnTheWALIndex() async throws {
        // Closing any descriptor of the `-shm` file would drop SQLite's lock on it, and the
        // next process to open the database would reset the file under this one's mappings.
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            _ = try await backend.load(Self.row, now: 2)
            #expect(try hits(backend) > 0)
            let output = database.path + ".holder"
            let child = try CrashWriter.launch(["wal-index-holder", database.path], output: .file(output))
            #expect(await child.wait() == .exited(0))
            let holder = try String(contentsOfFile: output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(holder == String(getpid()), "the WAL index lock is held by \(holder), not this process")
            try await backend.close()
        }
    }

    /// The version another backend's save acknowledged last.
    final class Acknowledged: Sendable {
        let version = Atomic<Int64>(1)
        let done = Atomic<Bool>(false)
    }

    @Test func noLoadReadsAnOlderVersionThanASaveElsewhereAcknowledgedBeforeIt() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let other = try database.open()
            #expect(try await backend.insert(Self.row, record("v1", version: 1, expiresAt: 1_000_000)))
            let acknowledged = Acknowledged()
            let stale = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    defer { acknowledged.done.store(true, ordering: .sequentiallyConsistent) }
                    for version in Int64(1)..<1_500 {
                        guard try await other.update(
                            Self.row, data: Array("v\(version + 1)".utf8), expectedVersion: version, expiresAt: 0, now: 2)
                        else { return 1 }
                        acknowledged.version.store(version + 1, ordering: .sequentiallyConsistent)
                    }
                    return 0
                }
                for _ in 0..<2 {
                    group.addTask {
                        var stale = 0
                        while !acknowledged.done.load(ordering: .sequentiallyConsistent) {
                            let floor = acknowledged.version.load(ordering: .sequentiallyConsistent)
                            let loaded = try await backend.load(Self.row, now: 2)
                            if (loaded?.version ?? 0) < floor { stale += 1 }
                            // A load answered from the cache never suspends: let the saver run.
                            await Task.yield()
                        }
                        return stale
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(stale == 0, "loads older than an acknowledged save (or a failed save)")
            try await other.close()
            try await backend.close()
        }
    }

    @Test func noLoadReadsAnOlderVersionThanASaveOfThisBackendAcknowledgedBeforeIt() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let others = (0..<8).map { SessionKey(value: "other-\($0)") }
            #expect(try await backend.insert(Self.row, record("v1", version: 1, expiresAt: 1_000_000)))
            for key in others { #expect(try await backend.insert(key, record("o", expiresAt: 1_000_000))) }
            let acknowledged = Acknowledged()
            let stale = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    defer { acknowledged.done.store(true, ordering: .sequentiallyConsistent) }
                    for version in Int64(1)..<1_500 {
                        guard try await backend.update(
                            Self.row, data: Array("v\(version + 1)".utf8), expectedVersion: version, expiresAt: 0, now: 2)
                        else { return 1 }
                        acknowledged.version.store(version + 1, ordering: .sequentiallyConsistent)
                    }
                    return 0
                }
                // Saves of other rows move the trusted header while the row is loaded.
                group.addTask {
                    var version: Int64 = 1
                    while !acknowledged.done.load(ordering: .sequentiallyConsistent) {
                        for key in others {
                            guard try await backend.update(key, data: [UInt8(version & 0x7F)], expectedVersion: version, expiresAt: 0, now: 2)
                            else { return 1 }
                        }
                        version += 1
                    }
                    return 0
                }
                for _ in 0..<2 {
                    group.addTask {
                        var stale = 0
                        while !acknowledged.done.load(ordering: .sequentiallyConsistent) {
                            let floor = acknowledged.version.load(ordering: .sequentiallyConsistent)
                            let loaded = try await backend.load(Self.row, now: 2)
                            if (loaded?.version ?? 0) < floor { stale += 1 }
                            for key in others { _ = try await backend.load(key, now: 2) }
                            await Task.yield()
                        }
                        return stale
                    }
                }
                return try await group.reduce(0, +)
            }
            // Whether any load was answered from the cache depends on scheduling (every row is
            // written all along); that one is, aSaveOfThisBackendLeavesTheOtherKeptRowsAnswered shows.
            #expect(stale == 0, "loads older than an acknowledged save (or a failed save)")
            try await backend.close()
        }
    }

    @Test func aKeptRowThatExpiredSinceIsNotReturned() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000)))
            #expect(try await backend.load(Self.row, now: 2) != nil)
            #expect(try await backend.load(Self.row, now: 1_000) == nil, "expired at its expiry, as the database answers")
            #expect(try await backend.load(Self.row, now: 999) != nil)
            try await backend.close()
        }
    }

    @Test func eachKeyIsAnsweredWithItsOwnRow() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let keys = (0..<3_000).map { SessionKey(value: "key-\($0)") }
            for (index, key) in keys.enumerated() {
                #expect(try await backend.insert(key, record("row \(index)", expiresAt: 1_000_000)))
            }
            // Far more keys than slots, each loaded twice in a row (the second load a hit),
            // twice over: every set of slots fills and drops rows while answering.
            var wrong = 0
            for _ in 0..<2 {
                for (index, key) in keys.enumerated() {
                    for _ in 0..<2 where try await backend.load(key, now: 2)?.data != Array("row \(index)".utf8) {
                        wrong += 1
                    }
                }
            }
            #expect(wrong == 0)
            let cache = try #require(backend.loadCache)
            #expect(cache.count <= 1_024, "the cache keeps at most its slots")
            #expect(try hits(backend) >= keys.count * 2, "every second load of a key is a hit")
            try await backend.close()
        }
    }

    @Test func rowsWithMoreDataThanTheLimitAreNotKept() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let large = String(repeating: "x", count: SQLiteLoadCache.largestCachedRow + 1)
            #expect(try await backend.insert(Self.row, record(large, expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            #expect(try await backend.load(Self.row, now: 2)?.data.count == large.utf8.count)
            #expect(try hits(backend) == 0)
            try await backend.close()
        }
    }

    @Test func loadsAfterCloseThrowClosed() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            _ = try await backend.load(Self.row, now: 2)
            try await backend.close()
            await #expect(throws: StorageError.self) { _ = try await backend.load(Self.row, now: 2) }
        }
    }
}
