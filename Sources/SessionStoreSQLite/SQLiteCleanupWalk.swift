import SessionStoreCore
import Synchronization

/// A key in the session table, copied out of a cleanup slice's scan: where the next slice
/// of the walk starts. Kept as SQLite values, so it binds back with the storage class it
/// was read with whatever a row holds (a key a foreign writer stored as a blob included).
final class SQLiteWalkPosition: Sendable {
    private let values: [SQLiteValue]

    /// Copies the current row's first `columns` columns (the key) out of `statement`.
    init(_ statement: SQLiteStatement, columns: Int32, operation: String) throws(StorageError) {
        var values: [SQLiteValue] = []
        for column in 0..<columns {
            values.append(try statement.value(column, operation: operation))
        }
        self.values = values
    }

    /// Binds the key's columns to `statement`'s parameters from `first` on.
    func bind(to statement: SQLiteStatement, from first: Int32, operation: String) throws(StorageError) {
        for (offset, value) in values.enumerated() {
            try statement.bind(first + Int32(offset), value: value, operation: operation)
        }
    }
}

/// Where the last cleanup call that reached its limit stopped, so the store's next call
/// (its cleanup loop goes on at once) continues the walk instead of starting over: a
/// cleanup in batches then reads the table once, not once per batch.
///
/// A call goes on from the position only when it follows within ``maxPause`` and its
/// cut-off moved on by no more than the time since the previous call started (plus
/// ``maxPause``): the rows the walk already passed were checked against a cut-off at most
/// that much earlier, so the only rows the continued walk leaves behind are rows that
/// expired while the cleanup ran, which a cleanup running as one statement would miss as
/// well. Anything else (an app calling once, a new cleanup after a cancelled one, a test
/// moving its clock) starts at the table's first key.
final class SQLiteCleanupWalk: Sendable {
    /// The longest pause between two calls of one cleanup: the store's loop calls again
    /// at once, so a longer one is another cleanup.
    static let maxPause = Duration.seconds(1)

    private struct Left {
        var position: SQLiteWalkPosition
        var before: Int64
        var started: ContinuousClock.Instant
        var ended: ContinuousClock.Instant
    }

    private let left = Mutex<Left?>(nil)

    /// The position a call with cut-off `before`, starting at `now`, continues from, or
    /// `nil` to start at the first key. Either way the stored position is used up.
    func resume(before: Int64, at now: ContinuousClock.Instant) -> SQLiteWalkPosition? {
        guard let left = left.withLock({ state in defer { state = nil }; return state }) else { return nil }
        guard now - left.ended <= Self.maxPause else { return nil }
        let allowed = now - left.started + Self.maxPause
        let (moved, overflow) = before.subtractingReportingOverflow(left.before)
        guard !overflow, Duration.milliseconds(moved) <= allowed else { return nil }
        return left.position
    }

    /// Records where a call with cut-off `before`, run from `started` to `ended`, stopped
    /// because it reached its limit.
    func leave(_ position: SQLiteWalkPosition, before: Int64, started: ContinuousClock.Instant, ended: ContinuousClock.Instant) {
        left.withLock { $0 = Left(position: position, before: before, started: started, ended: ended) }
    }
}
