public import SessionStore

/// Where and how ``MySQLBackend`` connects, and how it lays out its table.
///
/// Works with MySQL 5.7/8.x and MariaDB (and their clusters) through MariaDB Connector/C.
/// The ``password`` never appears in ``description``.
public struct MySQLConfiguration: Sendable, CustomStringConvertible {
    /// How the connection is encrypted.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// TLS when Connector/C chooses it, else clear text without a word: Connector/C 3.3
        /// connects to a TLS server in clear text when no TLS option is given (checked).
        /// Choose ``required`` or ``verifyIdentity`` for a connection that must be encrypted.
        case preferred
        /// TLS is required: the connection fails rather than fall back to clear text. The
        /// server certificate is verified against ``TLS/ca`` when one is given.
        case required
        /// TLS is required and the server certificate (against ``TLS/ca``) and host name
        /// are verified. URL values `verify_ca` and `verify_identity` both select this.
        case verifyIdentity = "verify_identity"
    }

    /// TLS options, passed through to Connector/C.
    public struct TLS: Sendable, Equatable {
        /// The TLS mode. The default is ``TLSMode/preferred``.
        public var mode: TLSMode = .preferred
        /// Path of the CA certificate file (`ssl_ca`).
        public var ca: String?
        /// Path of the client certificate file (`ssl_cert`).
        public var certificate: String?
        /// Path of the client key file (`ssl_key`).
        public var key: String?

        /// No TLS options.
        public init() {}
    }

    /// The first (or only) server's host name or address: `hosts[0].host`. `localhost`
    /// means the default unix socket, as with every MySQL client. The default is `127.0.0.1`.
    public var host: String {
        get { hosts[0].host }
        set { hosts[0].host = newValue }
    }
    /// The first (or only) server's TCP port: `hosts[0].port`. The default is 3306.
    public var port: Int {
        get { hosts[0].port }
        set { hosts[0].port = newValue }
    }
    /// The servers to connect to: one, or the nodes of a cluster (Galera, Group
    /// Replication), never empty. With several, the pool picks one per connection by
    /// ``hostOrder``, stops using a node that refuses connections or has no quorum, runs a
    /// call cut off by a failed node again on another (as after any lost connection), and
    /// tries the failed node again after ``hostRetryInterval``. URL: `host1:port1,host2:port2`.
    public var hosts: [MySQLHost] = [MySQLHost(host: "127.0.0.1", port: 3306)]
    /// How connections are spread over several ``hosts``. The default is
    /// ``HostOrder/ordered`` (one node takes the writes, the others stand by). URL: `hosts`.
    public var hostOrder: HostOrder = .ordered
    /// How long a host that failed (connection refused, no quorum) is left alone before one
    /// connection tries it again. The default is 2 seconds. URL: `host_retry`.
    public var hostRetryInterval: Duration = .seconds(2)
    /// Causal reads: every read waits until its node has applied every write committed
    /// before it on any node (`wsrep_sync_wait = 1` on Galera,
    /// `group_replication_consistency = 'BEFORE'` on Group Replication), so a load right
    /// after a save on another node sees it. `nil` (the default) turns them on when several
    /// ``hosts`` are given. Costs a round of cluster messages per read. URL: `causal_reads`.
    public var causalReads: Bool?
    /// The user name.
    public var user: String
    /// The password; never printed.
    public var password: String?
    /// The database (schema) that holds the tables.
    public var database: String
    /// A unix socket path; when set, it is used instead of TCP.
    public var unixSocket: String?
    /// The sessions table; created if missing. The default is `sessions`.
    public var table: String = "sessions"
    /// The primary key layout. The default is `KeyLayout.idOnly`, measured faster on
    /// InnoDB than `(crc32, id)`.
    public var keyLayout: KeyLayout = .idOnly
    /// Use `row_id BIGINT AUTO_INCREMENT` as the primary key, with a unique key on the
    /// layout's columns (sequential inserts on I/O-bound servers). The default is `false`.
    public var autoIncrementPrimaryKey = false
    /// The most connections (and worker threads) the pool opens. The default is 8.
    public var poolSize = 8
    /// How long calls wait for a pooled connection while none comes free at all (every
    /// connection stuck on one call) before they fail with `StorageError.Kind.poolExhausted`.
    /// While connections keep coming free, waiting calls stay queued in order, however long
    /// the queue (bound it by cancelling the waiting task). The default is 5 seconds.
    public var poolWaitTimeout: Duration = .seconds(5)
    /// How long connecting may take. The default is 10 seconds.
    public var connectTimeout: Duration = .seconds(10)
    /// How long one read or write on the socket may block (Connector/C read and write
    /// timeouts), so a silent network failure surfaces as an error. `.zero` disables it.
    /// The default is 30 seconds.
    public var queryTimeout: Duration = .seconds(30)
    /// A pooled connection idle for longer than this is pinged before use and replaced if
    /// the server no longer answers, so a write is not lost to a connection that died
    /// while idle. The default is 1 second.
    public var healthCheckInterval: Duration = .seconds(1)
    /// TLS options. The default is none.
    public var tls = TLS()

    /// A configuration with defaults for everything not given.
    public init(
        host: String = "127.0.0.1", port: Int = 3306, user: String, password: String? = nil,
        database: String
    ) {
        self.user = user
        self.password = password
        self.database = database
        hosts = [MySQLHost(host: host, port: port)]
    }

    /// Reads a URL such as
    /// `mysql://user:password@host:3306/database?table=sessions&pool=8` or
    /// `mysql://user@localhost/database?socket=/run/mysqld/mysqld.sock`.
    ///
    /// Several hosts, for a cluster: `mysql://user:password@h1:3306,h2:3306,h3:3306/database`.
    ///
    /// Options: `hosts` (`ordered` or `random`), `causal_reads` (`true`/`false`),
    /// `host_retry`, `table`, `pool`, `pool_timeout`, `connect_timeout`, `query_timeout`,
    /// `health_check` (durations such as `500ms`, `5s`), `socket`,
    /// `key` (`id` or `crc32`), `auto_increment` (`true`/`false`), `ssl_ca`, `ssl_cert`,
    /// `ssl_key`, `ssl_mode` (`preferred`, `required`, `verify_ca`, `verify_identity`).
    /// Options it consumes are marked taken; the caller rejects any left over.
    /// - Throws: `SessionStoreError` with code `invalidConfiguration` naming the problem.
    public init(url: inout StoreURL) throws {
        guard ["mysql", "mariadb"].contains(url.scheme) else {
            throw StoreURL.invalid("scheme \(url.scheme) is not mysql or mariadb")
        }
        guard let user = url.user, !user.isEmpty else {
            throw StoreURL.invalid("missing user name in MySQL URL (expected mysql://user:password@host/database)")
        }
        let database = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        guard !database.isEmpty else {
            throw StoreURL.invalid("missing database name in MySQL URL (expected mysql://user:password@host/database)")
        }
        guard !database.contains("/"), database.utf8.count <= 64 else {
            throw StoreURL.invalid("invalid database name in MySQL URL")
        }
        self.init(user: user, password: url.password, database: database)
        if let host = url.host {
            if host.contains(",") {
                hosts = try url.hostList(defaultPort: 3306, engine: "MySQL").map { MySQLHost(host: $0.host, port: $0.port) }
            } else {
                self.host = host
                if let port = url.port { self.port = port }
            }
        } else if let port = url.port {
            self.port = port
        }
        if let order = try url.takeChoice("hosts", ["ordered": HostOrder.ordered, "random": .random]) { hostOrder = order }
        if let value = try url.takeDuration("host_retry") { hostRetryInterval = value }
        if let value = try url.takeBool("causal_reads") { causalReads = value }
        if let socket = url.take("socket") {
            guard !socket.isEmpty else { throw StoreURL.invalid("option socket must be a path") }
            guard hosts.count == 1 else { throw StoreURL.invalid("option socket cannot be used with several hosts") }
            unixSocket = socket
            if url.host == nil { host = "localhost" }
        }
        if let table = url.take("table") { self.table = try SQLIdentifier.validated(table) }
        if let pool = try url.takeInt("pool", in: 1...1024) { poolSize = pool }
        if let value = try url.takeDuration("pool_timeout") { poolWaitTimeout = value }
        if let value = try url.takeDuration("connect_timeout") { connectTimeout = value }
        if let value = try url.takeDuration("query_timeout") { queryTimeout = value }
        if let value = try url.takeDuration("health_check") { healthCheckInterval = value }
        if let layout = try url.takeChoice("key", ["id": KeyLayout.idOnly, "crc32": .checksumAndID]) {
            keyLayout = layout
        }
        if let value = try url.takeBool("auto_increment") { autoIncrementPrimaryKey = value }
        tls.ca = url.take("ssl_ca")
        tls.certificate = url.take("ssl_cert")
        tls.key = url.take("ssl_key")
        if let mode = try url.takeChoice("ssl_mode", [
            "preferred": TLSMode.preferred, "required": .required,
            "verify_ca": .verifyIdentity, "verify_identity": .verifyIdentity,
        ]) {
            tls.mode = mode
        }
    }

    /// The configuration without the password.
    public var description: String {
        var text = "mysql://\(user)\(password == nil ? "" : ":***")@"
        if let unixSocket {
            text += "\(host)/\(database)?socket=\(unixSocket)&"
        } else {
            text += hosts.map(\.description).joined(separator: ",") + "/\(database)?"
        }
        text += "table=\(table)&key=\(keyLayout.rawValue)&pool=\(poolSize)"
        if hosts.count > 1 { text += "&hosts=\(hostOrder.rawValue)" }
        if let causalReads { text += "&causal_reads=\(causalReads)" }
        if autoIncrementPrimaryKey { text += "&auto_increment=true" }
        if tls.mode != .preferred { text += "&ssl_mode=\(tls.mode.rawValue)" }
        return text
    }
}
