/// What a write about to commit leaves behind, so that after a lost connection a re-read
/// of the row tells whether it committed; and the result to report if it did. Shared by
/// the server backends' exact retries (MySQL, PostgreSQL).
///
/// Used by one call, whose attempts run one after another, never at once.
package final class PendingWrite<Result>: @unchecked Sendable { // one call's attempts, in sequence
    /// The row a committed write leaves.
    package enum Expected {
        /// The row at `version + 1` holding `data`.
        case replaced(from: Int64, data: [UInt8])
        /// The row gone from `version`.
        case deleted(from: Int64)

        /// What `write` leaves when applied to `current`; `nil` for no write.
        package init?(_ write: MergeWrite, on current: SessionRecord) {
            switch write {
            case .none: return nil
            case .replace(let data, _): self = .replaced(from: current.version, data: data)
            case .delete: self = .deleted(from: current.version)
            }
        }

        /// `true` when `stored` shows the write committed, `false` when it shows it did not,
        /// `nil` when the row changed since and it cannot be told.
        package func committed(_ stored: SessionRecord?) -> Bool? {
            switch self {
            case .replaced(let version, let data):
                guard let stored else { return nil }
                if stored.version == version { return false }
                if stored.version == version + 1 && stored.data == data { return true }
                return nil
            case .deleted(let version):
                guard let stored else { return true }
                return stored.version == version ? false : nil
            }
        }
    }

    /// The engine named in errors, e.g. `"mysql"`.
    private let engine: String
    /// The write in flight, `nil` when none was sent since the last check.
    package var expected: Expected?
    private var value: Result?

    /// No write in flight yet.
    package init(engine: String) {
        self.engine = engine
    }

    /// Records the write about to be sent and the result it reports.
    package func prepare(_ expected: Expected, _ result: Result) {
        self.expected = expected
        value = result
    }

    /// The result recorded with the write that committed.
    package func result() throws -> Result {
        guard let value else {
            throw StorageError(kind: .other, engine: engine, operation: "merge", message: "no result recorded for the write")
        }
        return value
    }
}
