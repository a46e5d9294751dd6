import Logging
import SessionStore
@_spi(Benchmarks) import SessionStoreSQLite

/// How a filled table's rows expire.
enum ExpiryPlan: Sendable {
    /// Every row live and touched just now: loads never extend them during a run.
    case fresh
    /// Even rows expired an hour ago, odd rows live (the cleanup scenario).
    case halfExpired
    /// Every 100th row (an even one) expired an hour ago, the rest live: a cleanup that
    /// finds little to delete.
    case sparseExpired
    /// Every row live, last used within the past touch interval (steady state of a busy
    /// site); `now` is the virtual clock's start.
    case recentlyUsed(now: Int64, idle: Int64, touchInterval: Int64)

    /// `(created_at, expires_at)` of row `index` at fill time `now`.
    func times(_ index: Int, now: Int64) -> (Int64, Int64) {
        let jitter = Int64(mix64(UInt64(index) ^ 0xE1) % 600_000)
        switch self {
        case .fresh:
            return (now - 3_600_000 - jitter, now + 5_400_000 + jitter)
        case .halfExpired:
            if index % 2 == 0 { return (now - 7_200_000 - jitter, now - 3_600_000 - jitter) }
            return (now - 3_600_000 - jitter, now + 5_400_000 + jitter)
        case .sparseExpired:
            if index % 100 == 0 { return (now - 7_200_000 - jitter, now - 3_600_000 - jitter) }
            return (now - 3_600_000 - jitter, now + 5_400_000 + jitter)
        case .recentlyUsed(let start, let idle, let touch):
            let lastUsed = start - Int64(mix64(UInt64(index) ^ 0x70) % UInt64(max(1, touch)))
            return (lastUsed - 600_000 - jitter, lastUsed + idle)
        }
    }
}

/// The keys the store keeps for ids `IDs.id(0..<rows)` (their SHA-256 unless the store
/// is configured otherwise), and for a few thousand ids never stored: what the floor binds.
final class StoredKeys: Sendable {
    let values: [String]
    let checksums: [UInt32]
    /// The rowids of the keys' rows (the SQLite backend's slots).
    let slots: [Int64]
    let missValues: [String]
    let missChecksums: [UInt32]
    let missSlots: [Int64]
    static let missCount = 4096

    init(rows: Int, hashing: IDHashing) {
        func key(_ id: String) -> SessionKey { SessionKey(SessionID(validating: id)!, hashing: hashing) }
        let stored = (0..<rows).map { key(IDs.id($0)) }
        values = stored.map(\.value)
        checksums = stored.map(\.checksum)
        slots = stored.map { SQLiteBackend.slot(of: $0) }
        let misses = (0..<Self.missCount).map { key(IDs.missID($0)) }
        missValues = misses.map(\.value)
        missChecksums = misses.map(\.checksum)
        missSlots = misses.map { SQLiteBackend.slot(of: $0) }
    }

    /// Row indices in the order of the table's key, the order a fill inserts them: fast to
    /// insert, and the rows packed densely for store and floor alike. `slotted`: the order
    /// of the slot, a SQLite table's rowid.
    func fillOrder(_ layout: KeyLayout, slotted: Bool = false) -> [Int] {
        if slotted { return values.indices.sorted { slots[$0] < slots[$1] } }
        var order: [(UInt32, String, Int)] = []
        order.reserveCapacity(values.count)
        for index in values.indices {
            order.append((layout == .checksumAndID ? checksums[index] : 0, values[index], index))
        }
        order.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        return order.map(\.2)
    }
}

/// Backends log warnings and errors only; the bench's own output is the table.
let quietLogger: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = .warning
    return logger
}()
