import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite
import Synchronization
import Testing

/// The SQLite cleanup's own promises: bounded slices, a bounded WAL, slices sized by time.
/// Sizes and counts only, never times.
@Suite("SQLite cleanup")
struct SQLiteCleanupTests {
    /// Fills `sessions` with `expired` rows that expired at 1000 ms and `live` rows that
    /// expire far in the future, in random key order, 200 bytes of data each, then empties
    /// the WAL. `expiry` replaces the expired rows' expiry when given.
    static func fill(_ path: String, expired: Int, live: Int, layout: KeyLayout = .idOnly, expiry: String? = nil) throws {
        let expiredAt = expiry ?? "1000 - abs(random() % 1000)"
        let (columns, key) = layout == .checksumAndID
            ? ("crc32, id", "abs(random() % 4294967296), lower(hex(randomblob(16)))")
            : ("id", "lower(hex(randomblob(16)))")
        try rawSQL(path, """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < \(expired + live - 1)) \
            INSERT INTO sessions (\(columns), data, version, created_at, expires_at) \
            SELECT \(key), randomblob(200), 1, 0, \
            CASE WHEN i < \(expired) THEN \(expiredAt) ELSE 1000000000000 END FROM n
            """)
        // The fill's own WAL goes, so the WAL measured afterwards is the cleanup's.
        let result = try rawSQL(path, "PRAGMA wal_checkpoint(TRUNCATE)")
        guard result.first == "0" else { throw RawSQLiteError(message: "the fill's checkpoint was blocked: \(result)") }
    }

    static func rowCount(_ path: String, where condition: String) throws -> Int {
        Int(try rawSQL(path, "SELECT count(*) FROM sessions WHERE \(condition)").first.flatMap { $0 } ?? "") ?? -1
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test func cleanupDeletesInSlicesOfBoundedRowsEachItsOwnTransaction() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try Self.fill(database.path, expired: 4000, live: 1000)
            let transactionsBefore = backend.transactionCount
            let deleted = try await backend.deleteExpired(before: 2000, limit: 10_000)
            let (slices, largest, _) = backend.cleanupSlicer.statistics
            let transactions = backend.transactionCount - transactionsBefore
            try await backend.close()

            #expect(deleted == 4000)
            #expect(try Self.rowCount(database.path, where: "expires_at < 2000") == 0, "every expired row deleted")
            #expect(try Self.rowCount(database.path, where: "expires_at >= 2000") == 1000, "every live row kept")
            #expect(largest <= SQLiteCleanupSlicer.maxRows, "one slice deleted \(largest) rows")
            #expect(slices >= 4000 / SQLiteCleanupSlicer.maxRows, "\(slices) slices")
            #expect(transactions >= slices, "each slice committed on its own: \(transactions) transactions for \(slices) slices")
        }
    }

    @Test func cleanupKeepsTheWALBelowTheWritersBackPressureLimit() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            // 160,000 rows of 200 bytes span about 10,000 leaf pages: the walk rewrites them
            // once, several times the WAL's pace limit, so the WAL is restarted during it.
            try Self.fill(database.path, expired: 120_000, live: 40_000)
            let walPath = database.path + "-wal"
            let tally = CleanupTally()
            let watcher = tally.watchWAL(walPath)
            let saver = tally.saveSteadily(through: backend)
            let cleaned = await Result(catching: {
                var deleted = 0
                while true {
                    let count = try await backend.deleteExpired(before: 2000, limit: 1000)
                    deleted += count
                    if count < 1000 { return deleted }
                }
            })
            tally.done.store(true, ordering: .relaxed)
            try await watcher.value
            try await saver.value
            let deleted = try cleaned.get()
            let writerCheckpoints = backend.writerCheckpointRuns
            let truncates = backend.truncateCheckpointRuns
            let tailCopies = backend.checkpointer?.tailRuns.load(ordering: .relaxed) ?? 0
            try await backend.close()

            // Frames are a page plus a 24-byte header; the file has a 32-byte header.
            let hardLimit = Int(SQLiteCheckpointer.hardLimitPages) * (4096 + 24) + 32
            #expect(deleted == 120_000)
            #expect(tally.saves.load(ordering: .relaxed) > 0, "saves ran during the cleanup")
            #expect(tally.walPeak.load(ordering: .relaxed) < hardLimit,
                    "the WAL peaked at \(tally.walPeak.load(ordering: .relaxed)) bytes; the writer checkpoints, saves waiting, from \(hardLimit)")
            #expect(writerCheckpoints == 0, "no save waited for the writer's back-pressure checkpoint")
            // Between two deleteExpired calls no cleanup runs, so the checkpointer may escalate
            // to a TRUNCATE there on a loaded machine (seen once at load average 12): reported,
            // not asserted; the WAL bound above is what a user relies on.
            // Whether the cleanup had to wait for a pass and restart the WAL itself depends on how
            // fast the checkpointer ran (none on a quiet machine, where passes keep up): reported.
            print("cleanup test: \(truncates) TRUNCATE checkpoint(s) between cleanup calls, \(tailCopies) WAL restart(s) by the cleanup")
        }
    }

    @Test func aCancelledCleanupStopsBetweenSlicesReportsWhatItDeletedAndLeavesCheckpointsRunning() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try Self.fill(database.path, expired: 30_000, live: 1000)
            let cleanup = Task { try await backend.deleteExpired(before: 2000, limit: 30_000) }
            while backend.cleanupSlicer.statistics.slices < 10 {
                try await Task.sleep(for: .milliseconds(1))
            }
            cleanup.cancel()
            let deleted = try await cleanup.value
            let held = backend.checkpointer?.passesHeld
            try await backend.close()

            #expect(deleted > 0 && deleted < 30_000, "stopped part-way: \(deleted)")
            #expect(try Self.rowCount(database.path, where: "expires_at < 2000") == 30_000 - deleted,
                    "the count returned is exactly what was deleted")
            #expect(held == false, "the checkpointer is not left waiting for a restart that never comes")
        }
    }

    @Test func aCleanupInSmallBatchesReadsTheTableOnce() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try Self.fill(database.path, expired: 20_000, live: 20_000)
            var deleted = 0
            var calls = 0
            while true {
                let count = try await backend.deleteExpired(before: 2000, limit: 100)
                deleted += count
                calls += 1
                if count < 100 { break }
            }
            let scanned = backend.cleanupSlicer.statistics.scanned
            try await backend.close()

            #expect(deleted == 20_000)
            #expect(calls == 201)
            #expect(try Self.rowCount(database.path, where: "expires_at < 2000") == 0, "every expired row deleted")
            #expect(try Self.rowCount(database.path, where: "expires_at >= 2000") == 20_000, "every live row kept")
            // Each call goes on where the last stopped: one pass reads 40,000 rows, starting
            // over at every call about 4 million. A pause of over a second between two calls
            // on a loaded machine starts one pass over, hence the margin.
            #expect(scanned < 3 * 40_000, "the walk read \(scanned) rows for a table of 40,000")
        }
    }

    @Test func aCallWhoseCutOffMovedOnFurtherThanTheTimeSinceTheLastStartsAtTheFirstKey() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try Self.fill(database.path, expired: 5000, live: 1000)
            // 5000 more that expire at 100,000 ms: live for the first call, expired for the second.
            try Self.fill(database.path, expired: 5000, live: 0, expiry: "100000")
            let first = try await backend.deleteExpired(before: 2000, limit: 10)
            let second = try await backend.deleteExpired(before: 10_000_000, limit: 100_000)
            try await backend.close()

            #expect(first == 10)
            // Rows behind the first call's position that expired between the two cut-offs
            // are deleted too: the second call walked the whole table.
            #expect(second == 9990)
            #expect(try Self.rowCount(database.path, where: "expires_at < 10000000") == 0)
            #expect(try Self.rowCount(database.path, where: "expires_at >= 10000000") == 1000)
        }
    }

    @Test(arguments: [KeyLayout.idOnly, .checksumAndID])
    func aCleanupInBatchesStopsAtItsLimitAndDeletesEveryExpiredRowInEitherKeyLayout(_ layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.keyLayout = layout }
            try Self.fill(database.path, expired: 3000, live: 3000, layout: layout)
            var full = 0
            var last = 0
            while true {
                last = try await backend.deleteExpired(before: 2000, limit: 7)
                if last < 7 { break }
                full += 1
            }
            try await backend.close()

            #expect(full == 3000 / 7 && last == 3000 % 7, "\(full) full calls, then \(last)")
            #expect(try Self.rowCount(database.path, where: "expires_at < 2000") == 0, "every expired row deleted")
            #expect(try Self.rowCount(database.path, where: "expires_at >= 2000") == 3000, "every live row kept")
        }
    }

    /// The session table as releases before the key-order cleanup created it, with the
    /// index on `expires_at` they kept.
    static func legacySchema(_ layout: KeyLayout) -> String {
        let table = layout == .checksumAndID
            ? "CREATE TABLE sessions (crc32 INTEGER NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (crc32, id)) WITHOUT ROWID"
            : "CREATE TABLE sessions (id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID"
        return """
            PRAGMA journal_mode = WAL;
            CREATE TABLE session_store_schema (table_name TEXT PRIMARY KEY, version INTEGER NOT NULL, key_layout TEXT NOT NULL);
            CREATE TABLE session_store_lease (table_name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
            \(table);
            CREATE INDEX sessions_expires ON sessions (expires_at);
            INSERT INTO session_store_schema (table_name, version, key_layout) VALUES ('sessions', 1, '\(layout.rawValue)');
            """
    }

    @Test(arguments: [KeyLayout.idOnly, .checksumAndID])
    func openingATableWithTheOldExpiryIndexDropsItKeepsItsRowsAndCleansUp(_ layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            try rawScript(database.path, Self.legacySchema(layout))
            try Self.fill(database.path, expired: 2000, live: 2000, layout: layout)
            let kept = SessionKey(value: "kept-session")
            let keyValues = layout == .checksumAndID ? "\(kept.checksum), 'kept-session'" : "'kept-session'"
            try rawSQL(database.path, """
                INSERT INTO sessions (\(layout == .checksumAndID ? "crc32, id" : "id"), data, version, created_at, expires_at) \
                VALUES (\(keyValues), x'0102', 3, 0, 1000000000000)
                """)
            #expect(try rawSQL(database.path, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'")
                == ["sessions_expires"], "the fixture has the old index")

            let backend = try database.open { $0.keyLayout = layout }
            let indexes = try rawSQL(database.path, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'")
            let loaded = try await backend.load(kept, now: 2000)
            let deleted = try await backend.deleteExpired(before: 2000, limit: 10_000)
            try await backend.close()

            #expect(indexes.isEmpty, "the index is dropped on open: \(indexes)")
            #expect(loaded?.data == [1, 2] && loaded?.version == 3, "an existing session loads as before")
            #expect(deleted == 2000)
            #expect(try Self.rowCount(database.path, where: "expires_at >= 2000") == 2001, "every live row kept")
            #expect(try rawSQL(database.path, "SELECT version FROM session_store_schema WHERE table_name = 'sessions'") == ["1"],
                    "the schema version stays 1, so earlier releases still open the file")
            #expect(try rawSQL(database.path, "PRAGMA integrity_check") == ["ok"])
        }
    }

    /// A position copied from a one-row query, for the walk's own rules.
    static func walkPosition(_ connection: SQLiteConnection) throws -> SQLiteWalkPosition {
        let statement = try connection.statement("SELECT 'some-key'", operation: "test")
        defer { statement.reset() }
        guard try statement.step(operation: "test") else { throw RawSQLiteError(message: "no row") }
        return try SQLiteWalkPosition(statement, columns: 1, operation: "test")
    }

    @Test func aWalkGoesOnOnlyForTheNextCallOfTheSameCleanup() throws {
        let connection = try SQLiteConnection(path: ":memory:", uri: false, busyTimeoutMilliseconds: 0)
        defer { connection.close() }
        let position = try Self.walkPosition(connection)
        let walk = SQLiteCleanupWalk()
        let started = ContinuousClock.now
        let ended = started + .milliseconds(100)
        let next = ended + .milliseconds(10)

        walk.leave(position, before: 5000, started: started, ended: ended)
        #expect(walk.resume(before: 5110, at: next) === position, "the cut-off moved as far as the clock: the same cleanup")
        #expect(walk.resume(before: 5110, at: next) == nil, "a position is used once")

        walk.leave(position, before: 5000, started: started, ended: ended)
        #expect(walk.resume(before: 5000, at: ended + SQLiteCleanupWalk.maxPause * 2) == nil, "a long pause: another cleanup")

        walk.leave(position, before: 5000, started: started, ended: ended)
        #expect(walk.resume(before: 5000 + 3_600_000, at: next) == nil, "a cut-off an hour later: rows behind the position expired since")

        walk.leave(position, before: 5000, started: started, ended: ended)
        #expect(walk.resume(before: 4000, at: next) === position, "an earlier cut-off: everything behind the position was checked")

        walk.leave(position, before: .min, started: started, ended: ended)
        #expect(walk.resume(before: .max, at: next) == nil, "a difference past Int64 starts over")
    }

    @Test func aSliceThatTookTooLongShrinksTowardTheTarget() {
        let slicer = SQLiteCleanupSlicer()
        let rows = slicer.rows
        slicer.record(rows: rows, scanned: rows, deleted: rows, elapsed: SQLiteCleanupSlicer.targetDuration * 4)
        #expect(slicer.rows == rows / 4)
        for _ in 0..<20 {
            slicer.record(rows: slicer.rows, scanned: slicer.rows, deleted: slicer.rows, elapsed: .seconds(1))
        }
        #expect(slicer.rows == SQLiteCleanupSlicer.minRows, "never below the floor")
    }

    @Test func aSliceOfAnotherSizeThanTheCurrentOneChangesNothing() {
        let slicer = SQLiteCleanupSlicer()
        let rows = slicer.rows
        slicer.record(rows: SQLiteCleanupSlicer.minRows, scanned: SQLiteCleanupSlicer.minRows, deleted: SQLiteCleanupSlicer.minRows, elapsed: .seconds(1))
        #expect(slicer.rows == rows, "a small paced slice that took long says nothing about the size")
        #expect(slicer.statistics.slices == 1)
    }

    @Test func aQuickFullSliceGrowsUpToTheCapAndAShortLastSliceChangesNothing() {
        let slicer = SQLiteCleanupSlicer()
        let rows = slicer.rows
        slicer.record(rows: rows, scanned: rows / 2, deleted: 0, elapsed: .microseconds(10))
        #expect(slicer.rows == rows, "a short last slice says nothing about the size")
        slicer.record(rows: rows, scanned: rows, deleted: 0, elapsed: .microseconds(10))
        #expect(slicer.rows == rows * 2)
        for _ in 0..<20 {
            slicer.record(rows: slicer.rows, scanned: slicer.rows, deleted: slicer.rows / 2, elapsed: .microseconds(10))
        }
        #expect(slicer.rows == SQLiteCleanupSlicer.maxRows)
        #expect(slicer.statistics.slices == 22)
    }
}

/// What the WAL test's background tasks share.
final class CleanupTally: Sendable {
    let done = Atomic<Bool>(false)
    let walPeak = Atomic<Int>(0)
    let saves = Atomic<Int>(0)

    /// Records the WAL file's largest size, looked at every millisecond, until done.
    func watchWAL(_ path: String) -> Task<Void, any Error> {
        Task {
            while !done.load(ordering: .relaxed) {
                let size = SQLiteCleanupTests.fileSize(path)
                if size > walPeak.load(ordering: .relaxed) { walPeak.store(size, ordering: .relaxed) }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// Saves steadily until done: inserts and touches 50 rows in turn, one a millisecond.
    func saveSteadily(through backend: some StorageBackend) -> Task<Void, any Error> {
        Task {
            var index = 0
            while !done.load(ordering: .relaxed) {
                let key = SessionKey(value: "saver-\(index % 50)")
                _ = try await backend.insert(key, record("x", createdAt: 0, expiresAt: 1_000_000_000_000 + Int64(index)))
                _ = try await backend.touch(key, expiresAt: 2_000_000_000_000 + Int64(index), now: 2000)
                saves.add(1, ordering: .relaxed)
                index += 1
                try await Task.sleep(for: .milliseconds(1))
            }
        }
    }
}

extension Result where Failure == any Error {
    /// Captures the outcome of an async throwing body.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
