#if Postgres
import Logging
import PostgresNIO
import SessionStore
import Synchronization

/// The servers a backend connects to, in order of preference, with what each did lately:
/// a new connection goes to the first host that accepts it and is not a read-only standby.
///
/// A host that refused, timed out or was a standby is passed over for
/// ``PostgresConfiguration/hostRetryInterval``; when every host failed lately, all are
/// tried anyway, the one that failed longest ago first. With one host this is a plain
/// connect.
final class PostgresHostSet: Sendable {
    private let configurations: [PostgresConnection.Configuration]
    private let names: [String]
    private let retryInterval: Duration
    private let logger: Logger
    /// Per host: passed over until this instant; `nil` when usable.
    private let downUntil: Mutex<[ContinuousClock.Instant?]>

    init(_ configuration: PostgresConfiguration, logger: Logger) throws {
        configurations = try configuration.connectionConfigurations()
        names = configuration.unixSocket.map { [$0] } ?? configuration.hosts.map(\.description)
        retryInterval = configuration.hostRetryInterval
        self.logger = logger
        downUntil = Mutex(Array(repeating: nil, count: configurations.count))
    }

    /// How many connections to each host were opened so far (for tests).
    private let openedPerHost = Mutex([Int: Int]())
    /// Connections opened to host `index` so far (for tests).
    func opened(on index: Int) -> Int { openedPerHost.withLock { $0[index, default: 0] } }

    /// Opens a connection to the first usable host.
    /// - Throws: the last host's driver error when none could be connected to (the first
    ///   error that is not about reaching the server, such as a wrong password, at once),
    ///   or `StorageError.Kind.readOnly` when every host that answered is a standby.
    func connect(id: Int) async throws -> PostgresConnection {
        guard configurations.count > 1 else {
            let connection = try await PostgresConnection.connect(configuration: configurations[0], id: id, logger: logger)
            openedPerHost.withLock { $0[0, default: 0] += 1 }
            return connection
        }
        var lastError: (any Error)?
        for index in candidates() {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(configuration: configurations[index], id: id, logger: logger)
            } catch {
                // Only a server that cannot be reached is a reason to try the next one.
                guard PostgresFailure(error, operation: "connect", statement: nil)?.recovery == .lostConnection else { throw error }
                markDown(index, because: "\(error)")
                lastError = error
                continue
            }
            let standby: Bool
            do {
                standby = try await PostgresBackend.rows(connection, "SELECT pg_is_in_recovery()", []).first?.decode(Bool.self) ?? false
            } catch {
                await close(connection)
                markDown(index, because: "\(error)")
                lastError = error
                continue
            }
            if standby {
                await close(connection)
                markDown(index, because: "a read-only standby")
                lastError = StorageError(
                    kind: .readOnly, engine: "postgres", operation: "connect",
                    message: "every host that answered is a read-only standby (last: \(names[index]))")
                continue
            }
            downUntil.withLock { $0[index] = nil }
            openedPerHost.withLock { $0[index, default: 0] += 1 }
            return connection
        }
        throw lastError ?? StorageError(kind: .connection, engine: "postgres", operation: "connect", message: "no host to connect to")
    }

    /// Host indices to try, best first: the usable ones in list order, then the ones that
    /// failed lately, the longest ago first.
    private func candidates() -> [Int] {
        let now = ContinuousClock.now
        return downUntil.withLock { downUntil in
            let usable = downUntil.indices.filter { downUntil[$0].map { $0 <= now } ?? true }
            let down = downUntil.indices.filter { !usable.contains($0) }.sorted { (downUntil[$0] ?? now) < (downUntil[$1] ?? now) }
            return usable + down
        }
    }

    private func close(_ connection: PostgresConnection) async {
        do {
            try await connection.close()
        } catch {
            logger.debug("closing a PostgreSQL connection passed over failed", metadata: ["error": "\(error)"])
        }
    }

    private func markDown(_ index: Int, because reason: String) {
        downUntil.withLock { $0[index] = .now + retryInterval }
        logger.debug("PostgreSQL host passed over", metadata: ["host": "\(names[index])", "reason": "\(reason)"])
    }
}
#endif
