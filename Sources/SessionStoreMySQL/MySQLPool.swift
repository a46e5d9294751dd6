import Logging
import SessionStoreCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a pooled call may do again when its connection is lost mid-call.
enum MySQLRetry: Sendable {
    /// Run it again on a new connection: a read, or a write whose body decides exactly what
    /// happened (it is told the attempt follows a lost connection).
    case again
    /// Never again once sent: fail with ``StorageError/Kind/connection``, saying the write
    /// may or may not have been committed.
    case never
}

/// What one call's body is told about its attempt.
struct MySQLAttempt: Sendable {
    /// A previous attempt of this call lost its connection after sending something, so a
    /// write it sent may have been committed.
    var followsLostConnection: Bool
}

/// Live threads and connections of one pool: they must both reach zero once the pool is
/// closed or its backend released.
final class MySQLResources: Sendable {
    let threads = Atomic(0)
    let connections = Atomic(0)
    /// Connections opened so far (for tests of reuse and reconnect).
    let opened = Atomic(0)
    /// Connections discarded because they were lost or no longer answered.
    let lost = Atomic(0)
    /// Calls run again on another connection after theirs was lost or its node had no quorum.
    let failovers = Atomic(0)
    /// Calls run again from their start after a deadlock (a Galera abort too) or lock wait timeout.
    let lockConflictRetries = Atomic(0)
    /// Pool-wait timers still running (each ends when its waiter is served or times out).
    let timers = Atomic(0)
    /// Loads sent by their caller, for the slot's thread to read the reply (no job hand-off).
    let callerSentLoads = Atomic(0)
}

/// The connection pool: owns every connection's whole life and the thread it runs on.
///
/// A slot is a worker thread with at most one connection that only that thread touches. The
/// pool opens the connection (options checked), pings it after it idled, replaces it when
/// it is lost, prepares statements again when the server forgot them, and runs a call again
/// after a deadlock, a lock wait timeout or, for ``MySQLRetry/again``, a lost connection.
/// A call travels one way: caller → slot's thread → Connector/C, and the result comes back
/// through one continuation.
///
/// A load (``query(_:_:_:columns:)``) on a connection that is open and recently used is not
/// handed to the slot's thread: the caller sends it without blocking, and the slot's thread,
/// asleep on the connection's socket, reads the reply and resumes the caller (one wake-up).
/// Anything that may block (opening, pinging, a retry, a failure) goes to the slot's thread
/// as a job, as any other call does.
final class MySQLPool: Sendable {
    private final class Slot: @unchecked Sendable { // `connection` is only touched on `worker`'s thread
        var worker: MySQLWorker!
        var connection: MySQLConnection?
        /// The index in ``MySQLConfiguration/hosts`` of `connection`'s server.
        var host = 0
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Slot, any Error>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var free: [Slot] = []
        var created = 0
        var inUse = 0
        var waiters: [Waiter] = []
        /// When a slot was last released: the pool is moving while this is recent.
        var lastRelease = ContinuousClock.now
        var closed = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let configuration: MySQLConfiguration
    let resources = MySQLResources()
    /// Which hosts are usable; shared by every slot.
    let hosts: MySQLHostSet
    /// Whether connections check that their node is in a cluster's primary component (on
    /// opening, and after errors a node without quorum gives): with several hosts or
    /// causal reads.
    private var checksNodeState: Bool { hosts.isCluster || configuration.usesCausalReads }
    private let logger: Logger
    private let state = Mutex(State())
    /// One worker at a time polls for its next job (see ``MySQLWorker/spin``).
    private let spinners = MySQLSpinners(limit: 1)
    private let nextWaiterID = Atomic<UInt64>(0)

    /// Deadlocks a call retries, from its start, before it fails with `.busy`.
    ///
    /// `ER_LOCK_DEADLOCK` (1213) means the server rolled this call's whole transaction back
    /// because another one won: an InnoDB deadlock victim, or on Galera a certification
    /// failure or a brute-force abort by a replicated write set, which surfaces at any
    /// statement (a read, an `UPDATE`, a row read while fetching) and at `COMMIT`, through a
    /// row lock too, and whichever URL reached the node. Nothing of the call was applied,
    /// and each abort means another transaction committed, so retrying always makes
    /// progress: the budget is large (with backoff up to 32 ms, about 5 s of aborts in a
    /// row), so a save never fails because other requests saved.
    static let deadlockRetries = 200
    /// Lock wait timeouts (1205) a call retries before it fails with `.busy`: each one has
    /// already waited `innodb_lock_wait_timeout`.
    static let lockWaitRetries = 8

    init(configuration: MySQLConfiguration, logger: Logger) {
        precondition(configuration.poolSize > 0, "pool size must be positive")
        self.configuration = configuration
        self.logger = logger
        hosts = MySQLHostSet(configuration)
    }

    /// Runs one prepared query that reads rows (a load) and returns them.
    ///
    /// On a connection that is open and was used within the health-check interval, with the
    /// statement already prepared, the caller sends the query itself without blocking and
    /// the slot's thread finishes it from its socket: no job hand-off. Otherwise, and after
    /// any failure, the slot's thread runs it as ``run(_:retry:_:)`` does (with
    /// ``MySQLRetry/again``), the failure counting as its first attempt's.
    /// - Throws: ``StorageError`` as ``run(_:retry:_:)``.
    func query(
        _ operation: String, _ sql: String, _ parameters: [MySQLValue], columns: [MySQLColumnKind]
    ) async throws -> [[MySQLResultValue]] {
        let slot = try await acquire(operation: operation)
        let body: @Sendable (MySQLConnection, MySQLAttempt) throws -> [[MySQLResultValue]] = { connection, _ in
            try connection.statement(sql).query(parameters, columns: columns)
        }
        #if os(Linux)
        guard let connection = readyWithoutBlocking(slot), let statement = connection.prepared(sql),
              let socket = connection.socket else {
            return try await runOnWorker(slot, operation, retry: .again, after: nil, body)
        }
        let worker = slot.worker!
        resources.callerSentLoads.add(1, ordering: .relaxed)
        spinners.inFlight.add(1, ordering: .relaxed)
        let outcome = await withCheckedContinuation { continuation in
            let pending = MySQLPendingQuery(
                connection, statement, parameters, columns: columns, socket: socket, continuation: continuation)
            // Only writes the request (non-blocking): fine on Swift's cooperative pool.
            let events = pending.start()
            if events == 0 {
                pending.finish()
            } else {
                worker.wait(pending, for: events)
            }
        }
        spinners.inFlight.subtract(1, ordering: .relaxed)
        switch outcome {
        case .success(let rows):
            connection.lastUsed = .now
            release(slot)
            return rows
        case .failure(let error):
            return try await runOnWorker(slot, operation, retry: .again, after: error, body)
        }
        #else
        return try await runOnWorker(slot, operation, retry: .again, after: nil, body)
        #endif
    }

    /// The slot's connection when it can serve a call at once: open, not broken, used within
    /// the health-check interval and on the host it should be on; `nil` when only the slot's
    /// thread can tell (it may block).
    private func readyWithoutBlocking(_ slot: Slot) -> MySQLConnection? {
        guard let connection = slot.connection, !connection.broken,
              ContinuousClock.now - connection.lastUsed < configuration.healthCheckInterval else { return nil }
        if slot.host > 0, hosts.order == .ordered, let preferred = hosts.preferred(), preferred < slot.host { return nil }
        return connection
    }

    /// Runs `body` on a pooled connection, on that connection's own thread.
    ///
    /// - Throws: ``StorageError``: `.closed` after ``close()``, `.poolExhausted` when no
    ///   connection was free within the wait timeout, `.connection` when none could be made or
    ///   it was lost (see `retry`), `.busy` after repeated lock conflicts, or what `body` threw.
    func run<T: Sendable>(
        _ operation: String, retry: MySQLRetry,
        _ body: @escaping @Sendable (MySQLConnection, MySQLAttempt) throws -> T
    ) async throws -> T {
        let slot = try await acquire(operation: operation)
        return try await runOnWorker(slot, operation, retry: retry, after: nil, body)
    }

    /// Runs `body` on `slot`'s thread, then releases the slot; `failure` is a first attempt's,
    /// made on the slot's connection before.
    private func runOnWorker<T: Sendable>(
        _ slot: Slot, _ operation: String, retry: MySQLRetry, after failure: MySQLClientError?,
        _ body: @escaping @Sendable (MySQLConnection, MySQLAttempt) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            slot.worker.submit { [self] in
                let result = Result { try execute(slot, operation: operation, retry: retry, after: failure, body) }
                release(slot)
                continuation.resume(with: result)
            }
        }
    }

    /// The retry loop, on the slot's thread; `failure`, when given, is taken as the first
    /// attempt's outcome on the slot's current connection.
    private func execute<T>(
        _ slot: Slot, operation: String, retry: MySQLRetry, after failure: MySQLClientError?,
        _ body: (MySQLConnection, MySQLAttempt) throws -> T
    ) throws -> T {
        var earlierFailure = failure
        var attempt = MySQLAttempt(followsLostConnection: false)
        var reprepared = false
        var deadlocks = 0
        var lockWaits = 0
        // One more attempt per other host, so a call cut off by a failed node reaches each.
        var failoversLeft = max(1, hosts.hosts.count)
        while true {
            let connection: MySQLConnection
            do {
                // An earlier failure is judged on the connection it happened on, as it is.
                if earlierFailure != nil, let current = slot.connection {
                    connection = current
                } else {
                    earlierFailure = nil
                    connection = try ready(slot, operation: operation)
                }
            } catch var failure {
                if attempt.followsLostConnection {
                    failure.message += " (after the connection was lost mid-call; a write sent then may or may not have been committed)"
                }
                throw failure
            }
            do {
                if let failure = earlierFailure {
                    earlierFailure = nil
                    throw failure
                }
                let result = try body(connection, attempt)
                connection.lastUsed = .now
                if connection.broken { discard(slot) }
                return result
            } catch let error as MySQLClientError {
                // A cluster node that lost quorum answers 1047, or 1180 for a write and 1205
                // for a causal read: ask the node itself.
                let unusable = error.isNodeUnusable
                    || (checksNodeState && error.mayMeanNoQuorum && !connection.isInPrimaryComponent())
                if error.isConnectionLost || unusable {
                    if unusable {
                        // A node without quorum refuses everything until it regains it.
                        hosts.markDown(slot.host, because: "no quorum (\(error.code) \(error.message))")
                    }
                    discard(slot)
                    logger.debug("MySQL connection lost; it will be replaced", metadata: [
                        "operation": "\(operation)", "code": "\(error.code)", "error": "\(error.message)",
                        "host": "\(hosts.hosts[slot.host])",
                    ])
                    // The body re-reads to tell exactly whether a write sent on the lost
                    // connection committed, so an idempotent call may go on another node.
                    if retry == .again && failoversLeft > 0 {
                        failoversLeft -= 1
                        attempt.followsLostConnection = true
                        resources.failovers.add(1, ordering: .relaxed)
                        continue
                    }
                    var failure = error.storageError(operation: operation)
                    if unusable {
                        failure.kind = .connection
                        failure.message = "cluster node \(hosts.hosts[slot.host]) has no quorum (not part of a primary "
                            + "component): \(error.message)"
                        if hosts.isCluster { failure.message += "; hosts: \(hosts.failureSummary())" }
                    }
                    if retry == .never {
                        failure.message += " (the write may or may not have been committed)"
                    }
                    throw failure
                }
                connection.lastUsed = .now
                if connection.broken { discard(slot) }
                let isDeadlock = error.code == MySQLErrorCode.deadlock
                if error.isLockConflict && (isDeadlock ? deadlocks < Self.deadlockRetries : lockWaits < Self.lockWaitRetries) {
                    if isDeadlock { deadlocks += 1 } else { lockWaits += 1 }
                    resources.lockConflictRetries.add(1, ordering: .relaxed)
                    // 1, 2, 4 ... 32 ms, then 32: the other transaction holds the row briefly.
                    // Jittered, so that two nodes' transactions that failed certification
                    // against each other do not collide again.
                    let base = UInt32(500 << min(deadlocks + lockWaits, 6))
                    usleep(base / 2 + UInt32.random(in: 0...base))
                    continue
                }
                if error.needsReprepare && !reprepared {
                    reprepared = true
                    connection.discardStatements()
                    continue
                }
                throw error.storageError(operation: operation)
            } catch {
                connection.lastUsed = .now
                if connection.broken { discard(slot) }
                throw error
            }
        }
    }

    /// The slot's connection, opened when missing and pinged when it idled long; with
    /// ``MySQLConfiguration/HostOrder/ordered`` hosts, moved back to the first usable host
    /// once that one answers again.
    private func ready(_ slot: Slot, operation: String) throws(StorageError) -> MySQLConnection {
        if let connection = slot.connection {
            if slot.host > 0, hosts.order == .ordered, let preferred = hosts.preferred(), preferred < slot.host {
                do {
                    let better = try open(host: preferred)
                    logger.debug("MySQL host usable again; moving a connection back", metadata: [
                        "host": "\(hosts.hosts[preferred])",
                    ])
                    slot.connection = better
                    slot.host = preferred
                    return better
                } catch {
                    // `open` marked it down (tried again later); the current connection serves.
                    logger.debug("MySQL host still unusable", metadata: [
                        "host": "\(hosts.hosts[preferred])", "code": "\(error.code)", "error": "\(error.message)",
                    ])
                }
            }
            if ContinuousClock.now - connection.lastUsed < configuration.healthCheckInterval || connection.ping() {
                return connection
            }
            logger.debug("idle MySQL connection no longer answers; replacing it")
            discard(slot)
        }
        var firstFailure: (error: MySQLClientError, host: Int)?
        for index in hosts.candidates() {
            do {
                let connection = try open(host: index)
                slot.connection = connection
                slot.host = index
                return connection
            } catch {
                // Wrong credentials, a missing database or TLS that fails are the same on
                // every host: report them at once.
                guard error.isConnectFailure || error.isConnectionLost || error.isNodeUnusable else {
                    throw describeOpenFailure(error, host: index, operation: operation)
                }
                if firstFailure == nil { firstFailure = (error, index) }
            }
        }
        guard let firstFailure else {
            throw StorageError(kind: .connection, engine: "mysql", operation: operation, message: "no host configured")
        }
        var failure = describeOpenFailure(firstFailure.error, host: firstFailure.host, operation: operation)
        if hosts.isCluster {
            failure.message = "no host of \(hosts.hosts.count) is usable: \(hosts.failureSummary())"
        }
        throw failure
    }

    /// Opens a connection to host `index`, with causal reads when configured; marks the
    /// host down when it cannot be reached and up when it can.
    private func open(host index: Int) throws(MySQLClientError) -> MySQLConnection {
        let target = configuration.aimed(at: hosts.hosts[index])
        do throws(MySQLClientError) {
            let resources = resources
            let connection = try MySQLConnection(target) {
                resources.connections.subtract(1, ordering: .relaxed)
            }
            resources.connections.add(1, ordering: .relaxed)
            resources.opened.add(1, ordering: .relaxed)
            if configuration.usesCausalReads { try connection.enableCausalReads() }
            if checksNodeState && !connection.isInPrimaryComponent() {
                throw MySQLClientError(
                    code: MySQLErrorCode.unknownCommand,
                    message: "the node is not part of a primary component (wsrep_cluster_status is not Primary)"
                )
            }
            hosts.markUp(index)
            return connection
        } catch {
            if error.isConnectFailure || error.isConnectionLost || error.isNodeUnusable {
                hosts.markDown(index, because: error.isNodeUnusable ? "no quorum (\(error.message))" : error.message)
            }
            throw error
        }
    }

    private func discard(_ slot: Slot) {
        slot.connection = nil
        resources.lost.add(1, ordering: .relaxed)
    }

    /// A connect failure with a message that names what is wrong (never the password).
    private func describeOpenFailure(_ error: MySQLClientError, host index: Int, operation: String) -> StorageError {
        var failure = error.storageError(operation: operation)
        let target = configuration.unixSocket.map { "socket \($0)" } ?? "\(hosts.hosts[index])"
        switch error.code {
        case MySQLErrorCode.accessDenied, MySQLErrorCode.accessDeniedNoPassword:
            failure.message = "wrong user name or password for user '\(configuration.user)' at \(target): \(error.message)"
        case MySQLErrorCode.databaseAccessDenied:
            failure.message = "user '\(configuration.user)' may not use database '\(configuration.database)': \(error.message)"
        case MySQLErrorCode.badDatabase:
            failure.message = "no such database '\(configuration.database)' at \(target): \(error.message)"
        case MySQLErrorCode.tls:
            failure.message = "TLS with \(target) failed (ssl_mode=\(configuration.tls.mode.rawValue)): \(error.message)"
        default:
            if failure.kind == .connection {
                failure.message = "cannot connect to MySQL server at \(target): \(error.message)"
            }
        }
        if let password = configuration.password, !password.isEmpty {
            failure.message = failure.message.replacingOccurrences(of: password, with: "***")
        }
        return failure
    }

    // MARK: - Slots

    /// A slot with its thread started.
    /// - Throws: ``StorageError`` `.other` when the thread's `epoll` set cannot be had.
    private func makeSlot(index: Int, operation: String) throws(StorageError) -> Slot {
        let slot = Slot()
        do {
            // The thread keeps the pool alive until it ends; the backend's deinit shuts it down.
            slot.worker = try MySQLWorker(
                name: "ssmysql.\(index)", spinners: spinners,
                idleWait: configuration.queryTimeout > .zero ? configuration.queryTimeout : nil, logger: logger
            ) { [self] in
                threadEnded()
            }
        } catch {
            state.withLock { state in
                state.created -= 1
                state.inUse -= 1
            }
            throw error.storageError(operation: operation)
        }
        resources.threads.add(1, ordering: .relaxed)
        return slot
    }

    private func threadEnded() {
        resources.threads.subtract(1, ordering: .relaxed)
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.created -= 1
            guard state.created == 0 else { return [] }
            defer { state.closeWaiters = [] }
            return state.closeWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Closes the slot's connection on its thread, then ends the thread.
    private func stop(_ slot: Slot) {
        slot.worker.submit { slot.connection = nil }
        slot.worker.stop()
    }

    /// Takes a free slot, creating one while fewer than the pool size exist, else waits in
    /// line until one is released.
    /// - Throws: ``StorageError`` `.poolExhausted` when no slot at all was released for the
    ///   wait timeout, `.closed` after ``close()``; `CancellationError` when the task was
    ///   cancelled while waiting.
    private func acquire(operation: String) async throws -> Slot {
        enum Outcome { case slot(Slot), create(Int), wait, closed, cancelled }
        let size = configuration.poolSize
        let id = nextWaiterID.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Slot, any Error>) in
                let outcome: Outcome = state.withLock { state in
                    if state.closed { return .closed }
                    if let slot = state.free.popLast() {
                        state.inUse += 1
                        return .slot(slot)
                    }
                    if state.created < size {
                        state.created += 1
                        state.inUse += 1
                        return .create(state.created)
                    }
                    // The flag is set before `onCancel` runs, which takes this lock: a waiter
                    // is either refused here or found there.
                    if Task.isCancelled { return .cancelled }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch outcome {
                case .slot(let slot):
                    continuation.resume(returning: slot)
                case .create(let index):
                    continuation.resume(with: Result { () throws(StorageError) -> Slot in
                        try makeSlot(index: index, operation: operation)
                    })
                case .closed:
                    continuation.resume(throwing: MySQLBackend.closedError(operation))
                case .cancelled:
                    continuation.resume(throwing: CancellationError())
                case .wait:
                    startTimer(for: id, operation: operation)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                // Not queued (yet, or any more): the queueing sees the flag, or it was served.
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            if let waiter {
                waiter.timer?.cancel()
                waiter.continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Fails waiter `id` once no slot was released for the wait timeout; cancelled when the
    /// waiter is served, cancelled or the pool closes.
    private func startTimer(for id: UInt64, operation: String) {
        let waitTimeout = configuration.poolWaitTimeout
        let resources = resources
        resources.timers.add(1, ordering: .relaxed)
        let timer = Task { [weak self] in
            defer { resources.timers.subtract(1, ordering: .relaxed) }
            var deadline = ContinuousClock.now + waitTimeout
            while true {
                do {
                    try await Task.sleep(until: deadline)
                } catch {
                    return // cancelled: the waiter got a slot, or the pool closed
                }
                guard let self else { return }
                // A slot released meanwhile means the pool is moving: keep waiting in line.
                let progress = state.withLock { $0.lastRelease }
                if progress + waitTimeout > ContinuousClock.now {
                    deadline = progress + waitTimeout
                    continue
                }
                timeOut(id, operation: operation, waited: waitTimeout)
                return
            }
        }
        let stillWaiting = state.withLock { state -> Bool in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
            state.waiters[index].timer = timer
            return true
        }
        if !stillWaiting { timer.cancel() }
    }

    private func timeOut(_ id: UInt64, operation: String, waited: Duration) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: StorageError(
            kind: .poolExhausted, engine: "mysql", operation: operation,
            message: "no pooled connection (of \(configuration.poolSize)) came free for \(waited): "
                + "every one is stuck on a call; raise pool or pool_timeout"
        ))
    }

    /// Returns a slot: to the first waiter, to the free list, or to shutdown when closed.
    private func release(_ slot: Slot) {
        enum Next { case handOver(Waiter), keep, stop }
        let next: Next = state.withLock { state in
            state.lastRelease = .now
            if state.closed {
                state.inUse -= 1
                return .stop
            }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst()) }
            state.inUse -= 1
            state.free.append(slot)
            return .keep
        }
        switch next {
        case .handOver(let waiter):
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: slot)
        case .keep:
            break
        case .stop:
            stop(slot)
        }
    }

    /// Refuses further calls, fails waiters, lets calls in flight finish, then closes every
    /// connection and ends every thread; returns when the last thread has ended.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.created == 0 { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            shutDown()
            if done { continuation.resume() }
        }
    }

    /// Refuses further calls, fails waiters and stops the free slots without waiting; slots
    /// in use stop when released. Called by the backend's `deinit` too.
    func shutDown() {
        let (free, waiters) = state.withLock { state in
            state.closed = true
            defer { state.free = []; state.waiters = [] }
            return (state.free, state.waiters)
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: MySQLBackend.closedError("close"))
        }
        for slot in free { stop(slot) }
    }

    /// How many slots (threads, and at most as many connections) exist.
    var createdCount: Int { state.withLock { $0.created } }
    /// How many slots are lent out to calls.
    var inUseCount: Int { state.withLock { $0.inUse } }
}
