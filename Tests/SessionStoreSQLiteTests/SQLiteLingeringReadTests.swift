import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite
import Testing

/// The last load's read lock lingers until the next load holds it (``SQLiteReaderPool``):
/// never at the cost of a stale read, a checkpoint held back for long, or another backend.
/// The backends here load through SQLite every time (no load cache), as these are the
/// reader pool's behaviours.
@Suite("SQLite lingering read lock")
struct SQLiteLingeringReadTests {
    static let row = SessionKey(value: "lingering-row")

    /// Polls `condition` every millisecond for at most 20 s (a bound for a stuck state,
    /// not a timing assertion); returns whether it became true.
    func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<20_000 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(1))
        }
        return try await condition()
    }

    @Test func aHitAndAMissBothLeaveTheirReadLockAndTheSweepEndsIt() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.loadCacheSlots = 0 }
            #expect(try await backend.insert(Self.row, record("a")))
            let readers = try #require(backend.readers)
            for key in [Self.row, SessionKey(value: "never-stored")] {
                _ = try await backend.load(key, now: 2)
                // Either the load's own lock or, if the sweep ran in between, none: the
                // sweep is what must end it.
                #expect(try await eventually { !readers.hasLingeringRead }, "the sweep ended the linger of \(key.value)")
            }
            let sweeps = readers.sweepsRun
            _ = try await backend.load(Self.row, now: 2)
            #expect(readers.hasLingeringRead || readers.sweepsRun > sweeps, "a load leaves its read lock until a sweep")
            try await backend.close()
        }
    }

    @Test func everyLoadSeesTheSaveThatReturnedBeforeIt() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.loadCacheSlots = 0 }
            #expect(try await backend.insert(Self.row, record("v1", version: 1, expiresAt: 1_000_000)))
            var stale = 0
            for version in Int64(1)..<500 {
                let data = Array("v\(version + 1)".utf8)
                #expect(try await backend.update(Self.row, data: data, expectedVersion: version, expiresAt: 1_000_000, now: 2))
                let loaded = try await backend.load(Self.row, now: 2)
                if loaded?.version != version + 1 || loaded?.data != data { stale += 1 }
            }
            #expect(stale == 0, "no load read the snapshot a lingering lock still holds")
            try await backend.close()
        }
    }

    @Test func anotherConnectionTruncatesTheWALWhileLoadsRunWithoutPause() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.loadCacheSlots = 0 }
            #expect(try await backend.insert(Self.row, record("a", expiresAt: 1_000_000)))
            let stop = StartedCounter()
            let running = StartedCounter()
            let loads = Task {
                var count = 0
                while stop.value == 0 {
                    _ = try await backend.load(Self.row, now: 2)
                    count += 1
                    if count == 1000 { running.increment() }
                }
                return count
            }
            #expect(try await eventually { running.value > 0 }, "loads are running")
            // Frames from another connection, then its TRUNCATE checkpoint, which needs a
            // moment when no reader holds an old snapshot (busy handler: up to 30 s).
            try rawScript(database.path, "CREATE TABLE IF NOT EXISTS other (n INTEGER); INSERT INTO other VALUES (1);")
            let result = try rawSQL(database.path, "PRAGMA wal_checkpoint(TRUNCATE)", busyTimeoutMilliseconds: 30_000)
            stop.increment()
            let loaded = try await loads.value
            #expect(result.first == "0", "the checkpoint was not left busy (got \(result)) while \(loaded) loads ran")
            var info = stat()
            #expect(stat(database.path + "-wal", &info) == 0 && info.st_size == 0, "the WAL file was truncated")
            try await backend.close()
        }
    }

    @Test func twoBackendsOnOneDatabaseDoNotLinger() async throws {
        try await withTemporaryDatabase { database in
            let first = try database.open { $0.loadCacheSlots = 0 }
            #expect(try await first.insert(Self.row, record("a")))
            let readers = try #require(first.readers)
            let second = try database.open { $0.loadCacheSlots = 0 }
            // The first backend learns of the second at its next sweep.
            let stopped = try await eventually {
                _ = try await first.load(Self.row, now: 2)
                return !readers.hasLingeringRead
            }
            #expect(stopped, "with a second backend open, a load gives its read lock back at once")
            try await second.close()
            let resumed = try await eventually {
                _ = try await first.load(Self.row, now: 2)
                return readers.hasLingeringRead
            }
            #expect(resumed, "alone again, loads linger again")
            try await first.close()
            #expect(try SQLiteLifecycleTests.openDescriptors(under: database.directory.path) == 0, "the probe file is closed too")
        }
    }

    @Test func closingWhileALoadLingersClosesEveryReader() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.loadCacheSlots = 0 }
            #expect(try await backend.insert(Self.row, record("a")))
            _ = try await backend.load(Self.row, now: 2)
            try await backend.close()
            #expect(try SQLiteLifecycleTests.openDescriptors(under: database.directory.path) == 0)
            // No lock is left: an exclusive transaction from outside starts at once.
            try rawScript(database.path, "BEGIN EXCLUSIVE; COMMIT;")
        }
    }
}
