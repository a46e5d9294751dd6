import Foundation
import SessionStore
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
}
