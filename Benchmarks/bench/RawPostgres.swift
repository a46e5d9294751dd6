#if Postgres
import CBenchLibpq
import Foundation
import SessionStore
import SessionStorePostgres

/// A bare libpq connection for the PostgreSQL floor, naive store and fills.
///
/// Not `Sendable`: each benchmark thread opens its own.
final class PgDB {
    let handle: OpaquePointer

    /// Connects with the parameters of the store's own URL parsing: the same server, socket
    /// or TCP, user, database and TLS mode as the store.
    init(_ configuration: PostgresConfiguration) throws {
        var parameters: [(String, String)] = [
            ("user", configuration.user), ("dbname", configuration.database), ("application_name", "session-store-bench"),
        ]
        if let password = configuration.password { parameters.append(("password", password)) }
        if let socket = configuration.unixSocket {
            // libpq wants the socket's directory and the port its file is named after.
            let url = URL(fileURLWithPath: socket)
            parameters.append(("host", url.deletingLastPathComponent().path))
            parameters.append(("port", String(url.lastPathComponent.split(separator: ".").last ?? "5432")))
        } else {
            parameters.append(("host", configuration.host))
            parameters.append(("port", String(configuration.port)))
            parameters.append(("sslmode", configuration.tls.mode.rawValue))
            if let ca = configuration.tls.caFile { parameters.append(("sslrootcert", ca)) }
        }
        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let connection = (keywords.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { keys in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { vals in
                PQconnectdbParams(keys.baseAddress, vals.baseAddress, 0)
            }
        }
        guard let connection else { throw BenchError("PQconnectdbParams returned no connection") }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection))
            PQfinish(connection)
            throw BenchError("libpq connect failed: \(message)")
        }
        handle = connection
    }

    deinit {
        PQfinish(handle)
    }

    /// Runs statements without parameters (several may be separated by semicolons),
    /// discarding any rows; returns the rows the last one affected.
    @discardableResult
    func exec(_ sql: String) throws -> Int {
        guard let result = PQexec(handle, sql) else { throw BenchError("libpq: out of memory in: \(sql.prefix(200))") }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw BenchError("libpq: \(String(cString: PQresultErrorMessage(result))) in: \(sql.prefix(200))")
        }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    /// Whether a table `name` is visible on the search path.
    func tableExists(_ name: String) throws -> Bool {
        let sql = "SELECT to_regclass('\(name)') IS NOT NULL"
        guard let result = PQexec(handle, sql) else { throw BenchError("libpq: out of memory") }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK, PQntuples(result) == 1 else {
            throw BenchError("libpq: \(String(cString: PQresultErrorMessage(result))) in: \(sql)")
        }
        return String(cString: PQgetvalue(result, 0, 0)) == "t"
    }

    func prepare(_ sql: String, parameters: [PgParameter]) throws -> PgStatement {
        try PgStatement(db: self, sql: sql, parameters: parameters)
    }
}

/// The type of one bound parameter, sent in binary.
enum PgParameter {
    case int
    case text
    case blob

    /// The server's type OID (int8, text, bytea).
    var oid: Oid {
        switch self {
        case .int: 20
        case .text: 25
        case .blob: 17
        }
    }
}

/// A named server-side prepared statement (`PQprepare` once, then `PQexecPrepared`), with
/// every parameter and result in binary: an execution costs copying the values in, the
/// round trip and libpq's result: the lean floor.
final class PgStatement {
    private let db: PgDB
    private let name: String
    private let sql: String
    private let count: Int
    private let values: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private let lengths: UnsafeMutablePointer<Int32>
    private let formats: UnsafeMutablePointer<Int32>
    /// Parameter `i`'s bytes (what `values[i]` points at).
    private var buffers: [UnsafeMutableRawPointer] = []
    private var result: OpaquePointer?
    static let capacity = 65_536

    init(db: PgDB, sql: String, parameters kinds: [PgParameter]) throws {
        self.db = db
        self.sql = sql
        count = kinds.count
        // One thread per connection, and names only need to differ on one connection.
        name = "bench_\(ObjectIdentifier(db).hashValue)_\(sql.hashValue)"
        values = .allocate(capacity: max(1, count))
        lengths = .allocate(capacity: max(1, count))
        formats = .allocate(capacity: max(1, count))
        formats.initialize(repeating: 1, count: max(1, count))
        lengths.initialize(repeating: 0, count: max(1, count))
        values.initialize(repeating: nil, count: max(1, count))
        for (index, kind) in kinds.enumerated() {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: kind == .int ? 8 : Self.capacity, alignment: 8)
            buffers.append(buffer)
            values[index] = UnsafePointer(buffer.assumingMemoryBound(to: CChar.self))
        }
        let types = kinds.map(\.oid)
        guard let prepared = PQprepare(db.handle, name, sql, Int32(count), types) else {
            throw BenchError("libpq: out of memory preparing: \(sql)")
        }
        defer { PQclear(prepared) }
        guard PQresultStatus(prepared) == PGRES_COMMAND_OK else {
            throw BenchError("libpq prepare: \(String(cString: PQresultErrorMessage(prepared))) in: \(sql)")
        }
    }

    deinit {
        if let result { PQclear(result) }
        buffers.forEach { $0.deallocate() }
        values.deallocate()
        lengths.deallocate()
        formats.deallocate()
    }

    @inline(__always)
    func set(_ index: Int, _ value: Int64) {
        buffers[index].storeBytes(of: value.bigEndian, as: Int64.self)
        lengths[index] = 8
    }

    @inline(__always)
    func set(_ index: Int, text: String) {
        var text = text
        text.withUTF8 { set(index, raw: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    func set(_ index: Int, blob: [UInt8]) {
        blob.withUnsafeBytes { set(index, raw: $0) }
    }

    private func set(_ index: Int, raw: UnsafeRawBufferPointer) {
        precondition(raw.count <= Self.capacity)
        if let base = raw.baseAddress { buffers[index].copyMemory(from: base, byteCount: raw.count) }
        lengths[index] = Int32(raw.count)
    }

    /// Executes with binary results; returns the rows returned (or affected, for writes
    /// without `RETURNING`). The rows stay readable until the next execution.
    @discardableResult
    func execute() throws -> Int {
        if let result { PQclear(result) }
        result = PQexecPrepared(db.handle, name, Int32(count), values, lengths, formats, 1)
        guard let result else { throw BenchError("libpq: out of memory executing: \(sql.prefix(120))") }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK:
            return Int(PQntuples(result))
        case PGRES_COMMAND_OK:
            return Int(String(cString: PQcmdTuples(result))) ?? 0
        default:
            throw BenchError("libpq execute: \(String(cString: PQresultErrorMessage(result))) in: \(sql.prefix(120))")
        }
    }

    @inline(__always)
    func int64(_ row: Int, _ column: Int) -> Int64 {
        guard let result, PQgetlength(result, Int32(row), Int32(column)) == 8 else { return 0 }
        return Int64(bigEndian: UnsafeRawPointer(PQgetvalue(result, Int32(row), Int32(column))).loadUnaligned(as: Int64.self))
    }

    @inline(__always)
    func bytes(_ row: Int, _ column: Int) -> [UInt8] {
        guard let result else { return [] }
        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
        return Array(UnsafeRawBufferPointer(start: PQgetvalue(result, Int32(row), Int32(column)), count: length))
    }

    func text(_ row: Int, _ column: Int) -> String {
        String(decoding: bytes(row, column), as: UTF8.self)
    }
}

/// The PostgreSQL floor: the store's lookup and write through libpq with prepared
/// statements, on the store's table.
final class PostgresFloor: FloorConnection {
    let db: PgDB
    private let load: PgStatement
    private let update: PgStatement
    private let table: String

    init(_ configuration: PostgresConfiguration, table: String) throws {
        self.table = table
        db = try PgDB(configuration)
        load = try db.prepare(PostgresSQL.load(table), parameters: [.text, .int])
        update = try db.prepare(
            "UPDATE \"\(table)\" SET data = $1, version = version + 1, expires_at = GREATEST(expires_at, $2) WHERE id = $3",
            parameters: [.blob, .int, .text])
    }

    @inline(__always)
    func load(_ key: String, checksum: UInt32, slot: Int64, now: Int64) throws -> Bool {  // no checksum or slot in this table
        load.set(0, text: key)
        load.set(1, now)
        guard try load.execute() > 0 else { return false }
        // Every column out, as the store's decoding does.
        let data = load.bytes(0, 0)
        let version = load.int64(0, 1)
        _ = (load.int64(0, 2), load.int64(0, 3), load.bytes(0, 4), load.bytes(0, 5), load.int64(0, 6))
        return !data.isEmpty && version > 0
    }

    @inline(__always)
    func update(_ key: String, checksum: UInt32, slot: Int64, data: [UInt8], expiresAt: Int64) throws {
        update.set(0, blob: data)
        update.set(1, expiresAt)
        update.set(2, text: key)
        try update.execute()
    }

    func begin() throws { try db.exec("BEGIN") }

    func commit() throws { try db.exec("COMMIT") }

    func deleteExpired(now: Int64) throws -> Int {
        try db.exec("DELETE FROM \"\(table)\" WHERE expires_at < \(now)")
    }
}

/// The naive store on PostgreSQL: the same old-way logic as ``SQLiteNaive``, over
/// `id bigserial PRIMARY KEY, sid varchar UNIQUE`.
final class PostgresNaive: NaiveConnection {
    let db: PgDB
    private let select: PgStatement
    private let insert: PgStatement
    private let update: PgStatement
    private let selectExpired: PgStatement
    private let deleteOne: PgStatement

    /// The naive store's table, created under the name `table`.
    static func schema(_ table: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS "\(table)" (id bigserial PRIMARY KEY, sid varchar(64) NOT NULL UNIQUE, \
        data bytea NOT NULL, created_at bigint NOT NULL, expires_at bigint NOT NULL); \
        CREATE INDEX IF NOT EXISTS "\(table)_expires" ON "\(table)" (expires_at)
        """
    }

    init(_ configuration: PostgresConfiguration, table: String) throws {
        db = try PgDB(configuration)
        select = try db.prepare("SELECT data, expires_at FROM \"\(table)\" WHERE sid = $1", parameters: [.text])
        insert = try db.prepare(
            "INSERT INTO \"\(table)\" (sid, data, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            parameters: [.text, .blob, .int, .int])
        update = try db.prepare("UPDATE \"\(table)\" SET data = $1, expires_at = $2 WHERE sid = $3", parameters: [.blob, .int, .text])
        selectExpired = try db.prepare("SELECT sid FROM \"\(table)\" WHERE expires_at < $1", parameters: [.int])
        deleteOne = try db.prepare("DELETE FROM \"\(table)\" WHERE sid = $1", parameters: [.text])
    }

    func load(_ sid: String, now: Int64) throws -> [String: [UInt8]]? {
        select.set(0, text: sid)
        guard try select.execute() > 0, select.int64(0, 1) > now else { return nil }
        return try AttributeCodec.decode(select.bytes(0, 0))
    }

    func write(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws {
        update.set(0, blob: AttributeCodec.encode(attributes))
        update.set(1, now + Self.idle)
        update.set(2, text: sid)
        // PostgreSQL counts the rows matched: 0 means the row is missing.
        if try update.execute() == 0 { try create(sid, attributes, now: now) }
    }

    func create(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws {
        insert.set(0, text: sid)
        insert.set(1, blob: AttributeCodec.encode(attributes))
        insert.set(2, now)
        insert.set(3, now + Self.idle)
        try insert.execute()
    }

    func expiredIDs(now: Int64) throws -> [String] {
        selectExpired.set(0, now)
        let rows = try selectExpired.execute()
        return (0..<rows).map { selectExpired.text($0, 0) }
    }

    func delete(_ sid: String) throws -> Int {
        deleteOne.set(0, text: sid)
        return try deleteOne.execute()
    }
}

/// The store's statements as the floors send them (the store's own text, which the
/// backend keeps internal).
enum PostgresSQL {
    /// A live row by id: $1 id, $2 now.
    static func load(_ table: String) -> String {
        "SELECT data, version, created_at, expires_at, owner, details, last_seen FROM \"\(table)\" WHERE id = $1 AND expires_at > $2"
    }
}
#endif
