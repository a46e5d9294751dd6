import CSessionStoreMariaDB

/// A value bound to a statement parameter.
enum MySQLValue: Sendable {
    case null
    case int(Int64)
    case text(String)
    case bytes([UInt8])
}

/// The type of a result column as read back.
enum MySQLColumnKind: Sendable {
    case int
    case bytes
}

/// One fetched column value.
enum MySQLResultValue: Sendable, Equatable {
    case null
    case int(Int64)
    case bytes([UInt8])

    var int: Int64? { if case .int(let value) = self { value } else { nil } }
    var bytes: [UInt8]? { if case .bytes(let value) = self { value } else { nil } }
}

/// A server-side prepared statement, prepared once per connection and reused.
///
/// Owned by one ``MySQLConnection`` and used by one thread at a time: its slot's worker, or
/// a load's caller and then the event loop (``MySQLPendingQuery``).
final class MySQLStatement {
    let handle: UnsafeMutablePointer<MYSQL_STMT>
    let sql: String
    private let parameterCount: Int

    init(connection: UnsafeMutablePointer<MYSQL>, sql: String) throws(MySQLClientError) {
        guard let handle = mysql_stmt_init(connection) else {
            throw MySQLClientError.from(connection, statement: sql)
        }
        let status = sql.withCString { mysql_stmt_prepare(handle, $0, UInt(sql.utf8.count)) }
        guard status == 0 else {
            let error = MySQLClientError.from(statement: handle, sql: sql)
            mysql_stmt_close(handle)
            throw error
        }
        self.handle = handle
        self.sql = sql
        self.parameterCount = Int(mysql_stmt_param_count(handle))
    }

    deinit {
        mysql_stmt_close(handle)
    }

    /// Executes with `parameters` and returns the number of changed rows.
    func execute(_ parameters: [MySQLValue]) throws(MySQLClientError) -> UInt64 {
        try bindAndExecute(parameters)
        let count = mysql_stmt_affected_rows(handle)
        return count == UInt64.max ? 0 : count
    }

    /// Executes a query with `parameters` and reads every row, its columns read as `columns`.
    func query(_ parameters: [MySQLValue], columns: [MySQLColumnKind]) throws(MySQLClientError) -> [[MySQLResultValue]] {
        try bindAndExecute(parameters)
        return try readRows(columns)
    }

    /// Reads every row of the executed statement's result, its columns read as `columns`,
    /// then frees the result. Reads from the socket unless the result was stored first.
    func readRows(_ columns: [MySQLColumnKind]) throws(MySQLClientError) -> [[MySQLResultValue]] {
        defer { mysql_stmt_free_result(handle) }
        let count = columns.count
        precondition(Int(mysql_stmt_field_count(handle)) == count, "result column count mismatch")
        var binds = [MYSQL_BIND](repeating: MYSQL_BIND(), count: count)
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: count)
        let nulls = UnsafeMutablePointer<my_bool>.allocate(capacity: count)
        let errors = UnsafeMutablePointer<my_bool>.allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
        nulls.initialize(repeating: 0, count: count)
        errors.initialize(repeating: 0, count: count)
        var buffers: [UnsafeMutableRawPointer] = []
        defer {
            lengths.deallocate()
            nulls.deallocate()
            errors.deallocate()
            for buffer in buffers { buffer.deallocate() }
        }
        let initialCapacity = 512
        for (index, kind) in columns.enumerated() {
            switch kind {
            case .int:
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffers.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = buffer
                binds[index].buffer_length = 8
            case .bytes:
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: initialCapacity, alignment: 8)
                buffers.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_BLOB
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(initialCapacity)
            }
            binds[index].length = lengths + index
            binds[index].is_null = nulls + index
            binds[index].error = errors + index
        }
        var rows: [[MySQLResultValue]] = []
        var failure: MySQLClientError?
        binds.withUnsafeMutableBufferPointer { binds in
            guard mysql_stmt_bind_result(handle, binds.baseAddress) == 0 else {
                failure = MySQLClientError.from(statement: handle, sql: sql)
                return
            }
            while true {
                let status = mysql_stmt_fetch(handle)
                if status == MYSQL_NO_DATA { return }
                if status == 1 {
                    failure = MySQLClientError.from(statement: handle, sql: sql)
                    return
                }
                var row: [MySQLResultValue] = []
                row.reserveCapacity(count)
                for (index, kind) in columns.enumerated() {
                    if nulls[index] != 0 {
                        row.append(.null)
                        continue
                    }
                    switch kind {
                    case .int:
                        row.append(.int(binds[index].buffer.load(as: Int64.self)))
                    case .bytes:
                        let length = Int(lengths[index])
                        if length <= Int(binds[index].buffer_length) {
                            let source = UnsafeRawBufferPointer(start: binds[index].buffer, count: length)
                            row.append(.bytes(Array(source)))
                        } else {
                            // Truncated: fetch the whole column into a buffer of the right size.
                            var value = [UInt8](repeating: 0, count: length)
                            var column = MYSQL_BIND()
                            var columnLength: UInt = 0
                            let status = value.withUnsafeMutableBytes { bytes in
                                column.buffer_type = MYSQL_TYPE_BLOB
                                column.buffer = bytes.baseAddress
                                column.buffer_length = UInt(length)
                                return withUnsafeMutablePointer(to: &columnLength) { lengthPointer in
                                    column.length = lengthPointer
                                    return mysql_stmt_fetch_column(handle, &column, UInt32(index), 0)
                                }
                            }
                            guard status == 0 else {
                                failure = MySQLClientError.from(statement: handle, sql: sql)
                                return
                            }
                            row.append(.bytes(value))
                        }
                    }
                }
                rows.append(row)
            }
        }
        if let failure { throw failure }
        return rows
    }

    private func bindAndExecute(_ parameters: [MySQLValue]) throws(MySQLClientError) {
        let binds = MySQLParameterBinds(parameters)
        try bind(binds)
        guard mysql_stmt_execute(handle) == 0 else { throw MySQLClientError.from(statement: handle, sql: sql) }
    }

    /// Binds `binds` as the parameters of the next execution; they must outlive it.
    func bind(_ binds: MySQLParameterBinds) throws(MySQLClientError) {
        precondition(binds.count == parameterCount, "parameter count mismatch for \(sql)")
        if binds.count > 0, mysql_stmt_bind_param(handle, binds.binds) != 0 {
            throw MySQLClientError.from(statement: handle, sql: sql)
        }
    }
}

/// Parameter values in C buffers, bound to one execution of a statement and kept alive
/// until it ends (a non-blocking execution reads them after its caller returned).
final class MySQLParameterBinds {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    let count: Int
    private var buffers: [UnsafeMutableRawPointer] = []

    init(_ parameters: [MySQLValue]) {
        count = parameters.count
        binds = .allocate(capacity: max(1, count))
        binds.initialize(repeating: MYSQL_BIND(), count: max(1, count))
        buffers.reserveCapacity(count)
        for (index, value) in parameters.enumerated() {
            switch value {
            case .null:
                binds[index].buffer_type = MYSQL_TYPE_NULL
            case .int(let number):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffer.storeBytes(of: number, as: Int64.self)
                buffers.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = buffer
                binds[index].buffer_length = 8
            case .text(let text):
                let utf8 = Array(text.utf8)
                let buffer = Self.copy(utf8)
                buffers.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_STRING
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(utf8.count)
            case .bytes(let bytes):
                let buffer = Self.copy(bytes)
                buffers.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_BLOB
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(bytes.count)
            }
        }
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        binds.deinitialize(count: max(1, count))
        binds.deallocate()
    }

    private static func copy(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { buffer.copyMemory(from: base, byteCount: source.count) }
        }
        return buffer
    }
}
