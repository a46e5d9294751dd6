#if Postgres
public import SessionStore

/// One server of the list a ``PostgresConfiguration`` connects to: a primary and its
/// standbys, in order of preference.
public struct PostgresHost: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// A host and port.
    public init(host: String, port: Int = 5432) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 address in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where and how ``PostgresBackend`` connects, and which table it uses.
///
/// The ``password`` never appears in ``description``.
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    /// How the connection is encrypted, with libpq's `sslmode` names and meanings.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Clear text; TLS is never asked for.
        case disable
        /// TLS when the server offers it, else clear text. The certificate is not verified
        /// (as in libpq), so this guards against eavesdropping only, not impersonation.
        case prefer
        /// TLS or no connection. The certificate is verified against ``TLS/caFile`` when
        /// one is given (libpq's `verify-ca`), not otherwise.
        case require
        /// TLS or no connection, and the server's certificate must chain to ``TLS/caFile``
        /// (the system's roots when none is given) and name the host connected to.
        case verifyFull = "verify-full"
    }

    /// TLS options.
    public struct TLS: Sendable, Equatable {
        /// The TLS mode. The default is ``TLSMode/prefer``, as in libpq.
        public var mode: TLSMode = .prefer
        /// Path of a PEM file of CA certificates the server's certificate must chain to.
        public var caFile: String?

        /// The default: ``TLSMode/prefer`` and no CA file.
        public init() {}
    }

    /// The servers, in order of preference: a new connection goes to the first that accepts
    /// it and is not a read-only standby (a host that refused, timed out or was a standby is
    /// skipped for ``hostRetryInterval``). One host by default, `127.0.0.1:5432`.
    public var hosts: [PostgresHost] = [PostgresHost(host: "127.0.0.1")]
    /// The first (or only) server's host name or address: `hosts[0].host`.
    public var host: String {
        get { hosts[0].host }
        set { hosts[0].host = newValue }
    }
    /// The first (or only) server's TCP port: `hosts[0].port`. The default is 5432.
    public var port: Int {
        get { hosts[0].port }
        set { hosts[0].port = newValue }
    }
    /// With several ``hosts``: how long a host that could not be connected to, or turned out
    /// to be a read-only standby, is passed over before new connections try it again. The
    /// default is 5 seconds. URL: `host_retry`.
    public var hostRetryInterval: Duration = .seconds(5)
    /// The path of the server's Unix socket file (e.g. `/run/postgresql/.s.PGSQL.5432`);
    /// when set, it is used instead of TCP and TLS is not used.
    public var unixSocket: String?
    /// The user name.
    public var user: String
    /// The password; never printed.
    public var password: String?
    /// The database that holds the tables.
    public var database: String
    /// The sessions table (in the connection's default schema); created if missing. The
    /// default is `sessions`.
    public var table: String = "sessions"
    /// The most connections the pool opens. The default is 16.
    public var poolSize = 16
    /// How long calls wait for a pooled connection while none comes free at all (every
    /// connection held by one call) before they fail with `StorageError.Kind.poolExhausted`.
    /// While connections keep coming free, waiting calls stay queued in order, however long
    /// the queue; a waiting call whose task is cancelled leaves the queue at once. The
    /// default is 30 seconds: on a loaded machine, commits waiting on a slow disk were seen
    /// here to hold every connection of a busy pool for more than 5 s (MySQL's default)
    /// while the pool was not stuck.
    public var poolWaitTimeout: Duration = .seconds(30)
    /// How long connecting may take, TCP and TLS and authentication together. The default
    /// is 10 seconds.
    public var connectTimeout: Duration = .seconds(10)
    /// The server cancels a statement that runs longer (`statement_timeout`, set for every
    /// pooled connection), so a lock wait or a stalled server surfaces as
    /// `StorageError.Kind.busy` instead of hanging a request. `.zero` disables it. The
    /// default is 30 seconds.
    public var statementTimeout: Duration = .seconds(30)
    /// How long the client waits for the server's answer to one statement before it gives
    /// up on the connection: it closes it and fails the call with
    /// `StorageError.Kind.connection` (a write then may or may not have been committed). It
    /// bounds every call when the server or the network stops answering, which
    /// ``statementTimeout`` cannot (the server must be alive to cancel). `nil` (the
    /// default) means 5 seconds more than ``statementTimeout`` (35 s by default, and 35 s
    /// when the statement timeout is off); `.zero` disables it. Given, it must exceed a
    /// non-zero ``statementTimeout``, so that the server cancels a slow statement (reported
    /// `busy`, connection kept) before the client drops the connection.
    public var queryTimeout: Duration?
    /// TLS options. The default is ``TLSMode/prefer`` without a CA file.
    public var tls = TLS()

    /// A configuration with defaults for everything not given.
    public init(host: String = "127.0.0.1", port: Int = 5432, user: String, password: String? = nil, database: String) {
        hosts = [PostgresHost(host: host, port: port)]
        self.user = user
        self.password = password
        self.database = database
    }

    /// Reads a URL such as `postgres://user:password@host:5432/database?table=sessions&pool=16`,
    /// or, over a Unix socket, `postgres://user@localhost/database?socket=/run/postgresql/.s.PGSQL.5432`.
    /// Several hosts, a primary and its standbys in order of preference:
    /// `postgres://user:password@h1:5432,h2:5432/database` (option `host_retry`).
    ///
    /// Schemes `postgres` and `postgresql`. Options: `table`, `pool` (1...1024),
    /// `pool_timeout`, `connect_timeout`, `statement_timeout`, `query_timeout` (durations
    /// such as `500ms`, `30s`; `0` or `off` for none where allowed), `socket` (the socket
    /// file's path), `ssl_mode` (`disable`, `prefer`,
    /// `require`, `verify-full`), `ssl_ca` (a PEM file). Options it consumes are marked
    /// taken; the caller rejects any left over.
    /// - Throws: `SessionStoreError` with code `invalidConfiguration` naming the problem.
    public init(url: inout StoreURL) throws {
        guard ["postgres", "postgresql"].contains(url.scheme) else {
            throw StoreURL.invalid("scheme \(url.scheme) is not postgres or postgresql")
        }
        guard let user = url.user, !user.isEmpty else {
            throw StoreURL.invalid("missing user name in PostgreSQL URL (expected postgres://user:password@host/database)")
        }
        let database = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        guard !database.isEmpty else {
            throw StoreURL.invalid("missing database name in PostgreSQL URL (expected postgres://user:password@host/database)")
        }
        guard !database.contains("/"), database.utf8.count <= 63 else {
            throw StoreURL.invalid("invalid database name in PostgreSQL URL")
        }
        self.init(user: user, password: url.password, database: database)
        if let host = url.host, host.contains(",") {
            hosts = try url.hostList(defaultPort: 5432, engine: "PostgreSQL").map { PostgresHost(host: $0.host, port: $0.port) }
        } else {
            if let host = url.host { self.host = host }
            if let port = url.port { self.port = port }
        }
        if let value = try url.takeDuration("host_retry") { hostRetryInterval = value }
        if let socket = url.take("socket") {
            guard socket.hasPrefix("/") else { throw StoreURL.invalid("option socket must be an absolute path") }
            guard hosts.count == 1 else { throw StoreURL.invalid("option socket cannot be used with several hosts") }
            unixSocket = socket
        }
        if let table = url.take("table") { self.table = try SQLIdentifier.validated(table) }
        if let pool = try url.takeInt("pool", in: 1...1024) { poolSize = pool }
        if let value = try url.takeDuration("connect_timeout") { connectTimeout = value }
        if let value = try url.takeDuration("statement_timeout") { statementTimeout = value }
        if let value = try url.takeDuration("query_timeout") { queryTimeout = value }
        if let value = try url.takeDuration("pool_timeout") { poolWaitTimeout = value }
        try validateTimeouts()
        if let mode = try url.takeChoice("ssl_mode", Dictionary(uniqueKeysWithValues: TLSMode.allCases.map { ($0.rawValue, $0) })) {
            tls.mode = mode
        }
        if let ca = url.take("ssl_ca") {
            guard !ca.isEmpty else { throw StoreURL.invalid("option ssl_ca must be a file path") }
            tls.caFile = ca
        }
        if unixSocket != nil && tls.mode != .disable && tls.mode != .prefer {
            throw StoreURL.invalid("ssl_mode=\(tls.mode.rawValue) cannot be used with a Unix socket (no TLS there)")
        }
    }

    /// The client-side limit on one statement in effect: ``queryTimeout``, or 5 seconds more
    /// than ``statementTimeout`` (35 s when that is off); `nil` when disabled.
    var effectiveQueryTimeout: Duration? {
        if let queryTimeout { return queryTimeout == .zero ? nil : queryTimeout }
        return (statementTimeout == .zero ? .seconds(30) : statementTimeout) + .seconds(5)
    }

    /// Checks the timeouts against each other.
    /// - Throws: `SessionStoreError` `invalidConfiguration` naming the option.
    func validateTimeouts() throws {
        guard connectTimeout > .zero else { throw StoreURL.invalid("option connect_timeout must be positive") }
        guard poolWaitTimeout > .zero else { throw StoreURL.invalid("option pool_timeout must be positive") }
        guard !hosts.isEmpty else { throw StoreURL.invalid("PostgreSQL configuration has no host") }
        guard hostRetryInterval >= .zero else { throw StoreURL.invalid("option host_retry must not be negative") }
        guard statementTimeout >= .zero else { throw StoreURL.invalid("option statement_timeout must not be negative") }
        if let queryTimeout {
            guard queryTimeout >= .zero else { throw StoreURL.invalid("option query_timeout must not be negative") }
            if queryTimeout > .zero, statementTimeout > .zero, queryTimeout <= statementTimeout {
                throw StoreURL.invalid(
                    "option query_timeout (\(queryTimeout)) must exceed statement_timeout (\(statementTimeout)), so the "
                        + "server cancels a slow statement before the client drops the connection")
            }
        }
    }

    /// The configuration without the password.
    public var description: String {
        var text = "postgres://\(user)\(password == nil ? "" : ":***")@"
        if let unixSocket {
            text += "localhost/\(database)?socket=\(unixSocket)&"
        } else {
            text += hosts.map(\.description).joined(separator: ",") + "/\(database)?ssl_mode=\(tls.mode.rawValue)&"
        }
        text += "table=\(table)&pool=\(poolSize)"
        return text
    }
}
#endif
