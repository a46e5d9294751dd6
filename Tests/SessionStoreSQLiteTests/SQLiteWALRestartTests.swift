import Foundation
import SessionStoreCore
@testable import SessionStoreSQLite
import Testing

/// Under steady saves the WAL starts over once per threshold's worth of frames
/// (``SQLiteCheckpointer/copyTailIfDue(_:)``), instead of staying past the threshold with a
/// checkpoint pass and a flush for every few saves.
@Suite("SQLite WAL restart under steady saves", .serialized)
struct SQLiteWALRestartTests {
    static let sessions = 64
    /// Enough saves (one frame each at least) to cross the threshold several times.
    static let saves = 6 * Int(SQLiteCheckpointer.thresholdPages)

    static func key(_ index: Int) -> SessionKey { SessionKey(value: "restart-\(index)") }

    /// Saves `saves` updates round-robin over the sessions, each after a load whose read
    /// lock lingers as an app's loads do; returns the errors. One task does both, so the
    /// outcome does not hang on how threads are scheduled: a load that another thread
    /// preempted halfway would hold its snapshot, and no write can start the WAL over
    /// until it ends.
    func saveAfterLoads(_ backend: SQLiteBackend) async throws -> [String] {
        for index in 0..<Self.sessions {
            #expect(try await backend.insert(Self.key(index), record("0", version: 1, expiresAt: 1_000_000)))
        }
        var errors: [String] = []
        var versions = [Int64](repeating: 1, count: Self.sessions)
        for save in 0..<Self.saves {
            let index = save % Self.sessions
            do {
                guard let loaded = try await backend.load(Self.key(index), now: 2), loaded.version == versions[index] else {
                    errors.append("load \(save) did not find version \(versions[index])")
                    continue
                }
                let data = Array("saved \(save) ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 200)
                if try await backend.update(
                    Self.key(index), data: data, expectedVersion: loaded.version, expiresAt: 1_000_000, now: 2) {
                    versions[index] += 1
                } else {
                    errors.append("save \(save) found another version")
                }
            } catch {
                errors.append("save \(save): \(error)")
            }
        }
        return errors
    }

    @Test func steadySavesStartTheWALOverInsteadOfPassingAtEveryCommit() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.readerCount = 4 }
            let errors = try await saveAfterLoads(backend)
            let checkpointer = try #require(backend.checkpointer)
            let passes = backend.checkpointRuns
            let restarts = checkpointer.restartTailRuns.load(ordering: .relaxed)
            try await backend.close()

            #expect(errors.isEmpty, "\(errors.count) errors, first: \(errors.first ?? "")")
            #expect(restarts > 0, "the writer copied the WAL's tail so that a write started it over")
            // A pass copies what was committed up to it, a few more what came during it:
            // a handful per threshold's worth of frames. Without the writer's tail copy the
            // WAL stayed past the threshold and a pass ran for every few saves.
            let cycles = Self.saves / Int(SQLiteCheckpointer.thresholdPages) + 1
            #expect(passes <= cycles * (SQLiteCheckpointer.tailRounds + 2) * 2,
                    "\(passes) checkpoint passes for \(Self.saves) saves")
        }
    }
}
