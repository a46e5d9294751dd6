import CSessionStoreSQLite
import Foundation
import Logging
import SessionStoreCore
@testable import SessionStoreSQLite
import Synchronization
import Testing

/// A load of a key that has no row (an unknown or forged cookie) is answered without SQLite
/// once the key filter is built (``SQLiteKeyFilter``), and a key that has a row is never
/// answered absent: not one this backend wrote during or after the build, nor one another
/// connection wrote.
@Suite("SQLite key filter")
struct SQLiteKeyFilterTests {
    static let row = SessionKey(value: "stored-row")
    static let unknown = SessionKey(value: "never-issued")

    func absentAnswers(_ backend: SQLiteBackend) throws -> Int {
        try #require(backend.loadCache).absentAnswers.load(ordering: .relaxed)
    }

    /// The backend's filter builder once its build at open ended, with no pause between builds.
    func idleBuilder(of backend: SQLiteBackend) async throws -> SQLiteKeyFilterBuilder {
        let builder = try #require(backend.filterBuilder)
        await builder.waitUntilIdle()
        builder.setShortestPause(.zero)
        return builder
    }

    /// Builds the key filter now, once the build the backend started when it opened ended;
    /// from then on only the test starts builds.
    func buildFilter(_ backend: SQLiteBackend) async throws {
        let builder = try #require(backend.filterBuilder)
        builder.startsBuilds.store(false, ordering: .relaxed)
        await builder.waitUntilIdle()
        #expect(try builder.buildNow(), "no write is under way and nothing else committed: the build must install")
    }

    @Test func aBackendBuildsTheFilterWhenItOpens() async throws {
        try await withTemporaryDatabase { database in
            let first = try database.open()
            #expect(try await first.insert(Self.row, record("a", expiresAt: 1_000_000)))
            try await first.close()
            let backend = try database.open()
            let builder = try #require(backend.filterBuilder)
            await builder.waitUntilIdle()
            #expect(builder.installs.load(ordering: .relaxed) == 1)
            let before = try absentAnswers(backend)
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            #expect(try absentAnswers(backend) == before + 1)
            #expect(try await backend.load(Self.row, now: 2)?.data == Array("a".utf8))
            try await backend.close()
        }
    }

    @Test func aBuildNeverCreatesADatabaseWhereTheFileWasMovedAway() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let builder = try await idleBuilder(of: backend)
            let moved = database.path + ".old"
            try FileManager.default.moveItem(atPath: database.path, toPath: moved)
            #expect(throws: StorageError.self) { try builder.buildNow() }
            #expect(!FileManager.default.fileExists(atPath: database.path), "the build's connection created a database")
            try FileManager.default.moveItem(atPath: moved, toPath: database.path)
            try await backend.close()
        }
    }

    @Test func aLoadThatFindsTheFilterRetiredStartsABuild() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let builder = try await idleBuilder(of: backend)
            let installs = builder.installs.load(ordering: .relaxed)
            // A row from elsewhere, then a save of this backend: a new epoch, no filter.
            try insertElsewhere(SessionKey(value: "written-elsewhere"), path: database.path)
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            await builder.waitUntilIdle()
            #expect(builder.installs.load(ordering: .relaxed) == installs + 1, "the load did not start a build")
            let before = try absentAnswers(backend)
            #expect(try await backend.load(SessionKey(value: "another-unknown"), now: 2) == nil)
            #expect(try absentAnswers(backend) == before + 1)
            #expect(try await backend.load(SessionKey(value: "written-elsewhere"), now: 2)?.data == Array("e".utf8))
            try await backend.close()
        }
    }

    /// Inserts a live row for `key` on a raw connection of its own: a commit from elsewhere.
    func insertElsewhere(_ key: SessionKey, path: String) throws {
        _ = try rawSQL(
            path,
            "INSERT INTO sessions (slot, id, data, version, created_at, expires_at) "
                + "VALUES (\(SQLiteSlot.of(key)), '\(key.value)', X'65', 1, 1000, 1000000)",
            busyTimeoutMilliseconds: 5_000)
    }

    @Test func aKeyWithoutARowIsAnsweredWithoutTheDatabaseOnceTheFilterIsBuilt() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            try await buildFilter(backend)
            let before = try absentAnswers(backend)
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            #expect(try absentAnswers(backend) == before + 1)
            #expect(try await backend.load(Self.row, now: 2)?.data == Array("a".utf8))
            #expect(try absentAnswers(backend) == before + 1)
            try await backend.close()
        }
    }

    @Test func aKeyThisBackendInsertsAfterTheBuildIsFound() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try await buildFilter(backend)
            // More data than the load cache keeps: only the filter stands between the load
            // and the database.
            let large = [UInt8](repeating: 0x61, count: SQLiteLoadCache.largestCachedRow + 1)
            #expect(try await backend.insert(Self.row, SessionRecord(data: large, version: 1, createdAt: 1_000, expiresAt: 1_000_000)))
            #expect(try await backend.load(Self.row, now: 2)?.data == large)
            // The filter stays complete across this backend's own writes.
            let before = try absentAnswers(backend)
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            #expect(try absentAnswers(backend) == before + 1)
            try await backend.close()
        }
    }

    @Test func aRowAnotherConnectionAddsIsFound() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try await buildFilter(backend)
            let elsewhere = SessionKey(value: "written-elsewhere")
            try insertElsewhere(elsewhere, path: database.path)
            #expect(try await backend.load(elsewhere, now: 2)?.data == Array("e".utf8))
            // A save of this backend on top of the other commit starts a new epoch: the
            // filter, which lacks the other row, no longer answers.
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            #expect(try await backend.load(elsewhere, now: 2)?.data == Array("e".utf8))
            let before = try absentAnswers(backend)
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            #expect(try absentAnswers(backend) == before, "the filter answered after a commit from elsewhere")
            try await backend.close()
        }
    }

    @Test func aCleanupLeavesTheFilterAnswering() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let lasting = SessionKey(value: "lasting-row")
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000)))
            #expect(try await backend.insert(lasting, record("l", expiresAt: 1_000_000)))
            try await buildFilter(backend)
            #expect(try await backend.deleteExpired(before: 5_000, limit: 100) == 1)
            let before = try absentAnswers(backend)
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            #expect(try absentAnswers(backend) == before + 1)
            #expect(try await backend.load(lasting, now: 2)?.data == Array("l".utf8))
            #expect(try await backend.load(Self.row, now: 2) == nil)
            try await backend.close()
        }
    }

    @Test func aWriteOfUnknownRowsThatMayAddRowsRetiresTheFilter() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try await buildFilter(backend)
            let imported = SessionKey(value: "imported-row")
            let slot = SQLiteSlot.of(imported)
            // As an import or a rewrite: the writer is not told which rows it adds.
            _ = try await backend.writer.submit(.alone, operation: "test") { connection in
                _ = try connection.execute(
                    "INSERT INTO sessions (slot, id, data, version, created_at, expires_at) "
                        + "VALUES (\(slot), '\(imported.value)', X'69', 1, 1000, 1000000)",
                    operation: "test")
                return .changes(1)
            }
            #expect(try await backend.load(imported, now: 2)?.data == Array("i".utf8))
            let before = try absentAnswers(backend)
            #expect(try await backend.load(Self.unknown, now: 2) == nil)
            #expect(try absentAnswers(backend) == before, "the filter answered after rows it was not told of")
            try await buildFilter(backend)
            #expect(try await backend.load(imported, now: 2)?.data == Array("i".utf8), "the new filter holds the row")
            try await backend.close()
        }
    }

    @Test func aFilterFarPastTheRowsItWasBuiltForAsksForANewBuild() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try await buildFilter(backend)
            let cache = try #require(backend.loadCache)
            cache.filterWanted.store(false, ordering: .relaxed)
            for index in 0..<8 {
                #expect(try await backend.insert(SessionKey(value: "row-\(index)"), record("r", expiresAt: 1_000_000)))
            }
            let wantedEarly = cache.filterWanted.load(ordering: .relaxed)
            #expect(!wantedEarly, "a build asked for after a few rows")
            for index in 8..<400 {
                #expect(try await backend.insert(SessionKey(value: "row-\(index)"), record("r", expiresAt: 1_000_000)))
            }
            let wanted = cache.filterWanted.load(ordering: .relaxed)
            #expect(wanted)
            try await backend.close()
        }
    }

    // MARK: - Builds interleaved with writes, step by step

    /// A database with ``row`` stored, a connection on it and a cache over that connection
    /// whose header is trusted, as after a first save; the body gets the database path too.
    func withCache(_ body: (SQLiteConnection, SQLiteLoadCache, _ path: String) throws -> Void) async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            try await backend.close()
            let connection = try SQLiteConnection(path: database.path, uri: false, busyTimeoutMilliseconds: 1_000)
            defer { connection.close() }
            _ = try scanSlots(connection)
            let cache = try #require(SQLiteLoadCache(connection: connection, logger: Logger(label: "test")))
            SQLiteCommitHooks.install(on: connection, checkpointer: nil, loadCache: cache)
            defer { cache.close() }
            try insert(SessionKey(value: "first-save"), on: connection, through: cache)
            try body(connection, cache, database.path)
        }
    }

    /// Every slot of the table, as a build reads them.
    func scanSlots(_ connection: SQLiteConnection) throws -> [Int64] {
        let statement = try connection.statement("SELECT slot FROM sessions ORDER BY slot", operation: "test")
        defer { statement.reset() }
        var slots: [Int64] = []
        while try statement.step(operation: "test") { slots.append(try statement.int64(0, operation: "test")) }
        return slots
    }

    /// A whole insert of `key`'s row on `connection`, told to `cache` as the writer tells it.
    func insert(_ key: SessionKey, on connection: SQLiteConnection, through cache: SQLiteLoadCache) throws {
        cache.writeWillBegin(keys: [key])
        _ = try connection.execute(
            "INSERT INTO sessions (slot, id, data, version, created_at, expires_at) "
                + "VALUES (\(SQLiteSlot.of(key)), '\(key.value)', X'6E', 1, 1000, 1000000)",
            operation: "test")
        cache.writeDidEnd(committed: true)
    }

    /// Whether the cache answers `key` absent without the database.
    func answeredAbsent(_ key: SessionKey, by cache: SQLiteLoadCache) -> Bool {
        let (result, ticket) = cache.lookup(key, now: 2)
        guard ticket == nil, case .some(.none) = result else { return false }
        return true
    }

    @Test func aBuildDoesNotBeginWhileAWriteOfThisBackendIsUnderWay() async throws {
        try await withCache { connection, cache, _ in
            let key = SessionKey(value: "written-meanwhile")
            cache.writeWillBegin(keys: [key])
            #expect(cache.beginFilterBuild() == nil, "a build began with a write under way")
            _ = try connection.execute(
                "INSERT INTO sessions (slot, id, data, version, created_at, expires_at) "
                    + "VALUES (\(SQLiteSlot.of(key)), '\(key.value)', X'6E', 1, 1000, 1000000)",
                operation: "test")
            cache.writeDidEnd(committed: true)
            let build = try #require(cache.beginFilterBuild())
            #expect(cache.finishFilterBuild(build, scanned: try scanSlots(connection)))
            #expect(!answeredAbsent(key, by: cache))
            #expect(answeredAbsent(Self.unknown, by: cache))
        }
    }

    @Test func aKeyWrittenBetweenTheScanAndTheInstallIsInTheFilter() async throws {
        try await withCache { connection, cache, _ in
            let build = try #require(cache.beginFilterBuild())
            let scanned = try scanSlots(connection)
            let key = SessionKey(value: "written-after-the-scan")
            try insert(key, on: connection, through: cache)
            #expect(cache.finishFilterBuild(build, scanned: scanned))
            #expect(!answeredAbsent(key, by: cache), "a row written during the build is answered absent")
            #expect(!answeredAbsent(Self.row, by: cache))
            #expect(answeredAbsent(Self.unknown, by: cache))
        }
    }

    @Test func aBuildAcrossACommitElsewhereIsNotInstalled() async throws {
        try await withCache { connection, cache, path in
            let build = try #require(cache.beginFilterBuild())
            let scanned = try scanSlots(connection)
            let elsewhere = SessionKey(value: "written-elsewhere")
            try insertElsewhere(elsewhere, path: path)
            #expect(!cache.finishFilterBuild(build, scanned: scanned))
            #expect(!answeredAbsent(elsewhere, by: cache))
            #expect(!answeredAbsent(Self.unknown, by: cache), "a filter that missed a commit answered")
        }
    }

    @Test func aCommitElsewhereAfterTheInstallStopsTheFilterAnswering() async throws {
        try await withCache { connection, cache, path in
            let build = try #require(cache.beginFilterBuild())
            #expect(cache.finishFilterBuild(build, scanned: try scanSlots(connection)))
            #expect(answeredAbsent(Self.unknown, by: cache))
            let elsewhere = SessionKey(value: "written-elsewhere")
            try insertElsewhere(elsewhere, path: path)
            #expect(!answeredAbsent(elsewhere, by: cache))
            // Nor after this backend's next save, which starts a new epoch.
            try insert(SessionKey(value: "next-save"), on: connection, through: cache)
            #expect(!answeredAbsent(elsewhere, by: cache))
            #expect(!answeredAbsent(Self.unknown, by: cache))
        }
    }

    // MARK: - Soak

    /// Runs `buildNow` on a thread of its own (a build blocks) until `stop` is set.
    final class BuildLoop: Sendable {
        let stop = Atomic<Bool>(false)
        let finished = DispatchSemaphore(value: 0)
        let failures = Mutex<[String]>([])

        func start(_ builder: SQLiteKeyFilterBuilder) {
            let thread = Thread { [self] in
                while !stop.load(ordering: .relaxed) {
                    do {
                        _ = try builder.buildNow()
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                    usleep(200)
                }
                finished.signal()
            }
            thread.start()
        }
    }

    @Test func noRowIsAnsweredAbsentWhileFiltersAreBuiltBesideSavesAndOtherConnections() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            for index in 0..<64 {
                #expect(try await backend.insert(SessionKey(value: "seed-\(index)"), record("s", expiresAt: 1_000_000)))
            }
            let builder = try #require(backend.filterBuilder)
            builder.startsBuilds.store(false, ordering: .relaxed)
            let installsBefore = builder.installs.load(ordering: .relaxed)
            let loop = BuildLoop()
            loop.start(builder)
            let path = database.path
            let missing = try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<3 {
                    group.addTask {
                        var missing = 0
                        for index in 0..<300 {
                            let key = SessionKey(value: "saved-\(writer)-\(index)")
                            guard try await backend.insert(key, record("n", expiresAt: 1_000_000)) else { return missing + 1 }
                            if try await backend.load(key, now: 2) == nil { missing += 1 }
                            if index % 8 == 0 { await Task.yield() }
                        }
                        return missing
                    }
                }
                group.addTask {
                    var missing = 0
                    for index in 0..<30 {
                        let key = SessionKey(value: "elsewhere-\(index)")
                        try insertElsewhere(key, path: path)
                        if try await backend.load(key, now: 2) == nil { missing += 1 }
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    return missing
                }
                group.addTask {
                    for index in 0..<3_000 {
                        _ = try await backend.load(SessionKey(value: "unknown-\(index)"), now: 2)
                        if index % 16 == 0 { await Task.yield() }
                    }
                    return 0
                }
                return try await group.reduce(0, +)
            }
            loop.stop.store(true, ordering: .relaxed)
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    loop.finished.wait()
                    continuation.resume()
                }
            }
            #expect(missing == 0, "rows answered absent while filters were built")
            #expect(loop.failures.withLock { $0 }.isEmpty)
            // Every row is still found once the writes stopped and a last filter is in (after
            // a save of this backend: a commit from elsewhere leaves nothing to build on).
            #expect(try await backend.insert(SessionKey(value: "last-save"), record("l", expiresAt: 1_000_000)))
            try await buildFilter(backend)
            for writer in 0..<3 {
                for index in stride(from: 0, to: 300, by: 7) {
                    #expect(try await backend.load(SessionKey(value: "saved-\(writer)-\(index)"), now: 2) != nil)
                }
            }
            let installs = builder.installs.load(ordering: .relaxed)
            #expect(installs > installsBefore)
            let cache = try #require(backend.loadCache)
            #expect(cache.filterBytes <= 16 * SQLiteKeyFilter.largestBits / 8)
            try await backend.close()
        }
    }
}
