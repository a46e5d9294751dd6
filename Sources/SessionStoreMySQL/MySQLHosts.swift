import SessionStore
import Synchronization

/// One server of the list a ``MySQLConfiguration`` connects to: a cluster node (Galera,
/// Group Replication) or a single server.
public struct MySQLHost: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address. `localhost` means the unix socket, as with every MySQL client.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// A host and port.
    public init(host: String, port: Int = 3306) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 address in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension MySQLConfiguration {
    /// How the pool chooses among several ``MySQLConfiguration/hosts``.
    public enum HostOrder: String, Sendable, CaseIterable {
        /// Every connection goes to the first usable host in the list; the others are
        /// standbys. After a failed host is usable again, connections move back to it.
        /// Writes on one node never conflict with writes on another (no certification
        /// failures), so this is the default.
        case ordered
        /// Each new connection goes to a usable host chosen at random, spreading the load.
        case random
    }

    /// Whether connections ask for causal reads: ``causalReads`` when set, else whenever
    /// several hosts are given.
    var usesCausalReads: Bool { causalReads ?? (hosts.count > 1) }

    /// This configuration aimed at one of its hosts, for Connector/C.
    func aimed(at host: MySQLHost) -> MySQLConfiguration {
        var copy = self
        copy.hosts = [host]
        return copy
    }
}

/// The health of each configured host, shared by a pool's slots: which to connect to next,
/// which failed recently and when to try them again.
///
/// A host that refused a connection, or answered that it has no quorum (1047), is left alone
/// for ``MySQLConfiguration/hostRetryInterval``; then one connection attempt probes it again.
/// When every host failed recently, all are tried anyway, least recently failed first.
final class MySQLHostSet: Sendable {
    struct Health {
        /// Not used before this instant; `nil` when usable.
        var downUntil: ContinuousClock.Instant?
        /// Why it was last marked down, for error messages.
        var lastFailure: String?
        /// Connections opened to it so far.
        var opened = 0
        /// Times it was marked down.
        var failures = 0
    }

    let hosts: [MySQLHost]
    let order: MySQLConfiguration.HostOrder
    let retryInterval: Duration
    private let health: Mutex<[Health]>

    init(_ configuration: MySQLConfiguration) {
        hosts = configuration.hosts
        order = configuration.hostOrder
        retryInterval = configuration.hostRetryInterval
        health = Mutex(Array(repeating: Health(), count: configuration.hosts.count))
    }

    var isCluster: Bool { hosts.count > 1 }

    /// Host indices to try for a new connection, best first: the usable ones (in list order
    /// or shuffled), then the ones that failed recently (least recent first). A host whose
    /// wait is over is claimed for one probe: others skip it until the probe succeeds.
    func candidates() -> [Int] {
        let now = ContinuousClock.now
        return health.withLock { health in
            var usable: [Int] = []
            var down: [(Int, ContinuousClock.Instant)] = []
            for index in health.indices {
                if let until = health[index].downUntil {
                    if until <= now {
                        health[index].downUntil = now + retryInterval // this caller probes it
                        usable.append(index)
                    } else {
                        down.append((index, until))
                    }
                } else {
                    usable.append(index)
                }
            }
            if order == .random { usable.shuffle() }
            return usable + down.sorted { $0.1 < $1.1 }.map(\.0)
        }
    }

    /// The first host in list order not marked down (for ``MySQLConfiguration/HostOrder/ordered``).
    /// A failed host whose wait is over is claimed for one probe, so that one caller, not
    /// every slot, tries it (a host that hangs costs one connect timeout per interval).
    func preferred() -> Int? {
        let now = ContinuousClock.now
        return health.withLock { health in
            guard let index = health.indices.first(where: { health[$0].downUntil.map { $0 <= now } ?? true }) else {
                return nil
            }
            if health[index].downUntil != nil { health[index].downUntil = now + retryInterval }
            return index
        }
    }

    func markUp(_ index: Int) {
        health.withLock { health in
            health[index].downUntil = nil
            health[index].opened += 1
        }
    }

    func markDown(_ index: Int, because reason: String) {
        let until = ContinuousClock.now + retryInterval
        health.withLock { health in
            health[index].downUntil = until
            health[index].lastFailure = reason
            health[index].failures += 1
        }
    }

    /// Each host with its last failure, e.g. `127.0.0.1:3307: connection refused`.
    func failureSummary() -> String {
        health.withLock { health in
            health.indices.map { "\(hosts[$0]): \(health[$0].lastFailure ?? "no failure")" }.joined(separator: "; ")
        }
    }

    /// Connections opened and failures seen per host (for tests and the bench).
    var counts: [(opened: Int, failures: Int)] {
        health.withLock { health in health.map { ($0.opened, $0.failures) } }
    }
}

extension MySQLConnection {
    /// Asks the server for causal reads on this session: every read first waits until the
    /// node has applied every write committed anywhere in the cluster before it
    /// (`wsrep_sync_wait = 1` on Galera, `group_replication_consistency = 'BEFORE'` on MySQL
    /// Group Replication).
    /// - Throws: ``MySQLClientError`` when the server offers neither.
    func enableCausalReads() throws(MySQLClientError) {
        do {
            try run("SET SESSION wsrep_sync_wait = 1")
            return
        } catch where error.code == MySQLErrorCode.unknownSystemVariable {
            // Not Galera: try Group Replication.
        }
        do {
            try run("SET SESSION group_replication_consistency = 'BEFORE'")
        } catch where error.code == MySQLErrorCode.unknownSystemVariable {
            throw MySQLClientError(
                code: error.code,
                message: "causal_reads is on (the default with several hosts) but the server offers neither "
                    + "wsrep_sync_wait (Galera) nor group_replication_consistency (Group Replication); "
                    + "set causal_reads=false for servers that are not such a cluster",
                kind: .other
            )
        }
    }
}

extension MySQLConnection {
    /// Whether the server is usable as far as a cluster goes: `true` for a server that is
    /// no Galera node (`wsrep_on` missing or `OFF`), else whether the node is in the primary
    /// component and ready (`wsrep_cluster_status = Primary`, `wsrep_ready = ON`). `SHOW`
    /// statements are answered even without quorum. `false` when the server cannot tell.
    func isInPrimaryComponent() -> Bool {
        do {
            let on = try rows("SHOW VARIABLES LIKE 'wsrep_on'")
            guard let value = on.first?[1] ?? nil, value.uppercased() == "ON" else { return true }
            let status = try rows("SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_ready')")
            var values: [String: String] = [:]
            for row in status where row.count == 2 {
                if let name = row[0], let value = row[1] { values[name.lowercased()] = value }
            }
            return values["wsrep_cluster_status"] == "Primary" && values["wsrep_ready"]?.uppercased() == "ON"
        } catch {
            return false // the node does not answer: not usable either
        }
    }
}

extension MySQLClientError {
    /// Errors a Galera node without quorum gives besides 1047: 1180 when a write cannot be
    /// replicated ("Not connected to Primary Component"), 1205 when a causal read cannot
    /// wait for the cluster.
    var mayMeanNoQuorum: Bool {
        code == MySQLErrorCode.errorDuringCommit || code == MySQLErrorCode.lockWaitTimeout
    }

    /// The node is not part of a primary component (Galera `ER_UNKNOWN_COM_ERROR`, "WSREP has
    /// not yet prepared node for application use"): it refuses every query until it regains
    /// quorum, so the pool uses another host.
    var isNodeUnusable: Bool { code == MySQLErrorCode.unknownCommand }
}
