#if Postgres
import PostgresNIO
import SessionStoreCore
import Synchronization

/// A statement that got no answer within the backend's `query_timeout`; its connection was
/// closed.
struct PostgresQueryTimeout: Error {
    let timeout: Duration
}

/// A statement not sent because its connection had closed (the server or the network
/// ended it since the connection was leased). Nothing was sent, so the call may run again.
struct PostgresConnectionClosed: Error {}

/// The one outcome of a statement raced against its deadline: the first to finish resumes
/// the waiting call, the other is ignored. As the deadline's handler on the connection's
/// event loop (a callback NIO keeps inline, with no allocation), it fails the call with a
/// `PostgresQueryTimeout` and closes the connection that stopped answering.
final class PostgresQueryOutcome: Sendable, NIOScheduledCallbackHandler {
    /// Unchecked: this class resumes it at most once (whoever takes it first).
    private let continuation: Mutex<UnsafeContinuation<[PostgresRow], any Error>?>
    private let connection: PostgresConnection
    private let timeout: Duration

    init(_ continuation: UnsafeContinuation<[PostgresRow], any Error>, connection: PostgresConnection, timeout: Duration) {
        self.continuation = Mutex(continuation)
        self.connection = connection
        self.timeout = timeout
    }

    /// Resumes the call with `result` unless it was resumed already; `true` when this did.
    @discardableResult
    func finish(_ result: Result<[PostgresRow], any Error>) -> Bool {
        guard let continuation = continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(with: result)
        return true
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        guard finish(.failure(PostgresQueryTimeout(timeout: timeout))) else { return }
        connection.close().whenFailure { [connection] error in
            connection.logger.debug("closing a PostgreSQL connection that timed out failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Runs a task's jobs on one NIO event loop, so a statement's task runs where its
/// connection's I/O happens (see `PostgresBackend.bounded`).
final class PostgresLoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One executor per event loop of postgres-nio's default group (where the backend's
    /// connections run), made once.
    private static let shared: [ObjectIdentifier: PostgresLoopExecutor] = {
        var executors: [ObjectIdentifier: PostgresLoopExecutor] = [:]
        for loop in PostgresConnection.defaultEventLoopGroup.makeIterator() {
            executors[ObjectIdentifier(loop)] = PostgresLoopExecutor(loop)
        }
        return executors
    }()
    /// Executors of other loops, kept for the process's life as the shared ones are.
    private static let others = Mutex<[ObjectIdentifier: PostgresLoopExecutor]>([:])

    /// The executor of `loop`.
    static func executor(for loop: any EventLoop) -> PostgresLoopExecutor {
        if let executor = shared[ObjectIdentifier(loop)] { return executor }
        return others.withLock { others in
            if let executor = others[ObjectIdentifier(loop)] { return executor }
            let executor = PostgresLoopExecutor(loop)
            others[ObjectIdentifier(loop)] = executor
            return executor
        }
    }
}

/// A value bound to a statement's `$n`.
enum PostgresValue: Sendable {
    case null
    case text(String)
    case int(Int64)
    case bytes([UInt8])
}

extension PostgresBackend {
    /// The client-side limit on one statement for the calls of the current task (the
    /// backend's `query_timeout`); `nil` for none.
    @TaskLocal static var queryTimeout: Duration?

    /// Runs `sql` with `values` bound and returns its rows. A driver or server error is
    /// thrown as a `PostgresStatementError` naming `sql`.
    ///
    /// Bounded by ``queryTimeout``, because postgres-nio 1.33.2 can leave a query waiting
    /// forever: it sets no client-side timeout, a query does not end when its task is
    /// cancelled, and a query written to a channel that closed meanwhile (the server went
    /// away between two statements) is dropped without its promise ever being completed.
    /// So the query runs in a task of its own, and the call waits for whichever comes first,
    /// its answer or the deadline; at the deadline the connection is closed (so the pool
    /// drops it and no late answer is read as another statement's) and the error is a
    /// `PostgresQueryTimeout`. A connection already closed is refused before anything is sent.
    static func rows(_ connection: PostgresConnection, _ sql: String, _ values: [PostgresValue]) async throws -> [PostgresRow] {
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings(values))
        return try await bounded(connection, sql) {
            try await connection.query(query, logger: silent).collect()
        }
    }

    /// Runs `keyed`, one of ``PostgresStatements``' keyed statements (a text fixed for the
    /// backend's life), as a statement postgres-nio prepares once per connection and then
    /// only binds and executes, and returns its rows. The server then skips parsing and
    /// planning it on every call, which an unnamed statement (``rows(_:_:_:)``) pays each
    /// time: measured as the difference between the store and postgres-nio's own prepared
    /// query in the benchmark (`Performance`). Bounded by ``queryTimeout`` as `rows` is.
    static func preparedRows(
        _ connection: PostgresConnection, _ keyed: PostgresKeyedStatement, _ values: [PostgresValue]
    ) async throws -> [PostgresRow] {
        let statement = PostgresNamedStatement(bindings: bindings(values))
        do {
            return try await bounded(connection, keyed.sql) {
                try await PostgresNamedStatement.$current.withValue(keyed) {
                    var rows: [PostgresRow] = []
                    for try await row in try await connection.execute(statement, logger: silent) { rows.append(row) }
                    return rows
                }
            }
        } catch let failed as PostgresStatementError {
            // postgres-nio keeps a failed preparation (a lock wait cut by statement_timeout, a
            // table missing for a moment) for the connection's life and answers every later
            // execution of that statement with the same error: such a connection is closed,
            // so the pool replaces it and the statement is prepared afresh. A serialization
            // failure or deadlock (class 40) is the execution's, and the call retries on the
            // same connection after its ROLLBACK.
            if !connection.isClosed, !failed.isTransactionRollback {
                do {
                    try await connection.close()
                } catch let closing {
                    connection.logger.debug("closing a PostgreSQL connection after a failed statement failed", metadata: ["error": "\(closing)"])
                }
            }
            throw failed
        }
    }

    private static func bindings(_ values: [PostgresValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: bindings.appendNull()
            case .text(let text): bindings.append(text)
            case .int(let number): bindings.append(number)
            case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        return bindings
    }

    /// Runs `execute` on `connection` within ``queryTimeout``; its errors and a timeout are
    /// thrown as a `PostgresStatementError` naming `sql`.
    ///
    /// The statement runs in a task of its own (so the caller's cancellation never cuts a
    /// statement in the middle, which could leave a write's outcome unknown) that prefers the
    /// connection's event loop as its executor: the write to the channel, the answer's
    /// continuation and the rows' stream then stay on the event loop's thread, and the call
    /// pays one hop there and one back, as postgres-nio's own `execute` awaited from a task
    /// does. On that thread the connection is checked to be open right before the statement
    /// is written, so the write cannot reach a channel that closed meanwhile (whose query
    /// would never be answered), and the deadline is armed and disarmed there without waking
    /// the loop.
    private static func bounded(
        _ connection: PostgresConnection, _ sql: String,
        _ execute: @escaping @Sendable () async throws -> [PostgresRow]
    ) async throws -> [PostgresRow] {
        guard !connection.isClosed else {
            throw PostgresStatementError(underlying: PostgresConnectionClosed(), statement: sql)
        }
        let timeout = queryTimeout
        do {
            return try await withUnsafeThrowingContinuation { continuation in
                let outcome = PostgresQueryOutcome(continuation, connection: connection, timeout: timeout ?? .zero)
                Task.detached(executorPreference: PostgresLoopExecutor.executor(for: connection.eventLoop)) {
                    guard !connection.isClosed else {
                        outcome.finish(.failure(PostgresConnectionClosed()))
                        return
                    }
                    do {
                        let deadline = try timeout.map { try connection.eventLoop.scheduleCallback(in: $0.timeAmount, handler: outcome) }
                        let result = await settle(execute)
                        deadline?.cancel()
                        outcome.finish(result)
                    } catch {
                        outcome.finish(.failure(error))
                    }
                }
            }
        } catch {
            throw PostgresStatementError(underlying: error, statement: sql)
        }
    }

    /// Runs a keyed statement that returns one row per row it wrote (`RETURNING 1`) and
    /// returns how many it wrote.
    static func count(_ connection: PostgresConnection, _ keyed: PostgresKeyedStatement, _ values: [PostgresValue]) async throws -> Int {
        try await preparedRows(connection, keyed, values).count
    }

    /// Runs a keyed `SELECT data, version, created_at, expires_at` and returns its row.
    static func row(_ connection: PostgresConnection, _ keyed: PostgresKeyedStatement, _ values: [PostgresValue]) async throws -> SessionRecord? {
        guard let row = try await preparedRows(connection, keyed, values).first else { return nil }
        return try record(row, keyed.sql)
    }

    /// The record in `row` (`data, version, created_at, expires_at, owner, details, last_seen`).
    static func record(_ row: PostgresRow, _ sql: String) throws -> SessionRecord {
        do {
            let (data, version, createdAt, expiresAt, owner, details, lastSeen) = try row.decode(
                (ByteBuffer, Int64, Int64, Int64, String?, ByteBuffer?, Int64?).self)
            return SessionRecord(
                data: Array(data.readableBytesView), version: version, createdAt: createdAt, expiresAt: expiresAt,
                owner: owner, details: details.map { Array($0.readableBytesView) }, lastSeen: lastSeen)
        } catch {
            throw PostgresStatementError(underlying: error, statement: sql)
        }
    }

    /// Runs a statement without values (DDL, transaction control).
    static func run(_ connection: PostgresConnection, _ sql: String) async throws {
        _ = try await rows(connection, sql, [])
    }

    /// Runs `body` between `BEGIN` and `COMMIT`; on an error, rolls back and rethrows it
    /// (a failed rollback, when the connection is gone, is logged at debug: the server
    /// rolls back a transaction whose connection ends).
    static func transaction<T>(_ connection: PostgresConnection, _ body: () async throws -> T) async throws -> T {
        try await run(connection, "BEGIN")
        let value: T
        do {
            value = try await body()
        } catch {
            do {
                try await run(connection, "ROLLBACK")
            } catch let rollback {
                connection.logger.debug("PostgreSQL ROLLBACK failed after an error", metadata: ["error": "\(rollback)"])
            }
            throw error
        }
        try await run(connection, "COMMIT")
        return value
    }
}

/// A statement postgres-nio prepares once per connection. postgres-nio takes a prepared
/// statement's name and text from static properties, but the backend's texts depend on its
/// table, so both come from a task-local bound around each execution (postgres-nio reads
/// them when it sends the statement, within that scope).
struct PostgresNamedStatement: PostgresPreparedStatement {
    typealias Row = PostgresRow
    @TaskLocal static var current = PostgresKeyedStatement("")
    static var sql: String { current.sql }
    static var name: String { current.name }

    let bindings: PostgresBindings

    func makeBindings() -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// Counts the calls in flight so ``PostgresBackend/close()`` can wait for them, and
/// refuses new ones once closing began.
final class PostgresCallGate: Sendable {
    private struct State {
        var inFlight = 0
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    var isClosed: Bool { state.withLock { $0.closed } }

    /// `false` once closed.
    func enter() -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.inFlight += 1
            return true
        }
    }

    func leave() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.inFlight -= 1
            guard state.inFlight == 0, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Closes the gate and returns once no call is in flight; `false` when it was closed already.
    func close() async -> Bool {
        let first = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.closed = true
            return true
        }
        guard first else { return false }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                guard state.inFlight > 0 else { return true }
                state.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
        return true
    }
}
#endif
