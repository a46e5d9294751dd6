import SessionStore

/// What the operator commands need from a backend beyond ``StorageBackend``: figures,
/// checks, raw rows and schema versions. Each backend provides it from its `+Admin` file.
protocol AdminBackend: StorageBackend {
    /// The engine's name, e.g. `sqlite`.
    var engine: String { get }
    /// Counts, histogram, sizes, schema and lease of the table at `now`.
    func figures(now: Int64) async throws -> TableFigures
    /// The engine's own consistency check; `["ok"]` when sound.
    func integrityCheck() async throws -> [String]
    /// The recorded schema version and key layout, `nil` when the table has none.
    func recordedSchema() async throws -> (version: Int64, layout: String)?
    /// Rows after `cursor` in key order, at most `limit`, live at `liveAt` when given.
    func storedRows(after cursor: SessionKey?, limit: Int, liveAt: Int64?) async throws -> [StoredRow]
    /// Rows the store could never have written because their id is not text.
    func unkeyedRowCount() async throws -> Int64
    /// Writes copied rows as they are: inserts missing ones, overwrites a stored one only
    /// when `replaceIf(stored, copy)`; returns how many were written.
    func importRows(
        _ rows: [(key: SessionKey, record: SessionRecord)],
        replaceIf: @escaping @Sendable (_ stored: SessionRecord, _ copy: SessionRecord) -> Bool
    ) async throws -> Int
    /// The number of live sessions of each owner that has any, in no particular order.
    func liveSessionsPerOwner(now: Int64) async throws -> [Int64]
    /// Rows with `expires_at < before`: what a cleanup at that cut-off deletes.
    func countExpired(before: Int64) async throws -> Int64
    /// The statements an upgrade would run, and the versions it goes between.
    func pendingMigrations() async throws -> (from: Int64, to: Int64, statements: [String])
    /// Runs the pending migrations; returns the versions before and after.
    func upgradeSchema() async throws -> (from: Int64, to: Int64)
}

/// One stored row: its key, and its record or why the row's columns could not be read.
typealias StoredRow = (key: SessionKey, record: Result<SessionRecord, StorageError>)

/// What `stats` reports, the same for every backend.
struct TableFigures: Sendable, Encodable {
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

extension TableFigures {
    /// The figures of a server backend's table (MySQL, PostgreSQL), which has no files.
    init(engine: String, table: String, server figures: ServerTableFigures, now: Int64) {
        self.init(
            engine: engine, table: table, rows: figures.rows, live: figures.live,
            retired: figures.retired, expiredNotCleaned: figures.rows - figures.live,
            expiring: TableFigures.Expiring(
                nextHour: figures.expiring[0], nextDay: figures.expiring[1],
                nextWeek: figures.expiring[2], later: figures.expiring[3]),
            oldestCreated: figures.oldestCreated, newestCreated: figures.newestCreated,
            tableBytes: figures.tableBytes, indexBytes: figures.indexBytes,
            fileBytes: nil, walBytes: nil,
            schemaVersion: figures.schemaVersion, keyLayout: figures.keyLayout,
            cleanupLease: figures.leaseHolder.map { holder in
                let expiresAt = figures.leaseExpiresAt ?? 0
                return TableFigures.Lease(holder: holder, expiresAt: expiresAt, lapsed: expiresAt <= now)
            })
    }
}
