import CBenchSQLite
import Foundation
import Logging
import SessionStore
@_spi(Benchmarks) import SessionStoreSQLite

/// The hot path's operations, each done once per call, on one table of ``rows`` sessions
/// with five attributes each: the store's (through its public API, as an app calls it) and
/// the floor's (the same statements through the SQLite C API). Shared by the
/// package-benchmark suite (`Benchmarks/Benchmarks/HotPathBenchmarks`) and the callgrind
/// runner (`hot-path-ops`, `Benchmarks/callgrind.sh`), so both measure the same work.
///
/// `@unchecked Sendable`: the floor's connection is used by one caller at a time (both
/// harnesses run one operation after another); the store is `Sendable`.
public final class HotPath: @unchecked Sendable {
    /// Sessions in the table.
    public static let rows = 10_000

    /// One measured operation.
    public enum Operation: String, CaseIterable, Sendable {
        /// The floor: a point lookup of a live row by its stored key, copying the row's bytes out.
        case floorLookup = "floor-lookup"
        /// The floor: an UPSERT of the same row with new bytes.
        case floorUpsert = "floor-upsert"
        /// `store.load(id:)` of a stored session.
        case load
        /// `store.load(id:)` and reading its five attributes (what every request does).
        case loadRead5 = "load-read5"
        /// Load, change one attribute, save (sequential save).
        case save
        /// Load of a session whose expiry is due to move: the store writes a touch.
        case touch
        /// The floor: a point lookup of a well-formed key that is not stored.
        case floorMiss = "floor-miss"
        /// `store.load(id:)` of a well-formed id that is not stored (a new session comes back).
        case miss
    }

    private let directory: URL
    private let store: SessionStore
    /// The same file, with `touch_interval=1ms`: every load of a row not loaded in the last
    /// millisecond extends its expiry.
    private let touchingStore: SessionStore
    private let ids: [String]
    private let keys: [SessionKey]
    /// Well-formed ids that are not stored, and their keys (the misses' inputs).
    private let unknownIDs: [String]
    private let unknownKeys: [SessionKey]
    /// The keys' slots (the rowids of their rows), known in advance like the keys.
    private let slots: [Int64]
    private let unknownSlots: [Int64]
    private let blobs: [[UInt8]]
    private let floor: OpaquePointer
    private let lookup: OpaquePointer
    private let upsert: OpaquePointer

    /// Creates a fresh table of ``rows`` sessions in a new directory under `parent` (the
    /// temporary directory when `nil`) and opens the store and the floor's connection on it.
    ///
    /// With `sealed`, the store reads and writes through an ``EncryptingBackend`` and every row
    /// is sealed with AES-256-GCM as it is filled (callgrind's `OPERATION+sealed`): the store's
    /// operations then include encryption's cost (the floor's are unchanged; the touching
    /// store's loads of sealed rows are not meaningful).
    public static func make(parent: String? = nil, sealed: Bool = false) async throws -> HotPath {
        let directory = URL(fileURLWithPath: parent ?? NSTemporaryDirectory()).appendingPathComponent("hot-path-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("sessions.db").path
        var logger = Logger(label: "hot-path")
        logger.logLevel = .warning
        var store = try await SessionStore.open("sqlite://\(path)", backends: [.sqlite], logger: logger)
        if sealed {
            // Sealed as they are written, so both tables are filled the same way (rewriting
            // every row afterwards left the sealed table with a different page layout).
            let key = try EncryptionKeyRing.Key(id: "hot", bytes: [UInt8](repeating: 0x5E, count: 32))
            let sealing = EncryptingBackend(wrapping: store.backend, keys: try EncryptionKeyRing(active: key))
            store = try SessionStore(backend: sealing, configuration: store.configuration, logger: logger)
        }
        var ids: [String] = []
        ids.reserveCapacity(rows)
        for index in 0..<rows {
            var session = store.newSession()
            try session.set("user_id", 100_000 + index)
            try session.set("csrf", "c\(index)-3b1f0c9e7a5d4e21b8f6a0c2d9e4f713")
            try session.set("locale", "en-GB")
            try session.set("flash", "Your changes were saved.")
            try session.set("last_page", "/account/orders/\(index)?page=2")
            guard try await store.save(&session) == .created else { throw HotPathError("fill: session \(index) not created") }
            ids.append(session.id.text)
        }
        let touchingStore = try await SessionStore.open("sqlite://\(path)?touch_interval=1ms", backends: [.sqlite], logger: logger)
        let hotPath = try HotPath(directory: directory, path: path, store: store, touchingStore: touchingStore, ids: ids)
        // Empty the WAL the fill wrote, so no checkpoint of it is measured (and reads find
        // every page in the database file, sealed or not).
        try Self.exec(hotPath.floor, "PRAGMA wal_checkpoint(TRUNCATE)")
        return hotPath
    }

    private init(directory: URL, path: String, store: SessionStore, touchingStore: SessionStore, ids: [String]) throws {
        self.directory = directory
        self.store = store
        self.touchingStore = touchingStore
        self.ids = ids
        var keys: [SessionKey] = []
        for id in ids {
            guard let sessionID = SessionID(validating: id) else { throw HotPathError("fill produced an invalid id") }
            keys.append(store.storageKey(for: sessionID))
        }
        self.keys = keys
        let unknown = (0..<Self.rows).map { _ in SessionID.generate() }
        unknownIDs = unknown.map(\.text)
        unknownKeys = unknown.map { store.storageKey(for: $0) }
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let db else {
            sqlite3_close_v2(db)
            throw HotPathError("sqlite3_open_v2(\(path)): \(code)")
        }
        floor = db
        // The store's settings: WAL, synchronous NORMAL, the store's default table (id key).
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA busy_timeout = 60000"] {
            try Self.exec(db, pragma)
        }
        // The store's table form: the rowid is the key's slot, matched with the id.
        lookup = try Self.prepare(
            db, "SELECT data, version, created_at, expires_at FROM sessions WHERE slot = ?3 AND id = ?1 AND expires_at > ?2")
        upsert = try Self.prepare(db, """
            INSERT INTO sessions (slot, id, data, version, created_at, expires_at) VALUES (?5, ?1, ?2, 1, ?3, ?4) \
            ON CONFLICT (slot) DO UPDATE SET data = excluded.data, version = version + 1, expires_at = excluded.expires_at \
            WHERE id = excluded.id
            """)
        slots = keys.map { SQLiteBackend.slot(of: $0) }
        unknownSlots = unknownKeys.map { SQLiteBackend.slot(of: $0) }
        // The rows' bytes as stored, for the floor's UPSERT to write back.
        var blobs: [[UInt8]] = []
        blobs.reserveCapacity(keys.count)
        let now = Self.nowMillis()
        for key in keys {
            guard let bytes = try Self.lookupBytes(lookup, key: key.value, slot: SQLiteBackend.slot(of: key), now: now) else {
                throw HotPathError("the floor cannot find a filled row")
            }
            blobs.append(bytes)
        }
        self.blobs = blobs
    }

    /// Runs `operation` once on row `iteration % rows`.
    @inline(never)
    public func run(_ operation: Operation, iteration: Int) async throws {
        let index = iteration % Self.rows
        switch operation {
        case .floorLookup:
            guard let bytes = try Self.lookupBytes(lookup, key: keys[index].value, slot: slots[index], now: Self.nowMillis()),
                  !bytes.isEmpty
            else {
                throw HotPathError("the floor missed row \(index)")
            }
        case .floorUpsert:
            try floorUpsert(index)
        case .load:
            let session = try await store.load(id: ids[index])
            guard session.isStored else { throw HotPathError("the store missed row \(index)") }
        case .loadRead5:
            let session = try await store.load(id: ids[index])
            guard try session.get("user_id", as: Int.self) != nil,
                  try session.get("csrf", as: String.self) != nil,
                  try session.get("locale", as: String.self) != nil,
                  try session.get("flash", as: String.self) != nil,
                  try session.get("last_page", as: String.self) != nil
            else { throw HotPathError("the store lost an attribute of row \(index)") }
        case .save:
            var session = try await store.load(id: ids[index])
            let locale = try session.get("locale", as: String.self)
            try session.set("locale", locale == "en-GB" ? "fr-FR" : "en-GB")
            let outcome = try await store.save(&session)
            guard outcome == .updated else { throw HotPathError("save of row \(index): \(outcome)") }
        case .touch:
            let session = try await touchingStore.load(id: ids[index])
            guard session.isStored else { throw HotPathError("the touching store missed row \(index)") }
        case .floorMiss:
            guard try Self.lookupBytes(lookup, key: unknownKeys[index].value, slot: unknownSlots[index], now: Self.nowMillis()) == nil else {
                throw HotPathError("the floor found unknown key \(index)")
            }
        case .miss:
            let session = try await store.load(id: unknownIDs[index])
            guard !session.isStored else { throw HotPathError("the store found unknown id \(index)") }
        }
    }

    /// Closes both stores and the floor's connection and removes the directory.
    public func close() async throws {
        sqlite3_finalize(lookup)
        sqlite3_finalize(upsert)
        let code = sqlite3_close_v2(floor)
        guard code == SQLITE_OK else { throw HotPathError("sqlite3_close_v2: \(code)") }
        try await store.shutdown()
        try await touchingStore.shutdown()
        try FileManager.default.removeItem(at: directory)
    }

    private func floorUpsert(_ index: Int) throws {
        let now = Self.nowMillis()
        defer { sqlite3_reset(upsert) }
        let key = keys[index].value
        guard sqlite3_bind_text(upsert, 1, key, -1, transient) == SQLITE_OK,
              blobs[index].withUnsafeBytes({ sqlite3_bind_blob(upsert, 2, $0.baseAddress, Int32($0.count), transient) }) == SQLITE_OK,
              sqlite3_bind_int64(upsert, 3, now) == SQLITE_OK,
              sqlite3_bind_int64(upsert, 4, now + 30 * 60 * 1000) == SQLITE_OK,
              sqlite3_bind_int64(upsert, 5, slots[index]) == SQLITE_OK
        else { throw HotPathError("bind: \(String(cString: sqlite3_errmsg(floor)))") }
        let code = sqlite3_step(upsert)
        guard code == SQLITE_DONE else { throw HotPathError("upsert: \(code) \(String(cString: sqlite3_errmsg(floor)))") }
    }

    /// The floor's lookup: the row's data copied out (what any caller must do before the
    /// statement is reset), or `nil` for no live row.
    private static func lookupBytes(_ statement: OpaquePointer, key: String, slot: Int64, now: Int64) throws -> [UInt8]? {
        defer { sqlite3_reset(statement) }
        guard sqlite3_bind_text(statement, 1, key, -1, transient) == SQLITE_OK,
              sqlite3_bind_int64(statement, 2, now) == SQLITE_OK,
              sqlite3_bind_int64(statement, 3, slot) == SQLITE_OK
        else { throw HotPathError("bind failed") }
        switch sqlite3_step(statement) {
        case SQLITE_ROW:
            let count = Int(sqlite3_column_bytes(statement, 0))
            guard let bytes = sqlite3_column_blob(statement, 0) else { return [] }
            return [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
        case SQLITE_DONE:
            return nil
        case let code:
            throw HotPathError("lookup: \(code)")
        }
    }

    private static func exec(_ db: OpaquePointer, _ sql: String) throws {
        let code = sqlite3_exec(db, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw HotPathError("\(sql): \(code) \(String(cString: sqlite3_errmsg(db)))") }
    }

    private static func prepare(_ db: OpaquePointer, _ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw HotPathError("prepare \(sql): \(String(cString: sqlite3_errmsg(db)))") }
        return statement
    }

    private static func nowMillis() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies bound bytes before the bind call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A failed step of the hot-path harness.
public struct HotPathError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
