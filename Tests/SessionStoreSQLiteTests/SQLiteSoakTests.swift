import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite
import Synchronization
import Testing

/// Sustained traffic: what a burst cannot show. Bounded in duration (20 s by default,
/// `SESSION_STORE_SOAK_SECONDS` to change it) and asserting sizes and errors, never times.
@Suite("SQLite under sustained traffic", .serialized)
struct SQLiteSoakTests {
    static var seconds: Double {
        ProcessInfo.processInfo.environment["SESSION_STORE_SOAK_SECONDS"].flatMap(Double.init) ?? 20
    }

    /// The WAL bound promised: a few times the checkpoint threshold (4 KiB pages).
    static let walBound = 8 * Int(SQLiteCheckpointer.thresholdPages) * 4096

    @Test func walStaysBoundedUnderSavesLoadsTouchesAndCleanup() async throws {
        try await withTemporaryDatabase { database in
            var policy = SessionStoreConfiguration()
            policy.idleTimeout = .seconds(3)
            policy.touchInterval = .milliseconds(200)
            policy.clockSkewAllowance = .zero
            policy.cleanupBatchSize = 200
            let backend = try database.open { $0.readerCount = 4 }
            let store = try SessionStore(backend: backend, configuration: policy)
            store.startBackgroundCleanup(every: .milliseconds(500))
            let walPath = database.path + "-wal"
            let tally = SoakTally()
            // The soak runs its time, and on past it until it saw the work it asserts on: in a
            // test process whose other suites keep every core busy, its tasks may get little
            // time in the first seconds. It never runs more than five times as long.
            let start = ContinuousClock.now
            let minimum = start.advanced(by: .seconds(Self.seconds))
            let cap = start.advanced(by: .seconds(Self.seconds * 5))
            let running: @Sendable () -> Bool = {
                let now = ContinuousClock.now
                guard now < cap else { return false }
                return now < minimum || tally.saves.load(ordering: .relaxed) < 1_000 || tally.touches.load(ordering: .relaxed) < 10
            }
            let payload = String(repeating: "x", count: 300)

            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        var ids: [String] = []
                        var round = 0
                        while running() {
                            round += 1
                            do {
                                var session = try await store.load(id: ids.isEmpty || round % 3 == 0 ? nil : ids[round % ids.count])
                                try session.set("payload", payload)
                                try session.set("round", round)
                                try session.set("writer", writer)
                                if try await store.save(&session).wroteData {
                                    tally.saves.add(1, ordering: .relaxed)
                                    if ids.count < 64 { ids.append(session.id.text) } else { ids[round % 64] = session.id.text }
                                }
                            } catch {
                                tally.errors.withLock { $0.append("save: \(error)") }
                            }
                        }
                    }
                }
                for _ in 0..<4 {
                    group.addTask {
                        var known: [String] = []
                        while running() {
                            do {
                                if known.count < 32 {
                                    var session = store.newSession()
                                    try session.set("reader", true)
                                    try await store.save(&session)
                                    known.append(session.id.text)
                                }
                                for (index, id) in known.enumerated().reversed() {
                                    let session = try await store.load(id: id)
                                    if session.touchedOnLoad { tally.touches.add(1, ordering: .relaxed) }
                                    // A session this task did not load within the idle timeout
                                    // (its task got no time) expired: the next round saves a new one.
                                    if !session.isStored { known.remove(at: index) }
                                }
                                try await Task.sleep(for: .milliseconds(5))
                            } catch {
                                tally.errors.withLock { $0.append("load: \(error)") }
                            }
                        }
                    }
                }
                group.addTask {
                    while running() {
                        let size = Self.fileSize(walPath)
                        if size > tally.walPeak.load(ordering: .relaxed) { tally.walPeak.store(size, ordering: .relaxed) }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                try await group.waitForAll()
            }
            let databaseSize = Self.fileSize(database.path)
            let checkpoints = backend.checkpointRuns
            print("soak: saves \(tally.saves.load(ordering: .relaxed)), touches \(tally.touches.load(ordering: .relaxed)), WAL peak \(tally.walPeak.load(ordering: .relaxed)) bytes, database \(databaseSize) bytes, checkpoints \(checkpoints) (truncate \(backend.truncateCheckpointRuns), by the writer \(backend.writerCheckpointRuns))")
            try await store.shutdown()

            let failures = tally.errors.withLock { $0 }
            #expect(failures.isEmpty, "\(failures.count) errors, first: \(failures.first ?? "")")
            // Work happened (quiet, over 100k saves).
            #expect(tally.saves.load(ordering: .relaxed) >= 1_000, "the soak saved \(tally.saves.load(ordering: .relaxed)) sessions")
            #expect(tally.touches.load(ordering: .relaxed) >= 10, "loads touched \(tally.touches.load(ordering: .relaxed)) sessions")
            #expect(tally.walPeak.load(ordering: .relaxed) <= Self.walBound,
                    "WAL peaked at \(tally.walPeak.load(ordering: .relaxed)) bytes, bound \(Self.walBound)")
            #expect(databaseSize > 64 * 1024, "checkpoints moved rows into the database file (\(databaseSize) bytes)")
            #expect(checkpoints > 0, "the checkpointer ran")
            #expect(Self.fileSize(walPath) == 0, "shutdown leaves no WAL behind")
        }
    }

    /// What the soak's tasks count.
    final class SoakTally: Sendable {
        let errors = Mutex<[String]>([])
        let saves = Atomic<Int>(0)
        let touches = Atomic<Int>(0)
        let walPeak = Atomic<Int>(0)
    }

    /// The file's size in bytes; 0 when it does not exist (SQLite deletes the WAL on close).
    static func fileSize(_ path: String) -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int(info.st_size)
    }
}
