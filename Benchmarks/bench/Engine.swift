import SessionStoreCore

/// A database the scenarios run on: it fills tables, opens the store's backend over them,
/// and opens the floor's and the naive store's connections, one per worker thread.
///
/// Every scenario is written once over this protocol (generic, so each engine's calls are
/// direct in the measured loops); an engine says what it calls things and which targets
/// apply to it. Implementation requirements:
/// - `fillStoreTable` creates the table through the store's own backend (so its schema is
///   exactly the backend's), replacing any table of that name, and inserts rows
///   `IDs.id(0..<rows)` in key order with ``Payload/stored(_:)`` and the plan's times.
/// - `fillNaiveTable` does the same for the naive store's schema with ``Payload/encoded(_:)``.
/// - `floor` and `naive` are called on the worker thread that uses the connection; they
///   open it with the store's settings at `durability` (`nil`: as `openBackend` opens the
///   store by default), prepare its statements and return it, untimed.
/// - `drop` removes a table (and its files) so the next scenario starts clean.
protocol Engine: Sendable {
    associatedtype Floor: FloorConnection
    associatedtype Naive: NaiveConnection

    /// Added to scenario titles and plot series ("MySQL"); `nil` keeps SQLite's names.
    var label: String? { get }
    /// What the floor calls: "C API", "C client".
    var floorName: String { get }
    /// Facts for the report's environment (library version, server, settings).
    var environment: [String: String] { get }
    /// Key layouts the keys scenario compares; the first is the store's default.
    var keyVariants: [KeyVariant] { get }
    /// Durability levels the saves scenario measures, each with its own tables.
    var durabilities: [Durability] { get }
    /// Ways the store writes that the saves scenario measures at every level.
    var writeModes: [WriteMode] { get }

    /// How the store's cleanup deletes, for the cleanup row's name.
    func cleanupMethod(batch: Int) -> String
    /// Whether a target from the end of the run applies here.
    func applies(_ target: EngineTarget) -> Bool

    func fillStoreTable(_ name: String, rows: Int, key: KeyVariant, plan: ExpiryPlan) async throws -> StoreTable
    func fillNaiveTable(_ name: String, rows: Int, plan: ExpiryPlan) async throws -> NaiveTable
    /// The store's backend over `table`, as every scenario opens it; `nil` leaves the
    /// bench's default (SQLite: `synchronous=NORMAL`, group commit).
    func openBackend(_ table: StoreTable, durability: Durability?, writeMode: WriteMode?) async throws -> any StorageBackend
    func floor(_ table: StoreTable, durability: Durability?) throws -> Floor
    func naive(_ table: NaiveTable, durability: Durability?) throws -> Naive
    func drop(_ location: String) async throws
    /// Bytes of the table's write-ahead log, where the engine has one the bench can see.
    func walBytes(_ table: StoreTable) -> Int?

    /// What the driver floor calls ("postgres-nio prepared"); `nil` where the store calls a
    /// C client directly, so the C floor is its floor.
    var driverFloorName: String? { get }
    /// The store's point lookup through the async driver the backend is written on, with
    /// that driver's own fastest API and `connections` connections (one per task), opened
    /// untimed; `nil` where ``driverFloorName`` is.
    func driverFloor(_ table: StoreTable, connections: Int) async throws -> (any DriverFloor)?
}

/// A floor on an async driver: the store's lookup with nothing around it, from tasks.
protocol DriverFloor: Sendable {
    /// A point lookup of a live row by its stored key on connection `worker`, copying its
    /// data out. Returns whether a row was found.
    func load(worker: Int, _ key: String, now: Int64) async throws -> Bool
    func close() async throws
}

/// The floor's operations: the store's statements through the C API with nothing around them.
protocol FloorConnection: AnyObject {
    /// A point lookup of a live row by its stored key, copying its data out as any caller
    /// would. Returns whether a row was found.
    func load(_ key: String, checksum: UInt32, slot: Int64, now: Int64) throws -> Bool
    /// Rewrites one row's data and expiry (what a store save does).
    func update(_ key: String, checksum: UInt32, slot: Int64, data: [UInt8], expiresAt: Int64) throws
    func begin() throws
    func commit() throws
    /// One unbounded DELETE of the expired rows; returns how many went.
    func deleteExpired(now: Int64) throws -> Int
}

/// A filled store table: where it is (a file or a table name) and the keys it holds.
struct StoreTable: Sendable {
    let location: String
    let key: KeyVariant
    let keys: StoredKeys
}

/// A filled naive-store table.
struct NaiveTable: Sendable {
    let location: String
}

/// A key layout of the store's table.
struct KeyVariant: Sendable, Hashable {
    var layout: KeyLayout
    /// MySQL only: an auto-increment primary key plus a unique key on the id.
    var autoIncrement = false

    static let idOnly = KeyVariant(layout: .idOnly)
    static let checksumAndID = KeyVariant(layout: .checksumAndID)

    var name: String {
        (autoIncrement ? "auto-increment + unique " : "") + (layout == .checksumAndID ? "(crc32, id)" : "(id)")
    }
}

/// How durable a commit is: SQLite's `synchronous`, or the server's one setting on MySQL.
enum Durability: Sendable, Hashable {
    /// The engine's only level (MySQL: the server's `innodb_flush_log_at_trx_commit`).
    case server
    case normal
    case full

    /// Added to row names where an engine measures more than one level.
    var label: String? {
        switch self {
        case .server: nil
        case .normal: "NORMAL"
        case .full: "FULL"
        }
    }
}

/// A way the store writes that the saves scenario compares.
struct WriteMode: Sendable {
    var name: String
    /// Concurrent saves share a transaction (SQLite's group commit): measured against
    /// the floor's 100 rows per transaction instead of one.
    var groupCommit: Bool
}

/// Targets that hold on some engines only.
enum EngineTarget {
    /// Group commit at `FULL` (SQLite's writer).
    case groupCommit
    /// The soak's WAL bound.
    case walPeak
    /// A point load within 1.2× the C client at every task count.
    case loadVsFloorByTasks
    /// The C client called from a task through a thread of its own (``BlockingLane``),
    /// measured beside the store's loads.
    case asyncClientFloor
    /// A point load within 1.1× the driver's own prepared query at every task count.
    case loadVsDriverByTasks
}

extension Engine {
    var driverFloorName: String? { nil }

    func driverFloor(_ table: StoreTable, connections: Int) async throws -> (any DriverFloor)? { nil }

    /// The store's default key layout, which every scenario but keys uses.
    var defaultKey: KeyVariant { keyVariants[0] }

    /// `"1 loads: rest"`, or `"1 loads (MySQL): rest"`.
    func title(_ head: String, _ rest: String) -> String {
        head + (label.map { " (\($0))" } ?? "") + ": " + rest
    }

    /// A plot series or status line, prefixed with the engine's label.
    func labelled(_ text: String) -> String {
        label.map { "\($0) \(text)" } ?? text
    }
}
