import CSessionStoreMariaDB
import SessionStoreCore

/// Initialises Connector/C once per process, before any connection is made.
enum MySQLLibrary {
    /// `mysql_library_init` is a macro; `mysql_server_init` is the function behind it.
    static let initialized: Bool = {
        mysql_server_init(0, nil, nil) == 0
    }()
}

/// One client connection with its prepared statements.
///
/// Not `Sendable`: used by one thread at a time, and created and closed on its slot's worker
/// thread; a load is sent by its caller and finished by that thread (``MySQLPendingQuery``).
final class MySQLConnection {
    let handle: UnsafeMutablePointer<MYSQL>
    private var statements: [String: MySQLStatement] = [:]
    /// When the connection last completed a call, for the idle health check.
    var lastUsed: ContinuousClock.Instant = .now
    /// Whether the socket was added to its slot thread's `epoll` set (``MySQLWorker``).
    var watched = false
    private let onClose: () -> Void

    /// Connects with `configuration`, every option checked.
    ///
    /// The connection reports matched rather than changed rows (`CLIENT_FOUND_ROWS`), so an
    /// `UPDATE` that finds its row but changes nothing still counts it, and a statement run
    /// again after a lost reply reports the same as the first time.
    /// - Parameter onClose: Called once when the handle is closed (for resource counts).
    /// - Throws: ``MySQLClientError`` from an option Connector/C refused, from
    ///   `mysql_real_connect`, or when TLS was required and the connection is not encrypted.
    init(_ configuration: MySQLConfiguration, onClose: @escaping () -> Void = {}) throws(MySQLClientError) {
        guard MySQLLibrary.initialized, let handle = mysql_init(nil) else {
            throw MySQLClientError(code: MySQLErrorCode.outOfMemory, message: "could not initialise a MySQL client handle")
        }
        do {
            try Self.setOptions(handle, configuration)
        } catch {
            mysql_close(handle)
            throw error
        }
        let connected = mysql_real_connect(
            handle, configuration.host, configuration.user, configuration.password,
            configuration.database, UInt32(configuration.port), configuration.unixSocket, UInt(CLIENT_FOUND_ROWS)
        )
        guard connected != nil else {
            let error = MySQLClientError.from(handle, statement: nil)
            mysql_close(handle)
            throw error
        }
        // Connector/C 3.3 connects in clear text when the server offers no TLS, even with
        // MYSQL_OPT_SSL_ENFORCE set (checked against a server without TLS): verify it here.
        if configuration.tls.mode != .preferred && mysql_get_ssl_cipher(handle) == nil {
            mysql_close(handle)
            throw MySQLClientError(
                code: MySQLErrorCode.tls,
                message: "ssl_mode=\(configuration.tls.mode.rawValue) but the connection is not encrypted "
                    + "(the server offers no TLS, or TLS is not used over this transport)",
                kind: .connection
            )
        }
        self.handle = handle
        self.onClose = onClose
    }

    deinit {
        statements.removeAll() // close statements before their connection
        mysql_close(handle)
        onClose()
    }

    private static func setOptions(_ handle: UnsafeMutablePointer<MYSQL>, _ configuration: MySQLConfiguration) throws(MySQLClientError) {
        func check(_ result: Int32, _ name: String) throws(MySQLClientError) {
            guard result == 0 else {
                throw MySQLClientError(
                    code: 0, message: "Connector/C refused the option \(name); the connection was not opened", kind: .other
                )
            }
        }
        func seconds(_ duration: Duration) -> UInt32 {
            UInt32(clamping: max(1, duration.components.seconds + (duration.components.attoseconds > 0 ? 1 : 0)))
        }
        // Loads run through the non-blocking API (`*_start`/`*_cont`, see MySQLPendingQuery);
        // the blocking calls work on the same connection as before.
        guard mysql_options(handle, MYSQL_OPT_NONBLOCK, nil) == 0 else {
            throw MySQLClientError(
                code: 0, message: "Connector/C refused the option MYSQL_OPT_NONBLOCK; the connection was not opened", kind: .other
            )
        }
        // An automatic reconnect would silently drop prepared statements and session state.
        try check(cssm_set_bool_option(handle, MYSQL_OPT_RECONNECT, 0), "MYSQL_OPT_RECONNECT")
        try check(cssm_set_uint_option(handle, MYSQL_OPT_CONNECT_TIMEOUT, seconds(configuration.connectTimeout)), "connect_timeout")
        if configuration.queryTimeout > .zero {
            try check(cssm_set_uint_option(handle, MYSQL_OPT_READ_TIMEOUT, seconds(configuration.queryTimeout)), "query_timeout (read)")
            try check(cssm_set_uint_option(handle, MYSQL_OPT_WRITE_TIMEOUT, seconds(configuration.queryTimeout)), "query_timeout (write)")
        }
        try check(cssm_set_string_option(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4"), "charset utf8mb4")
        // A known SQL mode: strict (errors instead of silent truncation) and without
        // SIMULTANEOUS_ASSIGNMENT, since the lease upsert relies on left-to-right assignment.
        try check(
            cssm_set_string_option(handle, MYSQL_INIT_COMMAND, "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'"),
            "init command"
        )
        if configuration.unixSocket != nil {
            try check(cssm_set_uint_option(handle, MYSQL_OPT_PROTOCOL, MYSQL_PROTOCOL_SOCKET.rawValue), "protocol socket")
        } else if configuration.host != "localhost" {
            try check(cssm_set_uint_option(handle, MYSQL_OPT_PROTOCOL, MYSQL_PROTOCOL_TCP.rawValue), "protocol tcp")
        }
        let tls = configuration.tls
        if let ca = tls.ca { try check(cssm_set_string_option(handle, MYSQL_OPT_SSL_CA, ca), "ssl_ca") }
        if let cert = tls.certificate { try check(cssm_set_string_option(handle, MYSQL_OPT_SSL_CERT, cert), "ssl_cert") }
        if let key = tls.key { try check(cssm_set_string_option(handle, MYSQL_OPT_SSL_KEY, key), "ssl_key") }
        switch tls.mode {
        case .preferred:
            break
        case .required:
            try check(cssm_set_bool_option(handle, MYSQL_OPT_SSL_ENFORCE, 1), "ssl_mode=required (MYSQL_OPT_SSL_ENFORCE)")
        case .verifyIdentity:
            try check(cssm_set_bool_option(handle, MYSQL_OPT_SSL_ENFORCE, 1), "ssl_mode=verify_identity (MYSQL_OPT_SSL_ENFORCE)")
            try check(
                cssm_set_bool_option(handle, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, 1),
                "ssl_mode=verify_identity (MYSQL_OPT_SSL_VERIFY_SERVER_CERT)"
            )
        }
    }

    /// The TLS cipher in use, or `nil` for a connection in clear text.
    var tlsCipher: String? { mysql_get_ssl_cipher(handle).map { String(cString: $0) } }

    /// The prepared statement for `sql`, prepared on first use and then reused.
    func statement(_ sql: String) throws(MySQLClientError) -> MySQLStatement {
        if let statement = statements[sql] { return statement }
        let statement = try MySQLStatement(connection: handle, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// The statement for `sql` when it is already prepared on this connection.
    func prepared(_ sql: String) -> MySQLStatement? {
        statements[sql]
    }

    /// The connection's socket, or `nil` when it has none.
    var socket: Int32? {
        let socket = mysql_get_socket(handle)
        return socket >= 0 ? socket : nil
    }

    /// Forgets every prepared statement, e.g. after the server invalidated one.
    func discardStatements() {
        statements.removeAll()
    }

    /// How many statements are prepared on this connection.
    var preparedCount: Int { statements.count }

    /// Runs SQL through the text protocol, discarding any result.
    func run(_ sql: String) throws(MySQLClientError) {
        guard mysql_real_query(handle, sql, UInt(sql.utf8.count)) == 0 else {
            throw MySQLClientError.from(handle, statement: sql)
        }
        if let result = mysql_store_result(handle) {
            mysql_free_result(result)
        } else if mysql_field_count(handle) != 0 {
            throw MySQLClientError.from(handle, statement: sql)
        }
    }

    /// Runs a query through the text protocol and returns its rows as text.
    func rows(_ sql: String) throws(MySQLClientError) -> [[String?]] {
        guard mysql_real_query(handle, sql, UInt(sql.utf8.count)) == 0 else {
            throw MySQLClientError.from(handle, statement: sql)
        }
        guard let result = mysql_store_result(handle) else {
            if mysql_field_count(handle) == 0 { return [] }
            throw MySQLClientError.from(handle, statement: sql)
        }
        defer { mysql_free_result(result) }
        let columns = Int(mysql_num_fields(result))
        var rows: [[String?]] = []
        while let row = mysql_fetch_row(result) {
            let lengths = mysql_fetch_lengths(result)
            var values: [String?] = []
            for index in 0..<columns {
                if let field = row[index], let lengths {
                    let buffer = UnsafeRawBufferPointer(start: field, count: Int(lengths[index]))
                    values.append(String(decoding: buffer, as: UTF8.self))
                } else {
                    values.append(nil)
                }
            }
            rows.append(values)
        }
        return rows
    }

    /// Runs `body` in a transaction: `COMMIT` when it returns, `ROLLBACK` when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try run("START TRANSACTION")
        let result: T
        do {
            result = try body()
        } catch {
            rollBack(after: error)
            throw error
        }
        try run("COMMIT")
        return result
    }

    /// Rolls back after `error`; a connection that is gone rolls back on the server anyway.
    private func rollBack(after error: any Error) {
        if let error = error as? MySQLClientError, error.isConnectionLost { return }
        do {
            try run("ROLLBACK")
        } catch {
            // The transaction cannot stay open on a connection that is reused: when even
            // ROLLBACK fails, the connection is broken; the next call finds out and replaces it.
            broken = true
        }
    }

    /// Set when a transaction could not be rolled back: the pool discards the connection.
    var broken = false

    /// Whether the server still answers.
    func ping() -> Bool {
        mysql_ping(handle) == 0
    }
}
