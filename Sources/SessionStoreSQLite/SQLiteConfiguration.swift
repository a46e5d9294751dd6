public import SessionStoreCore

/// How ``SQLiteBackend`` opens and uses its database file.
///
/// Build one in code, or from a configuration URL with ``init(url:)``, e.g.
/// `sqlite:///var/lib/app/sessions.db?table=sessions&synchronous=full`.
public struct SQLiteConfiguration: Sendable {
    /// How hard SQLite works to make a commit survive a power loss (`PRAGMA synchronous`).
    public enum Synchronous: String, Sendable, CaseIterable {
        /// No fsync at all: fastest, but a power loss or OS crash can corrupt the database.
        case off
        /// In WAL mode a power loss can lose the last commits but never corrupts the
        /// database; an application crash loses nothing that was committed.
        case normal
        /// Every commit is synced to disk before it is reported: durable, and slower.
        case full
    }

    /// The database file path, or `":memory:"` for a private in-memory database that
    /// lives as long as the backend (all operations then share one connection).
    /// The default is `":memory:"`.
    public var path: String
    /// The session table. Must be a plain identifier (see `SQLIdentifier`).
    /// The default is `"sessions"`.
    public var table: String
    /// How rows are keyed. The default is `KeyLayout.idOnly`: `bench` measured it 1.5-2%
    /// faster than `(crc32, id)` through the store and 10-14% faster through the raw C API
    /// on a 1M-row table of SHA-256 keys, so the crc32 column does not pay for itself here.
    public var keyLayout: KeyLayout
    /// `PRAGMA synchronous`. `.normal` in WAL mode may lose the last commits on power loss
    /// but never corrupts the database; `.full` makes every reported save durable at the
    /// cost of an fsync per transaction. The default is ``Synchronous/normal``.
    public var synchronous: Synchronous
    /// How long a statement waits for a lock held by another connection or process
    /// before failing with `StorageError.Kind.busy`. The default is 5 seconds.
    public var busyTimeout: Duration
    /// Bytes of the file SQLite maps into memory (`PRAGMA mmap_size`); `0` disables it.
    /// Measured here, 1 GB made point lookups 32-43% faster on a 1M-row table, at the
    /// price of address space and of crashes on I/O errors instead of error codes.
    /// The default is `0`.
    public var mmapSize: Int
    /// Reader connections used in parallel by loads (1...64), beside the one writer. Each
    /// thread that loads keeps to a pair of them (one holds the last load's read lock while
    /// the other loads), so two per core that loads at once. The default is `4`.
    public var readerCount: Int
    /// Whether concurrent writes share one transaction (one commit, one fsync) instead
    /// of one transaction each. Each write still succeeds or fails on its own.
    /// The default is `true`.
    public var groupCommit: Bool
    /// The largest number of writes committed in one group-commit transaction (1...10000).
    /// The default is `256`.
    public var maxBatchSize: Int
    /// Whether opening drops the index on `expires_at` that releases before the key-order
    /// cleanup created (see `createOrCheckSchema`). Off only where an open must change
    /// nothing (`session-store upgrade --dry-run`, which lists the drop instead).
    package var dropsExpiryIndex = true
    /// Rows the load cache keeps (``SQLiteLoadCache``); `0` turns it off, for tests of what
    /// loads do in SQLite itself.
    package var loadCacheSlots = 1024

    /// A configuration with the defaults above.
    ///
    /// - Parameter path: The database file, or `":memory:"`.
    public init(path: String = ":memory:") {
        self.path = path
        self.table = "sessions"
        self.keyLayout = .idOnly
        self.synchronous = .normal
        self.busyTimeout = .seconds(5)
        self.mmapSize = 0
        self.readerCount = 4
        self.groupCommit = true
        self.maxBatchSize = 256
    }

    /// Reads a configuration from a `sqlite:` URL, consuming the options it understands.
    ///
    /// Paths: `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, `sqlite::memory:`.
    /// Options: `table`, `key` (`crc32` | `id`), `synchronous` (`off` | `normal` | `full`),
    /// `busy_timeout` (a duration such as `500ms` or `5s`), `mmap_size` (bytes),
    /// `readers` (1...64), `group_commit` (bool), `batch` (1...10000). Options it does not
    /// know are left in `url` for the caller to check.
    ///
    /// - Throws: `SessionStoreError` with code `invalidConfiguration` for a missing path,
    ///   another scheme, or a bad option value.
    public init(url: inout StoreURL) throws {
        guard url.scheme == "sqlite" else {
            throw StoreURL.invalid("scheme \(url.scheme) is not sqlite")
        }
        guard !url.path.isEmpty else {
            throw StoreURL.invalid("sqlite URL needs a path, e.g. sqlite:///var/lib/app/sessions.db or sqlite::memory:")
        }
        self.init(path: url.path)
        if let table = url.take("table") {
            self.table = try SQLIdentifier.validated(table)
        }
        let layouts = Dictionary(uniqueKeysWithValues: KeyLayout.allCases.map { ($0.rawValue, $0) })
        if let layout = try url.takeChoice("key", layouts) {
            self.keyLayout = layout
        }
        let levels = Dictionary(uniqueKeysWithValues: Synchronous.allCases.map { ($0.rawValue, $0) })
        if let level = try url.takeChoice("synchronous", levels) {
            self.synchronous = level
        }
        if let timeout = try url.takeDuration("busy_timeout") {
            self.busyTimeout = timeout
        }
        if let size = try url.takeInt("mmap_size", in: 0...Int(Int64.max)) {
            self.mmapSize = size
        }
        if let readers = try url.takeInt("readers", in: 1...64) {
            self.readerCount = readers
        }
        if let group = try url.takeBool("group_commit") {
            self.groupCommit = group
        }
        if let batch = try url.takeInt("batch", in: 1...10_000) {
            self.maxBatchSize = batch
        }
    }

    /// Whether ``path`` names a private in-memory database.
    var isMemory: Bool { path == ":memory:" }

    /// ``busyTimeout`` in whole milliseconds, clamped to `Int32`.
    var busyTimeoutMilliseconds: Int64 {
        let (seconds, attoseconds) = busyTimeout.components
        guard seconds >= 0 else { return 0 }
        let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
        if milliseconds.overflow { return Int64(Int32.max) }
        return min(Int64(Int32.max), milliseconds.partialValue + attoseconds / 1_000_000_000_000_000)
    }
}
