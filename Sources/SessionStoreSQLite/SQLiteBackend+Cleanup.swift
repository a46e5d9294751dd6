import SessionStoreCore
import Synchronization

extension SQLiteBackend {
    /// Deletes up to `limit` rows with `expires_at < before`, walking the table in key
    /// order, and returns how many it deleted.
    ///
    /// The table has no index on `expires_at`: a deleted row then dirties only its own leaf
    /// page, and a walk in key order rewrites each page once however many of its rows go.
    /// Measured with 500k expired rows of 1M: slices in expiry order through an index wrote
    /// ~600k WAL frames (the store, before this walk), the walk in key order ~83k, as many
    /// as one unbounded `DELETE` (~82k; both in a Python `sqlite3` experiment). Saves and
    /// touches that move `expires_at` no longer rewrite an index entry either.
    ///
    /// The walk goes in slices, each one scan of the next rows in key order plus one
    /// `DELETE` of the expired ones in that key range, in a transaction of its own on the
    /// writer thread, queued behind the saves waiting at that moment, so a save waits for at
    /// most one slice. A slice is sized to take about `SQLiteCleanupSlicer.targetDuration`
    /// (measured on the slices before it, at most `SQLiteCleanupSlicer.maxRows` rows
    /// scanned); a slice that finds nothing expired writes nothing. Once the WAL passes
    /// `SQLiteCheckpointer.cleanupPacePages`, the cleanup waits for the checkpointer to
    /// copy it back and its next slice starts the WAL over, so the WAL never reaches the
    /// size where a save would wait for a checkpoint. Each `DELETE` re-checks
    /// `expires_at < before` itself, so a row touched or saved a moment earlier is never
    /// deleted, and a cleanup stopped between slices leaves nothing half-done.
    ///
    /// A call that reaches `limit` leaves its position behind, and the next call goes on
    /// from there when it follows within `SQLiteCleanupWalk.maxPause` with a cut-off
    /// that moved on no further than the time between them (the store's cleanup loop), so
    /// a cleanup in many batches walks the table once. Any other call starts at the table's
    /// first key. The walk's end returns fewer than `limit`, which ends the store's loop.
    /// A cancelled task stops after the slice in flight and returns the rows deleted so far
    /// (fewer than `limit`, so the store's loop ends too), and the next call starts over.
    /// - Throws: `StorageError`.
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
        let clock = ContinuousClock()
        let started = clock.now
        var position = cleanupWalk.resume(before: before, at: started)
        var deleted = 0
        while deleted < limit, !Task.isCancelled {
            let copyTail: Bool
            do {
                copyTail = try await checkpointer?.paceCleanup(patience: configuration.busyTimeout) ?? false
            } catch is CancellationError {
                break
            }
            let full = checkpointer?.pastCleanupPace != true
            let rows = full ? cleanupSlicer.rows : SQLiteCleanupSlicer.minRows
            let slice: SQLiteCleanupSlice
            do {
                slice = try await deleteExpiredSlice(
                    before: before, after: position, scan: rows, limit: limit - deleted, copyTail: copyTail ? checkpointer : nil)
            } catch {
                // The slice never ran (cancelled while queued, or the backend closed), or
                // it failed and rolled back: the next call starts over.
                if copyTail { checkpointer?.releasePasses() }
                if error is CancellationError { break }
                throw error
            }
            cleanupSlicer.record(rows: rows, scanned: slice.scanned, deleted: slice.deleted, elapsed: slice.elapsed)
            deleted += slice.deleted
            guard let next = slice.end else {
                // The walk reached the table's end.
                return deleted
            }
            position = next
        }
        if deleted == limit, let position {
            cleanupWalk.leave(position, before: before, started: started, ended: clock.now)
        }
        return deleted
    }

    /// Runs one slice on the writer thread (never inline on the caller's), in one
    /// transaction: scans up to `scan` rows after `after` in key order, stopping early at
    /// the `limit`-th expired row, then deletes the expired rows of that key range. First
    /// copies the WAL's tail back through `copyTail` when given.
    private func deleteExpiredSlice(
        before: Int64, after: SQLiteWalkPosition?, scan: Int, limit: Int, copyTail checkpointer: SQLiteCheckpointer?
    ) async throws -> SQLiteCleanupSlice {
        let queries = queries
        let result = SQLiteResultBox<SQLiteCleanupSlice>()
        let operation = "deleteExpired"
        // One job, not a multi-statement one: the WAL's tail is copied back before the
        // slice's transaction begins (a checkpoint cannot run inside one).
        // It deletes rows only: the load cache's key filter stays complete.
        _ = try await writer.submit(.background, operation: operation, addsKeys: false) { connection in
            checkpointer?.copyTail(connection.database)
            let clock = ContinuousClock()
            let start = clock.now
            let slice = try connection.immediateTransaction(operation: operation) { () throws(StorageError) in
                try Self.walkSlice(connection, queries: queries, before: before, after: after, scan: scan, limit: limit)
            }
            result.value = SQLiteCleanupSlice(scanned: slice.scanned, deleted: slice.deleted, end: slice.end, elapsed: clock.now - start)
            return .changes(slice.deleted)
        }
        guard let slice = result.value else { preconditionFailure("a cleanup slice produced no result") }
        return slice
    }
}

extension SQLiteBackend {
    /// A slice's statements inside its transaction: the scan of up to `scan` rows after
    /// `after`, stopping at the `limit`-th expired row, then the `DELETE` of the expired
    /// rows in that key range (none when the scan found none).
    fileprivate static func walkSlice(
        _ connection: SQLiteConnection, queries: SQLiteQueries, before: Int64, after: SQLiteWalkPosition?, scan: Int, limit: Int
    ) throws(StorageError) -> SQLiteCleanupSlice {
        let operation = "deleteExpired"
        let width = queries.keyWidth
        let scanner = try connection.statement(queries.walkScan(afterPosition: after != nil), operation: operation)
        defer { scanner.reset() }
        try scanner.bind(1, before, operation: operation)
        try scanner.bind(2, Int64(scan), operation: operation)
        if let after { try after.bind(to: scanner, from: 3, operation: operation) }
        var scanned = 0
        var expired = 0
        var bytes = 0
        var end: SQLiteWalkPosition?
        while try scanner.step(operation: operation) {
            scanned += 1
            if try scanner.int64(width, operation: operation) != 0 { expired += 1 }
            bytes += SQLiteCleanupSlicer.leafBytes(data: try scanner.int64(width + 1, operation: operation))
            if expired == limit || scanned == scan || bytes >= SQLiteCleanupSlicer.maxBytes {
                end = try SQLiteWalkPosition(scanner, columns: width, operation: operation)
                break
            }
        }
        scanner.reset()
        guard expired > 0 else { return SQLiteCleanupSlice(scanned: scanned, deleted: 0, end: end, elapsed: .zero) }
        let deleter = try connection.statement(
            queries.walkDelete(afterPosition: after != nil, upToPosition: end != nil), operation: operation)
        defer { deleter.reset() }
        try deleter.bind(1, before, operation: operation)
        if let after { try after.bind(to: deleter, from: 3, operation: operation) }
        if let end { try end.bind(to: deleter, from: after == nil ? 3 : 3 + width, operation: operation) }
        try deleter.run(operation: operation)
        return SQLiteCleanupSlice(scanned: scanned, deleted: connection.changes, end: end, elapsed: .zero)
    }
}

/// What one cleanup slice did.
struct SQLiteCleanupSlice: Sendable {
    /// Rows the slice looked at, and how many of them it deleted.
    var scanned: Int
    var deleted: Int
    /// The last key of the slice's range; `nil` when the range ran to the table's end.
    var end: SQLiteWalkPosition?
    /// How long the slice's statements took.
    var elapsed: Duration
}

/// Sizes cleanup slices by their measured duration: large enough that a slice's fixed cost
/// (statements, commit, hand-off to the writer thread) is small against its rows, small
/// enough that a save queued behind it waits about ``targetDuration`` at most, whatever
/// the machine, the row size, the expired fraction or the load.
final class SQLiteCleanupSlicer: Sendable {
    /// The duration a slice aims for: what a save may wait behind one.
    static let targetDuration = Duration.milliseconds(4)
    /// The fewest rows a slice scans.
    static let minRows = 8
    /// The most rows a slice scans. A slice rewrites the leaf pages its key range spans,
    /// and must fit between ``SQLiteCheckpointer/cleanupPacePages`` and the WAL size at
    /// which the writer would hold saves back (``SQLiteCheckpointer/hardLimitPages``), so
    /// at most ``SQLiteCheckpointer/thresholdPages`` leaf pages plus the tree's inner
    /// pages. A leaf page of a `WITHOUT ROWID` table holds at least 4 rows (SQLite keeps at
    /// most about a quarter of a page of each row in the leaf and moves the rest to overflow
    /// pages, which a delete frees without rewriting), so 4000 rows span at most 1000 pages.
    static let maxRows = 4 * Int(SQLiteCheckpointer.thresholdPages)

    /// The most bytes of rows a slice scans, counting each row's part in its leaf page
    /// (at most ``maxLocalBytes``) plus ``rowOverhead``. A leaf page of a rowid table
    /// (slotted) may hold a single row of 2 KB or more, so rows alone do not bound the
    /// pages a slice spans; 2 MB of rows span at most 1000 pages of 4 KB that are half full.
    static let maxBytes = Int(SQLiteCheckpointer.thresholdPages) * 4096 / 2
    /// The most of a row SQLite keeps in a rowid table's 4 KB leaf page (the rest goes to
    /// overflow pages, which a delete frees without rewriting).
    static let maxLocalBytes = 4061
    /// A row's bytes besides its data (key, integers, cell header), counted generously.
    static let rowOverhead = 96
    /// The first slice's rows, before any was measured.
    static let initialRows = 64

    /// The bytes a row with `data` bytes of data counts for in ``maxBytes``.
    static func leafBytes(data: Int64) -> Int {
        min(Int(clamping: data), maxLocalBytes) + rowOverhead
    }

    private struct State {
        var rows = SQLiteCleanupSlicer.initialRows
        var slices = 0
        var largest = 0
        var scanned = 0
    }

    private let state = Mutex(State())

    /// The rows the next slice may scan.
    var rows: Int { state.withLock { $0.rows } }

    /// Slices run so far, the most rows one of them deleted, and the rows all of them
    /// scanned; for tests.
    var statistics: (slices: Int, largest: Int, scanned: Int) { state.withLock { ($0.slices, $0.largest, $0.scanned) } }

    /// Adjusts the slice size after a slice allowed to scan `rows` that scanned `scanned`
    /// and deleted `deleted` in `elapsed`: shrinks it in proportion when it took longer
    /// than the target, doubles it when it took less than half the target and scanned all
    /// it could. Only a slice of the current size counts: a short last slice (the table's
    /// end, or the call's limit), or a small one the WAL's pacing asked for, says nothing
    /// about the size.
    func record(rows: Int, scanned: Int, deleted: Int, elapsed: Duration) {
        state.withLock { state in
            state.slices += 1
            state.largest = max(state.largest, deleted)
            state.scanned += scanned
            guard rows == state.rows else { return }
            let target = Self.targetDuration
            if elapsed > target {
                let scaled = Double(state.rows) * (target / elapsed)
                state.rows = max(Self.minRows, Int(scaled))
            } else if elapsed * 2 < target, scanned == rows {
                state.rows = min(Self.maxRows, state.rows * 2)
            }
        }
    }
}
