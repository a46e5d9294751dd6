import SessionStore

/// What `stats` reports, the same for every backend: a backend's `TableFigures` with
/// the engine, the table and (from `stats`) how sessions spread over owners.
struct StatsReport: Sendable, Encodable {
    struct Expiring: Sendable, Encodable {
        var nextHour: Int64
        var nextDay: Int64
        var nextWeek: Int64
        var later: Int64
    }

    struct Lease: Sendable, Encodable {
        var holder: String
        var expiresAt: Int64
        var lapsed: Bool
    }

    var engine: String
    var table: String
    var rows: Int64
    var live: Int64
    var retired: Int64
    var expiredNotCleaned: Int64
    var expiring: Expiring
    var oldestCreated: Int64?
    var newestCreated: Int64?
    var tableBytes: Int64?
    var indexBytes: Int64?
    /// SQLite: the database file; server backends: `nil`.
    var fileBytes: Int64?
    /// SQLite: the WAL file; server backends: `nil`.
    var walBytes: Int64?
    var schemaVersion: Int64?
    var keyLayout: String?
    var cleanupLease: Lease?
    /// Sessions bound to owners (see `SessionStore.logIn`); set by `stats`.
    var owners: Owners? = nil

    /// How live sessions spread over their owners.
    struct Owners: Sendable, Encodable, Equatable {
        /// Owners with at least one live session.
        var owners: Int64
        /// Live sessions bound to an owner.
        var boundSessions: Int64
        /// Live sessions of the owner with the most.
        var maxPerOwner: Int64
        /// 99% of owners have at most this many live sessions.
        var p99PerOwner: Int64

        /// The figures of per-owner session counts.
        init(counts: [Int64]) {
            let sorted = counts.sorted()
            owners = Int64(sorted.count)
            boundSessions = sorted.reduce(0, +)
            maxPerOwner = sorted.last ?? 0
            p99PerOwner = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, (sorted.count * 99 + 99) / 100 - 1)]
        }
    }
}


extension StatsReport {
    /// The report of `figures`, read from `backend` on `table` at `now`.
    init(engine: String, table: String, figures: TableFigures, now: Int64) {
        self.init(
            engine: engine, table: table, rows: figures.rows, live: figures.live,
            retired: figures.retired, expiredNotCleaned: figures.rows - figures.live,
            expiring: StatsReport.Expiring(
                nextHour: figures.expiring[0], nextDay: figures.expiring[1],
                nextWeek: figures.expiring[2], later: figures.expiring[3]),
            oldestCreated: figures.oldestCreated, newestCreated: figures.newestCreated,
            tableBytes: figures.tableBytes, indexBytes: figures.indexBytes,
            fileBytes: figures.fileBytes, walBytes: figures.walBytes,
            schemaVersion: figures.schemaVersion, keyLayout: figures.keyLayout,
            cleanupLease: figures.leaseHolder.map { holder in
                let expiresAt = figures.leaseExpiresAt ?? 0
                return StatsReport.Lease(holder: holder, expiresAt: expiresAt, lapsed: expiresAt <= now)
            })
    }
}
