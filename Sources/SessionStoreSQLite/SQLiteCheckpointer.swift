import CSessionStoreSQLite
import Dispatch
import Foundation
import Logging
import SessionStore
import Synchronization

/// Checkpoints the WAL on a thread and connection of its own, so saves never pay for it.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the threshold: on
/// the writer thread, stalling every save queued behind it (measured here: 60-210 ms
/// during a cleanup, against 4-6 ms with checkpoints moved away). The writer's WAL hook
/// wakes this thread instead, which runs a PASSIVE checkpoint: it copies what no reader
/// still needs and never blocks the writer or the readers.
final class SQLiteCheckpointer: Sendable {
    /// WAL pages after a commit that trigger a checkpoint (SQLite's default threshold).
    static let thresholdPages: Int32 = 1000

    private let wakeup = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let pending = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the thread, which takes ownership of `connection`.
    init(connection: SQLiteTransfer<SQLiteConnection>, logger: Logger) {
        let thread = Thread { [self] in
            self.run(connection.value, logger: logger)
        }
        thread.name = "SessionStoreSQLite.checkpointer"
        thread.start()
    }

    /// Makes `writer`'s commits wake this checkpointer instead of checkpointing inline.
    /// The connection keeps the checkpointer alive until it closes.
    func install(on writer: SQLiteConnection) {
        writer.hookOwner = self
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_wal_hook(writer.database, sqliteWALHook, context)
    }

    /// Called by the WAL hook on the writer thread after a commit.
    fileprivate func walGrew(to pages: Int32) {
        guard pages >= Self.thresholdPages, !pending.exchange(true, ordering: .relaxed) else { return }
        wakeup.signal()
    }

    /// Stops the thread after a checkpoint in progress and closes its connection.
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        wakeup.signal()
        finished.wait()
    }

    private func run(_ connection: SQLiteConnection, logger: Logger) {
        while true {
            wakeup.wait()
            if stopping.load(ordering: .relaxed) { break }
            pending.store(false, ordering: .relaxed)
            var walPages: Int32 = 0
            var copied: Int32 = 0
            let code = sqlite3_wal_checkpoint_v2(connection.database, nil, SQLITE_CHECKPOINT_PASSIVE, &walPages, &copied)
            if code != SQLITE_OK && code != SQLITE_BUSY {
                // Not fatal: the WAL keeps growing until the next checkpoint succeeds.
                let error = SQLiteConnection.error(
                    database: connection.database, code: code, operation: "checkpoint", statement: nil)
                logger.warning("SQLite WAL checkpoint failed", metadata: ["error": "\(error)"])
            }
        }
        connection.close()
        finished.signal()
    }
}

/// The writer connection's WAL hook: hands the WAL size to the checkpointer. Returns
/// SQLITE_OK so the commit itself is unaffected.
private func sqliteWALHook(
    _ context: UnsafeMutableRawPointer?, _ database: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ pages: Int32
) -> Int32 {
    guard let context else { return SQLITE_OK }
    Unmanaged<SQLiteCheckpointer>.fromOpaque(context).takeUnretainedValue().walGrew(to: pages)
    return SQLITE_OK
}
