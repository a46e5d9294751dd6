import CSessionStoreMariaDB
import SessionStoreCore
import SessionStoreMySQL

/// A bare MariaDB Connector/C connection for the MySQL floor, naive store and fills.
///
/// Not `Sendable`: each benchmark thread opens its own.
final class MyDB {
    let handle: UnsafeMutablePointer<MYSQL>

    /// Connects with the parameters of the store's own URL parsing (same server, socket or
    /// TCP, user and database as the store).
    init(_ configuration: MySQLConfiguration) throws {
        guard let handle = mysql_init(nil) else { throw BenchError("mysql_init failed") }
        self.handle = handle
        func check(_ result: Int32, _ name: String) throws {
            guard result == 0 else { throw BenchError("Connector/C refused the option \(name)") }
        }
        try check(cssm_set_bool_option(handle, MYSQL_OPT_RECONNECT, 0), "MYSQL_OPT_RECONNECT")
        try check(cssm_set_string_option(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4"), "charset")
        if configuration.unixSocket != nil {
            try check(cssm_set_uint_option(handle, MYSQL_OPT_PROTOCOL, MYSQL_PROTOCOL_SOCKET.rawValue), "protocol")
        } else {
            try check(cssm_set_uint_option(handle, MYSQL_OPT_PROTOCOL, MYSQL_PROTOCOL_TCP.rawValue), "protocol")
        }
        let connected = mysql_real_connect(
            handle, configuration.host, configuration.user, configuration.password, configuration.database,
            UInt32(configuration.port), configuration.unixSocket, 0)
        guard connected != nil else {
            // deinit closes the handle.
            throw BenchError("mysql connect failed: \(String(cString: mysql_error(handle)))")
        }
    }

    deinit {
        mysql_close(handle)
    }

    /// Runs a text-protocol statement, discarding any result.
    func exec(_ sql: String) throws {
        let status = sql.withCString { mysql_real_query(handle, $0, UInt(sql.utf8.count)) }
        guard status == 0 else { throw BenchError("mysql: \(String(cString: mysql_error(handle))) in: \(sql.prefix(200))") }
        if let result = mysql_store_result(handle) { mysql_free_result(result) }
    }

    /// Whether the connection's database has a table `name`.
    func tableExists(_ name: String) throws -> Bool {
        let query = try prepare(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            parameters: [.text], results: [.int])
        query.set(0, text: name)
        try query.execute()
        defer { query.freeResult() }
        guard try query.fetch() else { throw BenchError("no row from COUNT(*) on information_schema.tables") }
        let count = query.int64(0)
        while try query.fetch() {}
        return count > 0
    }

    var affectedRows: Int {
        let count = mysql_affected_rows(handle)
        return count == UInt64.max ? 0 : Int(count)
    }

    func prepare(_ sql: String, parameters: [MyParameter], results: [MyParameter] = []) throws -> MyStatement {
        try MyStatement(db: self, sql: sql, parameters: parameters, results: results)
    }
}

/// The type of one bound parameter or result column.
enum MyParameter {
    case int
    case text
    case blob
}

/// A server-side prepared statement with parameter and result buffers bound once, so an
/// execution costs only copying the values in and the round trip: the lean floor.
final class MyStatement {
    let handle: UnsafeMutablePointer<MYSQL_STMT>
    private let sql: String
    private let parameters: UnsafeMutablePointer<MYSQL_BIND>
    private let results: UnsafeMutablePointer<MYSQL_BIND>
    private let parameterCount: Int
    private let resultCount: Int
    private let lengths: UnsafeMutablePointer<UInt>
    private let resultLengths: UnsafeMutablePointer<UInt>
    private let nulls: UnsafeMutablePointer<my_bool>
    private var buffers: [UnsafeMutableRawPointer] = []
    static let capacity = 65_536

    init(db: MyDB, sql: String, parameters kinds: [MyParameter], results resultKinds: [MyParameter]) throws {
        guard let handle = mysql_stmt_init(db.handle) else { throw BenchError("mysql_stmt_init failed") }
        self.handle = handle
        self.sql = sql
        parameterCount = kinds.count
        resultCount = resultKinds.count
        parameters = .allocate(capacity: max(1, kinds.count))
        results = .allocate(capacity: max(1, resultKinds.count))
        lengths = .allocate(capacity: max(1, kinds.count))
        resultLengths = .allocate(capacity: max(1, resultKinds.count))
        nulls = .allocate(capacity: max(1, resultKinds.count))
        parameters.initialize(repeating: MYSQL_BIND(), count: max(1, kinds.count))
        results.initialize(repeating: MYSQL_BIND(), count: max(1, resultKinds.count))
        lengths.initialize(repeating: 0, count: max(1, kinds.count))
        resultLengths.initialize(repeating: 0, count: max(1, resultKinds.count))
        nulls.initialize(repeating: 0, count: max(1, resultKinds.count))
        let status = sql.withCString { mysql_stmt_prepare(handle, $0, UInt(sql.utf8.count)) }
        guard status == 0 else { throw BenchError("mysql prepare: \(String(cString: mysql_stmt_error(handle))) in: \(sql)") }
        for (index, kind) in kinds.enumerated() { configure(parameters + index, kind, length: lengths + index) }
        for (index, kind) in resultKinds.enumerated() {
            configure(results + index, kind, length: resultLengths + index)
            results[index].is_null = nulls + index
        }
        if parameterCount > 0, mysql_stmt_bind_param(handle, parameters) != 0 {
            throw BenchError("mysql bind: \(String(cString: mysql_stmt_error(handle)))")
        }
        if resultCount > 0, mysql_stmt_bind_result(handle, results) != 0 {
            throw BenchError("mysql bind result: \(String(cString: mysql_stmt_error(handle)))")
        }
    }

    private func configure(_ bind: UnsafeMutablePointer<MYSQL_BIND>, _ kind: MyParameter, length: UnsafeMutablePointer<UInt>) {
        let size = kind == .int ? 8 : Self.capacity
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        buffers.append(buffer)
        bind.pointee.buffer = buffer
        bind.pointee.buffer_length = UInt(size)
        bind.pointee.length = length
        switch kind {
        case .int: bind.pointee.buffer_type = MYSQL_TYPE_LONGLONG
        case .text: bind.pointee.buffer_type = MYSQL_TYPE_STRING
        case .blob: bind.pointee.buffer_type = MYSQL_TYPE_BLOB
        }
    }

    deinit {
        mysql_stmt_close(handle)
        for buffer in buffers { buffer.deallocate() }
        parameters.deallocate()
        results.deallocate()
        lengths.deallocate()
        resultLengths.deallocate()
        nulls.deallocate()
    }

    @inline(__always)
    func set(_ index: Int, _ value: Int64) {
        parameters[index].buffer.storeBytes(of: value, as: Int64.self)
        lengths[index] = 8
    }

    @inline(__always)
    func set(_ index: Int, text: String) {
        var text = text
        text.withUTF8 { bytes in set(index, raw: UnsafeRawBufferPointer(bytes)) }
    }

    @inline(__always)
    func set(_ index: Int, blob: [UInt8]) {
        blob.withUnsafeBytes { set(index, raw: $0) }
    }

    private func set(_ index: Int, raw: UnsafeRawBufferPointer) {
        precondition(raw.count <= Self.capacity)
        if let base = raw.baseAddress { parameters[index].buffer.copyMemory(from: base, byteCount: raw.count) }
        lengths[index] = UInt(raw.count)
    }

    /// Executes; returns affected rows for writes.
    @discardableResult
    func execute() throws -> Int {
        guard mysql_stmt_execute(handle) == 0 else {
            throw BenchError("mysql execute: \(String(cString: mysql_stmt_error(handle))) in: \(sql.prefix(120))")
        }
        let count = mysql_stmt_affected_rows(handle)
        return count == UInt64.max ? 0 : Int(count)
    }

    /// Fetches the next row into the result buffers; `false` at the end.
    @inline(__always)
    func fetch() throws -> Bool {
        let status = mysql_stmt_fetch(handle)
        if status == 0 || status == MYSQL_DATA_TRUNCATED { return true }
        if status == MYSQL_NO_DATA { return false }
        throw BenchError("mysql fetch: \(String(cString: mysql_stmt_error(handle)))")
    }

    func freeResult() {
        mysql_stmt_free_result(handle)
    }

    @inline(__always)
    func int64(_ column: Int) -> Int64 {
        results[column].buffer.load(as: Int64.self)
    }

    @inline(__always)
    func bytes(_ column: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: results[column].buffer, count: Int(resultLengths[column])))
    }

    func text(_ column: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: results[column].buffer, count: Int(resultLengths[column])), as: UTF8.self)
    }
}

/// The MySQL floor: the store's lookups and writes through the C client with prepared
/// statements, on the store's table.
final class MySQLFloor: FloorConnection {
    let db: MyDB
    private let load: MyStatement
    private let update: MyStatement
    private let withChecksum: Bool
    private let table: String

    init(_ configuration: MySQLConfiguration, table: String, layout: KeyLayout) throws {
        self.table = table
        db = try MyDB(configuration)
        withChecksum = layout == .checksumAndID
        let key = withChecksum ? "crc32 = ? AND id = ?" : "id = ?"
        let keyKinds: [MyParameter] = withChecksum ? [.int, .text] : [.text]
        load = try db.prepare(
            "SELECT data, version, created_at, expires_at FROM `\(table)` WHERE \(key) AND expires_at > ?",
            parameters: keyKinds + [.int], results: [.blob, .int, .int, .int])
        update = try db.prepare(
            "UPDATE `\(table)` SET data = ?, version = version + 1, expires_at = GREATEST(expires_at, ?) WHERE \(key)",
            parameters: [.blob, .int] + keyKinds)
    }

    @inline(__always)
    func load(_ key: String, checksum: UInt32, slot: Int64, now: Int64) throws -> Bool {  // no slot in a MySQL table
        var index = 0
        if withChecksum {
            load.set(0, Int64(checksum))
            index = 1
        }
        load.set(index, text: key)
        load.set(index + 1, now)
        try load.execute()
        defer { load.freeResult() }
        guard try load.fetch() else { return false }
        let data = load.bytes(0)
        let found = !data.isEmpty && load.int64(1) > 0
        while try load.fetch() {}
        return found
    }

    @inline(__always)
    func update(_ key: String, checksum: UInt32, slot: Int64, data: [UInt8], expiresAt: Int64) throws {
        update.set(0, blob: data)
        update.set(1, expiresAt)
        if withChecksum {
            update.set(2, Int64(checksum))
            update.set(3, text: key)
        } else {
            update.set(2, text: key)
        }
        try update.execute()
    }

    func begin() throws { try db.exec("START TRANSACTION") }

    func commit() throws { try db.exec("COMMIT") }

    func deleteExpired(now: Int64) throws -> Int {
        try db.exec("DELETE FROM `\(table)` WHERE expires_at < \(now)")
        return db.affectedRows
    }
}

/// The naive store on MySQL: the same old-way logic as ``SQLiteNaive``, over
/// `id BIGINT AUTO_INCREMENT PRIMARY KEY, sid VARCHAR UNIQUE`.
final class MySQLNaive: NaiveConnection {
    let db: MyDB
    private let select: MyStatement
    private let insert: MyStatement
    private let update: MyStatement
    private let selectExpired: MyStatement
    private let deleteOne: MyStatement

    /// The naive store's table, created under the name `table`.
    static func schema(_ table: String) -> String {
        """
        CREATE TABLE IF NOT EXISTS `\(table)` (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
        sid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, data MEDIUMBLOB NOT NULL, \
        created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, UNIQUE KEY sid (sid), KEY expires_at (expires_at)) \
        ENGINE=InnoDB
        """
    }

    init(_ configuration: MySQLConfiguration, table: String) throws {
        db = try MyDB(configuration)
        select = try db.prepare(
            "SELECT data, expires_at FROM `\(table)` WHERE sid = ?", parameters: [.text], results: [.blob, .int])
        insert = try db.prepare(
            "INSERT INTO `\(table)` (sid, data, created_at, expires_at) VALUES (?, ?, ?, ?)",
            parameters: [.text, .blob, .int, .int])
        update = try db.prepare(
            "UPDATE `\(table)` SET data = ?, expires_at = ? WHERE sid = ?", parameters: [.blob, .int, .text])
        selectExpired = try db.prepare(
            "SELECT sid FROM `\(table)` WHERE expires_at < ?", parameters: [.int], results: [.text])
        deleteOne = try db.prepare("DELETE FROM `\(table)` WHERE sid = ?", parameters: [.text])
    }

    func load(_ sid: String, now: Int64) throws -> [String: [UInt8]]? {
        select.set(0, text: sid)
        try select.execute()
        defer { select.freeResult() }
        guard try select.fetch() else { return nil }
        let data = select.bytes(0)
        let expires = select.int64(1)
        while try select.fetch() {}
        guard expires > now else { return nil }
        return try AttributeCodec.decode(data)
    }

    func write(_ sid: String, _ attributes: [String: [UInt8]], now: Int64) throws {
        update.set(0, blob: AttributeCodec.encode(attributes))
        update.set(1, now + Self.idle)
        update.set(2, text: sid)
        // MySQL reports rows changed, not matched: an identical rewrite reports 0, so
        // insert only when the row is really missing.
        if try update.execute() == 0, try load(sid, now: now) == nil {
            try create(sid, attributes, now: now)
        }
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
        try selectExpired.execute()
        defer { selectExpired.freeResult() }
        var expired: [String] = []
        while try selectExpired.fetch() { expired.append(selectExpired.text(0)) }
        return expired
    }

    func delete(_ sid: String) throws -> Int {
        deleteOne.set(0, text: sid)
        return try deleteOne.execute()
    }
}
