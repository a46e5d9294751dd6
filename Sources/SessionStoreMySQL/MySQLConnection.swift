import CSessionStoreMariaDB

/// Initialises Connector/C once per process, before any connection is made.
enum MySQLLibrary {
    /// `mysql_library_init` is a macro; `mysql_server_init` is the function behind it.
    static let initialized: Bool = {
        mysql_server_init(0, nil, nil) == 0
    }()
}

/// One client connection with its prepared statements.
///
/// Not `Sendable`: it is created, used and closed on one pooled worker thread only.
final class MySQLConnection {
    let handle: UnsafeMutablePointer<MYSQL>
    private var statements: [String: MySQLStatement] = [:]
    /// When the connection last completed a call, for the idle health check.
    var lastUsed: ContinuousClock.Instant = .now

    /// Connects with `configuration`.
    /// - Throws: ``MySQLClientError`` from `mysql_real_connect`.
    init(_ configuration: MySQLConfiguration) throws(MySQLClientError) {
        _ = MySQLLibrary.initialized
        guard let handle = mysql_init(nil) else {
            throw MySQLClientError(code: 2008, message: "out of memory creating a MySQL handle")
        }
        self.handle = handle
        func seconds(_ duration: Duration) -> UInt32 {
            UInt32(clamping: max(1, duration.components.seconds + (duration.components.attoseconds > 0 ? 1 : 0)))
        }
        _ = cssm_set_bool_option(handle, MYSQL_OPT_RECONNECT, 0)
        _ = cssm_set_uint_option(handle, MYSQL_OPT_CONNECT_TIMEOUT, seconds(configuration.connectTimeout))
        if configuration.queryTimeout > .zero {
            _ = cssm_set_uint_option(handle, MYSQL_OPT_READ_TIMEOUT, seconds(configuration.queryTimeout))
            _ = cssm_set_uint_option(handle, MYSQL_OPT_WRITE_TIMEOUT, seconds(configuration.queryTimeout))
        }
        _ = cssm_set_string_option(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        // A known SQL mode: strict (errors instead of silent truncation) and without
        // SIMULTANEOUS_ASSIGNMENT, since the upserts rely on left-to-right assignment.
        _ = cssm_set_string_option(
            handle, MYSQL_INIT_COMMAND, "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'"
        )
        if configuration.unixSocket != nil {
            _ = cssm_set_uint_option(handle, MYSQL_OPT_PROTOCOL, MYSQL_PROTOCOL_SOCKET.rawValue)
        } else if configuration.host != "localhost" {
            _ = cssm_set_uint_option(handle, MYSQL_OPT_PROTOCOL, MYSQL_PROTOCOL_TCP.rawValue)
        }
        let tls = configuration.tls
        if let ca = tls.ca { _ = cssm_set_string_option(handle, MYSQL_OPT_SSL_CA, ca) }
        if let cert = tls.certificate { _ = cssm_set_string_option(handle, MYSQL_OPT_SSL_CERT, cert) }
        if let key = tls.key { _ = cssm_set_string_option(handle, MYSQL_OPT_SSL_KEY, key) }
        switch tls.mode {
        case .preferred:
            break
        case .required:
            _ = cssm_set_bool_option(handle, MYSQL_OPT_SSL_ENFORCE, 1)
        case .verifyIdentity:
            _ = cssm_set_bool_option(handle, MYSQL_OPT_SSL_ENFORCE, 1)
            _ = cssm_set_bool_option(handle, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, 1)
        }
        let connected = mysql_real_connect(
            handle, configuration.host, configuration.user, configuration.password,
            configuration.database, UInt32(configuration.port), configuration.unixSocket, 0
        )
        guard connected != nil else {
            // Every stored property is set, so deinit closes the handle.
            throw MySQLClientError.from(handle, statement: nil)
        }
    }

    deinit {
        statements.removeAll() // close statements before their connection
        mysql_close(handle)
    }

    /// The prepared statement for `sql`, prepared on first use and then reused.
    func statement(_ sql: String) throws(MySQLClientError) -> MySQLStatement {
        if let statement = statements[sql] { return statement }
        let statement = try MySQLStatement(connection: handle, sql: sql)
        statements[sql] = statement
        return statement
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
        if let result = mysql_store_result(handle) { mysql_free_result(result) }
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

    /// Whether the server still answers.
    func ping() -> Bool {
        mysql_ping(handle) == 0
    }
}
