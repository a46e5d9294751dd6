import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite
import Synchronization
import Testing

/// `rekey` rewrites every row inside one ``EncryptingBackend/resealing(_:)`` scope; on SQLite
/// each rewrite is paced by the WAL as cleanup's slices are. Sizes and counts only, never times.
@Suite("SQLite rekey pacing")
struct SQLiteRekeyPacingTests {
    @Test("a rekey beside a reader and a saver keeps the WAL below the writer's back-pressure limit and never escalates a checkpoint")
    func rekeyKeepsTheWALBelowTheWritersBackPressureLimit() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            // 60,000 plaintext rows of 200 bytes (first byte 0x01: the attribute codec's
            // range, never the encrypted one), written through the backend: rewriting them is
            // several times the WAL's pace limit, so an unpaced rekey drives the WAL to the
            // writer's limit.
            let keys = (0..<60_000).map { SessionKey(value: "row-\($0)") }
            for (index, key) in keys.enumerated() {
                let data = [0x01] + [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 199)
                _ = try await backend.insert(key, SessionRecord(data: data, version: 1, createdAt: 0, expiresAt: 1_000_000_000_000))
            }
            _ = try rawSQL(database.path, "PRAGMA wal_checkpoint(TRUNCATE)")
            // The fill's own checkpoints are not the rekey's.
            let writerCheckpointsBefore = backend.writerCheckpointRuns
            let truncatesBefore = backend.truncateCheckpointRuns
            let ring = try EncryptionKeyRing(active: EncryptionKeyRing.Key(id: "k1", bytes: [UInt8](repeating: 0x42, count: 32)))
            let sealing = EncryptingBackend(wrapping: backend, keys: ring)
            let walPath = database.path + "-wal"
            let tally = CleanupTally()
            let watcher = tally.watchWAL(walPath)
            let reader = Task {
                var index = 0
                while !tally.done.load(ordering: .relaxed) {
                    _ = try await sealing.load(keys[index % keys.count], now: 2000)
                    index += 7
                }
            }
            let saver = tally.saveSteadily(through: sealing)
            let resealed = await Result(catching: {
                try await sealing.resealing { resealer in
                    // Counted inside the scope: once it ends, the saver's own checkpoints may escalate.
                    let atStart = backend.truncateCheckpointRuns
                    let counts = try await resealer.reseal(keys, now: 2000, parallel: 8)
                    return (counts, backend.truncateCheckpointRuns - atStart)
                }
            })
            tally.done.store(true, ordering: .relaxed)
            try await watcher.value
            try await reader.value
            try await saver.value
            let writerCheckpoints = backend.writerCheckpointRuns - writerCheckpointsBefore
            let truncates = backend.truncateCheckpointRuns - truncatesBefore
            let tailCopies = backend.checkpointer?.tailRuns.load(ordering: .relaxed) ?? 0
            try await backend.close()

            // Frames are a page plus a 24-byte header; the file has a 32-byte header.
            let hardLimit = Int(SQLiteCheckpointer.hardLimitPages) * (4096 + 24) + 32
            let (counts, truncatesDuringRekey) = try resealed.get()
            #expect(counts == EncryptingBackend.Resealer.Counts(rewritten: 60_000, failed: 0), "every row was rewritten")
            #expect(tally.saves.load(ordering: .relaxed) > 0, "saves ran during the rekey")
            #expect(tally.walPeak.load(ordering: .relaxed) < hardLimit,
                    "the WAL peaked at \(tally.walPeak.load(ordering: .relaxed)) bytes; the writer checkpoints, saves waiting, from \(hardLimit)")
            #expect(writerCheckpoints == 0, "no save waited for the writer's back-pressure checkpoint")
            #expect(truncatesDuringRekey == 0, "the checkpointer never escalated to a TRUNCATE (which holds saves back) while the rekey ran")
            print("rekey pacing test: \(tailCopies) WAL restart(s) by the rekey, WAL peak \(tally.walPeak.load(ordering: .relaxed)) bytes, \(writerCheckpoints) writer checkpoint(s), \(truncates) TRUNCATE(s)")
        }
    }

    @Test("once a paced rewrite has copied the WAL back, it does not pace again before the next write starts the WAL over")
    func aPacedRewriteThatCopiedTheWALBackDoesNotPaceAgainBeforeTheRestart() async throws {
        try await withTemporaryDatabase { database in
            let restart = try await Self.pacedRestart(database)
            #expect(restart.reachedPace, "the inserts brought the WAL to the pace limit")
            #expect(restart.firstTails == 1, "the first pace copied the tail on the writer's connection")
            #expect(restart.secondTails == 0, "the second pace found every frame copied and did not pace again")
            #expect(!restart.pastPaceAfterWrite, "the next write started the WAL over")
        }
    }

    @Test("the write that starts the WAL over after a paced rewrite keeps the WAL file instead of truncating it")
    func theRestartAfterAPacedRewriteKeepsTheWALFile() async throws {
        try await withTemporaryDatabase { database in
            let restart = try await Self.pacedRestart(database)
            #expect(restart.reachedPace && !restart.pastPaceAfterWrite, "the WAL reached the pace limit and started over")
            // Frames are a page plus a 24-byte header; the file has a 32-byte header.
            let thresholdBytes = Int(SQLiteCheckpointer.thresholdPages) * 4096
            let fileLimit = Int(SQLiteCheckpointer.fileLimitPages) * (4096 + 24) + 32
            let size = try #require(restart.walBytes)
            #expect(size > thresholdBytes && size <= fileLimit, "the WAL file holds \(size) bytes after the restart")
        }
    }

    /// Inserts rows inside a paced rewrite until the WAL reaches the pace limit, paces twice,
    /// then writes once more (which starts the WAL over).
    private static func pacedRestart(_ database: TemporaryDatabase) async throws
        -> (reachedPace: Bool, firstTails: Int, secondTails: Int, pastPaceAfterWrite: Bool, walBytes: Int?)
    {
        let backend = try database.open()
        let checkpointer = try #require(backend.checkpointer)
        // Rows of 3,000 bytes: each insert dirties about a page of its own.
        let record = SessionRecord(data: [0x01] + [UInt8](repeating: 7, count: 3000), version: 1, createdAt: 0, expiresAt: 1_000_000_000_000)
        let outcome = await Result(catching: {
            try await backend.pacedRewrites { pacer in
                var written = 0
                while !checkpointer.pastCleanupPace, written < 20_000 {
                    _ = try await backend.insert(SessionKey(value: "row-\(written)"), record)
                    written += 1
                }
                let reachedPace = checkpointer.pastCleanupPace
                let tailsBefore = checkpointer.tailRuns.load(ordering: .relaxed)
                try await pacer.pace()
                let tailsAfterFirst = checkpointer.tailRuns.load(ordering: .relaxed)
                try await pacer.pace()
                let tailsAfterSecond = checkpointer.tailRuns.load(ordering: .relaxed)
                _ = try await backend.insert(SessionKey(value: "after"), record)
                return (reachedPace, tailsAfterFirst - tailsBefore, tailsAfterSecond - tailsAfterFirst, checkpointer.pastCleanupPace)
            }
        })
        var info = stat()
        let walBytes = stat(database.path + "-wal", &info) == 0 ? Int(info.st_size) : nil
        try await backend.close()
        let (reachedPace, firstTails, secondTails, pastPaceAfterWrite) = try outcome.get()
        return (reachedPace, firstTails, secondTails, pastPaceAfterWrite, walBytes)
    }
}
