import SessionStoreCore

/// The naive store's operations, on SQLite (``SQLiteNaive``) or MySQL (``MySQLNaive``).
protocol NaiveConnection: AnyObject {
    /// Reads and decodes a session; `nil` when missing or expired.
    func load(_ sid: String, now: Int64) throws -> [String: [UInt8]]?
    /// Writes the session back, as the old stores do at the end of every request.
    func write(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws
    func create(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws
    /// The ids of every expired row.
    func expiredIDs(now: Int64) throws -> [String]
    /// Deletes one row in a transaction of its own; returns rows deleted.
    func delete(_ sid: String) throws -> Int
}

extension NaiveConnection {
    /// The idle timeout every write sets.
    static var idle: Int64 { 30 * 60 * 1000 }

    /// One request: load (when a cookie came), let the app change the data, write back.
    /// Always one row written.
    func request(_ sid: String?, now: Int64, _ change: (inout [String: [UInt8]]) -> Void) throws {
        if let sid, var attributes = try load(sid, now: now) {
            change(&attributes)
            try write(sid, attributes, now: now)
        } else {
            var attributes: [String: [UInt8]] = [:]
            change(&attributes)
            try create(SessionID.generate().text, attributes, now: now)
        }
    }

    /// The saves scenario's write, the old way: read the row, change one attribute, write
    /// the whole row back.
    func rewrite(_ sid: String, counter: Int, now: Int64) throws {
        guard var attributes = try load(sid, now: now) else { throw BenchError("naive row missing") }
        attributes["counter"] = Array("\(counter)".utf8)
        try write(sid, attributes, now: now)
    }

    /// "SELECT the expired, then DELETE them one by one", each delete its own transaction.
    func cleanup(now: Int64, progress: Progress? = nil) throws -> Int {
        var deleted = 0
        for sid in try expiredIDs(now: now) {
            deleted += try delete(sid)
            if deleted % 1000 == 0 { progress?.update(deleted) }
        }
        return deleted
    }

    /// One simulated request of the mix, the old way.
    func mixRequest(_ kind: RequestKind, session index: Int, user: Int, page: String) throws {
        let now = wallMillis()
        switch kind {
        case .bot: try request(nil, now: now) { _ in }
        case .read: try request(IDs.id(index), now: now) { _ in }
        case .change: try request(IDs.id(index), now: now) { $0["last_page"] = Array("\"\(page)\"".utf8) }
        case .login: try request(nil, now: now) { $0["user_id"] = Array("\(user)".utf8) }
        }
    }
}

/// A session store written the old way, as a baseline: the row is written on every
/// request (even when nothing changed), every visitor gets a row (bots included), rows
/// are keyed by an auto-increment integer plus a UNIQUE text id, and cleanup selects the
/// expired ids and deletes them one by one.
///
/// It is given the benefit of the doubt elsewhere: a persistent connection with prepared
/// statements, WAL, and an index on `expires_at`. Not `Sendable`: one per thread.
final class SQLiteNaive: NaiveConnection {
    let db: RawDB
    private let select: RawStatement
    private let insert: RawStatement
    private let update: RawStatement
    private let selectExpired: RawStatement
    private let deleteOne: RawStatement
    static let table = "naive_sessions"
    static let schema = """
        CREATE TABLE IF NOT EXISTS \(table) (id INTEGER PRIMARY KEY AUTOINCREMENT, \
        sid TEXT NOT NULL UNIQUE, data BLOB NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS \(table)_expires ON \(table) (expires_at);
        """

    init(path: String, synchronous: String = "NORMAL", mmapSize: Int) throws {
        db = try RawDB(path: path, synchronous: synchronous, mmapSize: mmapSize)
        try db.exec(Self.schema)
        let table = Self.table
        select = try db.prepare("SELECT data, expires_at FROM \(table) WHERE sid = ?1")
        insert = try db.prepare("INSERT INTO \(table) (sid, data, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
        update = try db.prepare("UPDATE \(table) SET data = ?2, expires_at = ?3 WHERE sid = ?1")
        selectExpired = try db.prepare("SELECT sid FROM \(table) WHERE expires_at < ?1")
        deleteOne = try db.prepare("DELETE FROM \(table) WHERE sid = ?1")
    }

    func load(_ sid: String, now: Int64) throws -> [String: [UInt8]]? {
        select.bind(1, text: sid)
        defer { select.reset() }
        guard try select.step(), select.int64(1) > now else { return nil }
        return try AttributeCodec.decode(select.blob(0))
    }

    func write(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws {
        update.bind(1, text: sid)
        update.bind(2, blob: AttributeCodec.encode(attributes))
        update.bind(3, now + Self.idle)
        try update.run()
        if db.changes == 0 { try create(sid, attributes, now: now) }
    }

    func create(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws {
        insert.bind(1, text: sid)
        insert.bind(2, blob: AttributeCodec.encode(attributes))
        insert.bind(3, now)
        insert.bind(4, now + Self.idle)
        try insert.run()
    }

    func expiredIDs(now: Int64) throws -> [String] {
        selectExpired.bind(1, now)
        defer { selectExpired.reset() }
        var expired: [String] = []
        while try selectExpired.step() { expired.append(selectExpired.text(0)) }
        return expired
    }

    func delete(_ sid: String) throws -> Int {
        deleteOne.bind(1, text: sid)
        try deleteOne.run()
        return db.changes
    }
}
