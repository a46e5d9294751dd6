import SessionStore
import Synchronization

extension SQLiteBackend {
    /// Deletes up to `limit` rows with `expires_at < before` (oldest first) and returns how
    /// many it deleted.
    ///
    /// The rows go in slices, each one `DELETE` in a transaction of its own on the writer
    /// thread, queued behind the saves waiting at that moment, so a save waits for at most
    /// one slice. A slice is sized to take about ``SQLiteCleanupSlicer/targetDuration``
    /// (measured on the slices before it, at most ``SQLiteCleanupSlicer/maxRows`` rows).
    /// Once the WAL passes ``SQLiteCheckpointer/cleanupPacePages``, the cleanup waits for
    /// the checkpointer to copy it back and its next slice starts the WAL over, so the WAL
    /// never reaches the size where a save would wait for a checkpoint. Each slice
    /// re-checks `expires_at < before` in its own statement, so a row touched or saved a
    /// moment earlier is never deleted, and a cleanup stopped between slices leaves nothing
    /// half-done. A cancelled task stops after
    /// the slice in flight and returns the rows deleted so far (fewer than `limit`, so the
    /// store's loop ends too).
    /// - Throws: ``StorageError``.
    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        // The limit is the store's configured batch size, validated to be at least 1.
        precondition(limit > 0, "limit must be positive")
        try checkOpen("deleteExpired")
        guard let checkpointer else { return try await deleteExpiredSlices(before: before, limit: limit, paced: nil) }
        return try await checkpointer.whileCleaning {
            try await deleteExpiredSlices(before: before, limit: limit, paced: checkpointer)
        }
    }

    private func deleteExpiredSlices(before: Int64, limit: Int, paced checkpointer: SQLiteCheckpointer?) async throws -> Int {
        var deleted = 0
        while deleted < limit, !Task.isCancelled {
            let copyTail: Bool
            do {
                copyTail = try await checkpointer?.paceCleanup(patience: configuration.busyTimeout) ?? false
            } catch is CancellationError {
                break
            }
            let full = checkpointer?.pastCleanupPace != true
            let rows = min(limit - deleted, full ? cleanupSlicer.rows : SQLiteCleanupSlicer.minRows)
            let (count, elapsed): (Int, Duration)
            do {
                (count, elapsed) = try await deleteExpiredSlice(before: before, limit: rows, copyTail: copyTail ? checkpointer : nil)
            } catch {
                // The slice never ran (cancelled while queued, or the backend closed).
                if copyTail { checkpointer?.releasePasses() }
                if error is CancellationError { break }
                throw error
            }
            cleanupSlicer.record(rows: rows, deleted: count, elapsed: elapsed)
            deleted += count
            if count < rows { break }
        }
        return deleted
    }

    /// Deletes up to `limit` expired rows in one statement on the writer thread (never
    /// inline on the caller's) and returns the count and the statement's own duration;
    /// first copies the WAL's tail back through `copyTail` when given.
    private func deleteExpiredSlice(
        before: Int64, limit: Int, copyTail checkpointer: SQLiteCheckpointer?
    ) async throws -> (Int, Duration) {
        let sql = queries.deleteExpired
        let elapsed = SQLiteResultBox<Duration>()
        let outcome = try await writer.submit(.background, operation: "deleteExpired") { connection in
            checkpointer?.copyTail(connection.database)
            let clock = ContinuousClock()
            let start = clock.now
            let statement = try connection.statement(sql, operation: "deleteExpired")
            defer { statement.reset() }
            try statement.bind(1, before, operation: "deleteExpired")
            try statement.bind(2, Int64(limit), operation: "deleteExpired")
            try statement.run(operation: "deleteExpired")
            let changes = connection.changes
            elapsed.value = clock.now - start
            return .changes(changes)
        }
        guard case .changes(let count) = outcome else { preconditionFailure("a cleanup slice produced no count") }
        return (count, elapsed.value ?? .zero)
    }
}

/// Sizes cleanup slices by their measured duration: large enough that a slice's fixed cost
/// (statement, commit, hand-off to the writer thread) is small against its rows, small
/// enough that a save queued behind it waits about ``targetDuration`` at most, whatever
/// the machine, the row size or the load.
final class SQLiteCleanupSlicer: Sendable {
    /// The duration a slice aims for: what a save may wait behind one.
    static let targetDuration = Duration.milliseconds(4)
    /// The fewest rows a slice deletes.
    static let minRows = 8
    /// The most rows a slice deletes: each deleted row dirties one page or more, and a
    /// slice must fit between ``SQLiteCheckpointer/cleanupPacePages`` and the WAL size at
    /// which the writer would hold saves back (``SQLiteCheckpointer/hardLimitPages``).
    static let maxRows = Int(SQLiteCheckpointer.thresholdPages) / 2
    /// The first slice's rows, before any was measured.
    static let initialRows = 64

    private struct State {
        var rows = SQLiteCleanupSlicer.initialRows
        var slices = 0
        var largest = 0
    }

    private let state = Mutex(State())

    /// The rows the next slice may delete.
    var rows: Int { state.withLock { $0.rows } }

    /// Slices run so far and the most rows one of them deleted; for tests.
    var statistics: (slices: Int, largest: Int) { state.withLock { ($0.slices, $0.largest) } }

    /// Adjusts the slice size after a slice of `rows` that deleted `deleted` rows in
    /// `elapsed`: shrinks it in proportion when it took longer than the target, doubles it
    /// when it took less than half the target and was full. Only a slice of the current
    /// size counts: a short last slice, or a small one the WAL's pacing asked for, says
    /// nothing about the size.
    func record(rows: Int, deleted: Int, elapsed: Duration) {
        state.withLock { state in
            state.slices += 1
            state.largest = max(state.largest, deleted)
            guard rows == state.rows else { return }
            let target = Self.targetDuration
            if elapsed > target {
                let scaled = Double(state.rows) * (target / elapsed)
                state.rows = max(Self.minRows, Int(scaled))
            } else if elapsed * 2 < target, deleted == rows {
                state.rows = min(Self.maxRows, state.rows * 2)
            }
        }
    }
}
