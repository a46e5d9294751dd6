#if Postgres
import Logging
import PostgresNIO
import SessionStoreCore
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
/// is found closed while idle.
///
/// A call waiting for a connection waits in order of arrival. It fails with
/// `StorageError.Kind.poolExhausted` once no connection at all came free for `waitTimeout`
/// (a queue that keeps moving waits longer), and leaves the queue at once, with
/// `CancellationError`, when its task is cancelled.
final class PostgresPool: Sendable {
    /// What a caller gets: an idle connection, or the right to open one.
    private enum Grant {
        case connection(PostgresConnection)
        case connect(id: Int)
    }

    /// A call waiting in line, with the timer that fails it once the pool stopped moving.
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var idle: [PostgresConnection] = []
        /// Connections open, being opened, or leased.
        var open = 0
        var waiters: [Waiter] = []
        var closed = false
        var nextID = 0
        var nextWaiterID: UInt64 = 0
        /// Connections opened so far.
        var opened = 0
        /// When a connection last came free (or a slot to open one).
        var lastProgress = ContinuousClock.now

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

        /// Takes waiter `id` out of the queue; `nil` when it is no longer there.
        mutating func remove(_ id: UInt64) -> Waiter? {
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index)
        }
    }

    let hosts: PostgresHostSet
    private let maximum: Int
    private let waitTimeout: Duration
    private let logger: Logger
    private let state = Mutex(State())
    /// Where the wait timers run.
    private let timerLoop: any EventLoop

    init(hosts: PostgresHostSet, maximum: Int, waitTimeout: Duration, logger: Logger) {
        self.hosts = hosts
        self.maximum = maximum
        self.waitTimeout = waitTimeout
        self.logger = logger
        timerLoop = PostgresConnection.defaultEventLoopGroup.any()
    }

    /// How many connections were opened so far.
    var connectionsOpened: Int { state.withLock { $0.opened } }
    /// How many calls wait for a connection now.
    var waiting: Int { state.withLock { $0.waiters.count } }
    /// How many wait timers are armed now (one per waiting call at most).
    var armedTimers: Int { state.withLock { state in state.waiters.count { $0.timer != nil } } }
    /// Connections open, being opened or leased now.
    var openConnections: Int { state.withLock { $0.open } }

    /// Runs `body` on a leased connection and returns the connection afterwards.
    /// - Throws: what opening a connection threw (a driver error), `StorageError.Kind.closed`
    ///   once the pool is closed, `.poolExhausted` when no connection came free in time,
    ///   `CancellationError` when the task was cancelled while waiting, or what `body` threw.
    func withConnection<T>(
        operation: String, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await lease(operation: operation)
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func lease(operation: String) async throws -> PostgresConnection {
        let immediate = try state.withLock { state -> Grant? in
            guard !state.closed else { throw PostgresBackend.closedError(operation) }
            return state.grant(maximum: maximum)
        }
        let grant = if let immediate { immediate } else { try await wait(operation: operation) }
        switch grant {
        case .connection(let connection):
            return connection
        case .connect(let id):
            do {
                let connection = try await hosts.connect(id: id)
                state.withLock { $0.opened += 1 }
                return connection
            } catch {
                slotFreed()
                throw error
            }
        }
    }

    /// Queues the call until a connection (or the right to open one) is handed to it.
    private func wait(operation: String) async throws -> Grant {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let ready = state.withLock { state -> Result<Grant, any Error>? in
                    if state.closed { return .failure(PostgresBackend.closedError(operation)) }
                    if let grant = state.grant(maximum: maximum) { return .success(grant) }
                    // The flag is set before `onCancel` runs, which takes this lock: a waiter
                    // is either refused here or found there.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    // Armed under the lock, so a waiter is never seen in the queue without its
                    // timer (the timer takes this lock when it fires, on its event loop).
                    let timer = scheduleTimer(for: id, after: waitTimeout, operation: operation)
                    state.waiters.append(Waiter(id: id, continuation: continuation, timer: timer))
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            if let waiter = state.withLock({ $0.remove(id) }) {
                waiter.timer?.cancel()
                waiter.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// A timer that fires for waiter `id` after `delay`.
    private func scheduleTimer(for id: UInt64, after delay: Duration, operation: String) -> Scheduled<Void> {
        timerLoop.scheduleTask(in: delay.timeAmount) { [weak self] () -> Void in
            guard let self else { return } // released: no call waits on it any more
            timerFired(for: id, operation: operation)
        }
    }

    /// Arms waiter `id`'s timer again to fire after `delay`, unless the waiter left meanwhile.
    private func armTimer(for id: UInt64, after delay: Duration, operation: String) {
        let timer = scheduleTimer(for: id, after: delay, operation: operation)
        let stillWaiting = state.withLock { state -> Bool in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
            state.waiters[index].timer = timer
            return true
        }
        if !stillWaiting { timer.cancel() }
    }

    /// Fails waiter `id` with `.poolExhausted` when no connection came free for the wait
    /// timeout; while the pool moves, waits on for the rest of the timeout after its last
    /// progress.
    private func timerFired(for id: UInt64, operation: String) {
        enum Next { case gone, waitMore(Duration), fail(Waiter) }
        let next = state.withLock { state -> Next in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return .gone }
            let quiet = ContinuousClock.now - state.lastProgress
            if quiet < waitTimeout { return .waitMore(waitTimeout - quiet) }
            return .fail(state.waiters.remove(at: index))
        }
        switch next {
        case .gone:
            return
        case .waitMore(let remaining):
            armTimer(for: id, after: remaining, operation: operation)
        case .fail(let waiter):
            waiter.continuation.resume(throwing: StorageError(
                kind: .poolExhausted, engine: "postgres", operation: operation,
                message: "no pooled connection (of \(maximum)) came free for \(waitTimeout): "
                    + "every one is held by a call; raise pool or pool_timeout"))
        }
    }

    /// Takes a connection back: to the first waiter, or idle; a closed one is dropped, and
    /// its place goes to the first waiter, which opens a new one.
    private func release(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return slotFreed() }
        let (waiter, closing) = state.withLock { state -> (Waiter?, Bool) in
            state.lastProgress = .now
            if state.closed {
                state.open -= 1
                return (nil, true)
            }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
            state.idle.append(connection)
            return (nil, false)
        }
        if closing { close(connection) }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .connection(connection))
        }
    }

    /// A connection slot came free (its connection closed or could not be opened).
    private func slotFreed() {
        let served = state.withLock { state -> (Waiter, Grant)? in
            state.open -= 1
            state.lastProgress = .now
            guard !state.closed, !state.waiters.isEmpty, let grant = state.grant(maximum: maximum) else { return nil }
            return (state.waiters.removeFirst(), grant)
        }
        if let (waiter, grant) = served {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: grant)
        }
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
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: PostgresBackend.closedError("lease"))
        }
        return idle
    }
}
#endif
