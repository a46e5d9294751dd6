#if Postgres
import Logging
import PostgresNIO
import SessionStore
import Synchronization

/// The backend's connections: at most `maximum` postgres-nio connections, opened on
/// demand, each used by one call at a time, reused in order of release.
///
/// Its own small pool rather than postgres-nio's `PostgresClient`: in the exact-retry tests
/// (a connection cut mid-query), calls leasing from `PostgresClient` 1.33.2 were seen here
/// waiting forever with no connection open; and `PostgresClient` queues calls for up to
/// 60 s while it cannot connect, where this pool reports the failure to the call, which
/// retries a few times with a backoff and then fails with `StorageError.Kind.connection`.
/// A connection the server or the network closed is dropped when it comes back or when it
/// is found closed while idle. A call waiting for a connection waits in order of arrival;
/// cancelling its task does not take it out of the queue.
final class PostgresPool: Sendable {
    /// What a caller gets: an idle connection, or the right to open one.
    private enum Grant {
        case connection(PostgresConnection)
        case connect(id: Int)
    }

    private struct State {
        var idle: [PostgresConnection] = []
        /// Connections open, being opened, or leased.
        var open = 0
        var waiters: [CheckedContinuation<Grant, any Error>] = []
        var closed = false
        var nextID = 0
        /// Connections opened so far.
        var opened = 0

        /// An idle connection still open, or the right to open one, or `nil` when the pool
        /// is at its maximum.
        mutating func grant(maximum: Int) -> Grant? {
            while let connection = idle.popLast() {
                if !connection.isClosed { return .connection(connection) }
                open -= 1
            }
            guard open < maximum else { return nil }
            open += 1
            nextID += 1
            return .connect(id: nextID)
        }
    }

    private let configuration: PostgresConnection.Configuration
    private let maximum: Int
    private let logger: Logger
    private let state = Mutex(State())

    init(configuration: PostgresConnection.Configuration, maximum: Int, logger: Logger) {
        self.configuration = configuration
        self.maximum = maximum
        self.logger = logger
    }

    /// How many connections were opened so far.
    var connectionsOpened: Int { state.withLock { $0.opened } }

    /// Runs `body` on a leased connection and returns the connection afterwards.
    /// - Throws: what opening a connection threw (a driver error), `StorageError.Kind.closed`
    ///   once the pool is closed, or what `body` threw.
    func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func lease() async throws -> PostgresConnection {
        let immediate = try state.withLock { state -> Grant? in
            guard !state.closed else { throw PostgresBackend.closedError("lease") }
            return state.grant(maximum: maximum)
        }
        let grant: Grant
        if let immediate {
            grant = immediate
        } else {
            grant = try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<Grant, any Error>? in
                    if state.closed { return .failure(PostgresBackend.closedError("lease")) }
                    if let grant = state.grant(maximum: maximum) { return .success(grant) }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
        switch grant {
        case .connection(let connection):
            return connection
        case .connect(let id):
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
                state.withLock { $0.opened += 1 }
                return connection
            } catch {
                slotFreed()
                throw error
            }
        }
    }

    /// Takes a connection back: to the first waiter, or idle; a closed one is dropped, and
    /// its place goes to the first waiter, which opens a new one.
    private func release(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return slotFreed() }
        let (waiter, closing) = state.withLock { state -> (CheckedContinuation<Grant, any Error>?, Bool) in
            if state.closed {
                state.open -= 1
                return (nil, true)
            }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
            state.idle.append(connection)
            return (nil, false)
        }
        if closing { close(connection) }
        waiter?.resume(returning: .connection(connection))
    }

    /// A connection slot came free (its connection closed or could not be opened).
    private func slotFreed() {
        let waiter = state.withLock { state -> (CheckedContinuation<Grant, any Error>, Grant)? in
            state.open -= 1
            guard !state.closed, !state.waiters.isEmpty, let grant = state.grant(maximum: maximum) else { return nil }
            return (state.waiters.removeFirst(), grant)
        }
        if let (continuation, grant) = waiter { continuation.resume(returning: grant) }
    }

    /// Closes `connection` without waiting, keeping it alive until its channel closed:
    /// postgres-nio asserts (in debug builds) that a connection is closed when it is freed,
    /// and a pool that dropped it right after asking would free it first.
    private func close(_ connection: PostgresConnection) {
        connection.close().whenComplete { [logger] result in
            withExtendedLifetime(connection) {}
            if case .failure(let error) = result {
                logger.debug("closing a PostgreSQL connection failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// ``close()`` without waiting for the connections to close, for a backend released
    /// without closing it.
    func shutDown() {
        for connection in closeAndTakeIdle() { close(connection) }
    }

    /// Refuses new leases, fails the waiting ones, closes the idle connections; connections
    /// leased now are closed when they come back.
    func close() async {
        for connection in closeAndTakeIdle() {
            do {
                try await connection.close()
            } catch {
                logger.debug("closing a PostgreSQL connection failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func closeAndTakeIdle() -> [PostgresConnection] {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.resume(throwing: PostgresBackend.closedError("lease")) }
        return idle
    }
}
#endif
