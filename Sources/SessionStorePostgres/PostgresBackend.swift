#if Postgres
public import Logging
import PostgresNIO
public import SessionStoreCore
import Synchronization

/// Sessions in a PostgreSQL table, through postgres-nio: non-blocking on NIO's event
/// loops, with no C client and no thread per connection.
///
/// The backend maps each operation to SQL; `PostgresPool` owns the connections (at most
/// ``PostgresConfiguration/poolSize``), opens them on demand and replaces those the server
/// closed. Every statement binds its values (`$n`) and is sent with the extended protocol
/// in one round trip.
///
/// Expiry follows the app's clock: every call passes its own `now`, and the server's
/// `now()` is never used.
///
/// When a connection breaks mid-call (the server restarted, the network dropped it), the
/// call runs again on another connection only when what happened can be told exactly:
/// loads; `retire` (it counts the row it matched, changed or not); the lease; inserts,
/// updates, touches, deletes and merges, whose retry first reads the row to see whether the
/// lost attempt committed (an insert finds its own row, an update its version and data, a
/// delete the row gone from the version it read). When the row changed again since, so that
/// this cannot be told, and for cleanup batches, the call fails with
/// `StorageError.Kind.connection` saying the write may or may not have been committed.
/// Serialization failures and deadlocks (SQLSTATE 40001, 40P01), which the server rolled
/// back, are run again a few times before `StorageError.Kind.busy`.
///
/// Every call is bounded on the client side, since postgres-nio sets no query timeout:
/// waiting for a pooled connection by ``PostgresConfiguration/poolWaitTimeout``, connecting
/// by ``PostgresConfiguration/connectTimeout``, each statement by
/// ``PostgresConfiguration/queryTimeout`` (the connection is then closed and the call fails
/// with `StorageError.Kind.connection`, not run again).
public final class PostgresBackend: StorageBackend {
    /// The configuration the backend was opened with.
    public let configuration: PostgresConfiguration
    let statements: PostgresStatements
    let pool: PostgresPool
    private let logger: Logger
    /// The client-side limit on one statement (`query_timeout`); `nil` for none.
    private let queryTimeout: Duration?
    private let gate = PostgresCallGate()
    private let lost = Atomic(0)

    /// Optimistic attempts (read, then a write at the version read) a merge makes before it
    /// takes the row lock.
    static let optimisticMergeAttempts = 2
    /// How many times one call runs again after its connection was lost.
    static let lostConnectionRetries = 8
    /// How many times a call tries again to open a connection that could not be opened.
    static let connectRetries = 8
    /// How many times a statement the server rolled back (serialization failure,
    /// deadlock) runs again.
    static let rolledBackRetries = 5
    /// postgres-nio logs queries with their bound values at `debug`; they may hold session
    /// ids, so its per-query logging goes nowhere.
    static let silent = Logger(label: "SessionStorePostgres.query", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Opens the backend: connects once, so wrong credentials, a missing database, an
    /// unreachable server or TLS that cannot be had fail here, creates the tables if they
    /// are missing, then starts the pool.
    ///
    /// - Throws: `StorageError` with kind `.access` (credentials, database), `.connection`
    ///   (server unreachable, TLS required but not offered or not verified) or `.schema`
    ///   (the table has a newer schema version); `SessionStoreError`
    ///   `invalidConfiguration` for a bad table name, pool size or CA file.
    public init(configuration: PostgresConfiguration, logger: Logger = Logger(label: "SessionStorePostgres")) async throws {
        guard (1...1024).contains(configuration.poolSize) else {
            throw StoreURL.invalid("PostgreSQL poolSize must be in 1...1024, got \(configuration.poolSize)")
        }
        try configuration.validateTimeouts()
        let table = try SQLIdentifier.validated(configuration.table)
        guard table.utf8.count <= PostgresStatements.maximumTableNameLength else {
            throw StoreURL.invalid("PostgreSQL table name must have at most \(PostgresStatements.maximumTableNameLength) characters")
        }
        self.configuration = configuration
        self.logger = logger
        let queryTimeout = configuration.effectiveQueryTimeout
        self.queryTimeout = queryTimeout
        let statements = PostgresStatements(table: table)
        self.statements = statements
        let hosts = try PostgresHostSet(configuration, logger: logger)
        do {
            let connection = try await Self.$queryTimeout.withValue(queryTimeout) { try await hosts.connect(id: 0) }
            let result = await Self.settle {
                try await Self.$queryTimeout.withValue(queryTimeout) { try await Self.createSchema(connection, statements) }
            }
            do {
                try await connection.close()
            } catch {
                logger.debug("closing the PostgreSQL schema connection failed", metadata: ["error": "\(error)"])
            }
            try result.get()
        } catch {
            throw Self.classified(error, operation: "open", statement: nil)
        }
        pool = PostgresPool(
            hosts: hosts, maximum: configuration.poolSize,
            waitTimeout: configuration.poolWaitTimeout, logger: logger)
        logger.debug("opened PostgreSQL session store", metadata: ["configuration": "\(configuration)"])
    }

    /// A backend released without ``close()`` still closes its connections (without waiting).
    deinit {
        pool.shutDown()
    }

    /// Returns the live row for `key`, or `nil` when it is missing or expired at `now`.
    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        let sql = statements.load
        return try await call("load", retry: .read) { connection, _ in
            try await Self.row(connection, sql, [.text(key.value), .int(now)])
        }
    }

    /// Inserts a row, or replaces an expired one, in one `INSERT ... ON CONFLICT DO UPDATE
    /// ... WHERE`; returns `false` when a live row exists. After a lost connection, a row
    /// equal to `record` is this insert's own (a new session's id is known to no other
    /// request until the insert returns).
    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        let statements = statements
        let values = PostgresStatements.recordValues(key.value, record)
        return try await call("insert", retry: .again) { connection, attempt in
            if attempt.followsLostConnection,
               try await Self.row(connection, statements.read, [.text(key.value)]) == record {
                return true
            }
            return try await Self.count(connection, statements.insert, values) > 0
        }
    }

    /// Replaces a live row's data at `expectedVersion`; `false` when missing, expired or stale.
    ///
    /// After a lost connection, the row at `expectedVersion + 1` with this data means the
    /// lost attempt committed; at `expectedVersion` it did not, and the update runs again.
    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        let statements = statements
        let values: [PostgresValue] = [.bytes(data), .int(expiresAt), .text(key.value), .int(expectedVersion), .int(now)]
        return try await call("update", retry: .again) { connection, attempt in
            if attempt.followsLostConnection {
                let stored = try await Self.row(connection, statements.read, [.text(key.value)])
                if let stored, stored.version == expectedVersion + 1 {
                    // Ours, or another request's write at that version, which made ours fail.
                    return stored.data == data
                }
                // At `expectedVersion` it did not commit: run it again; otherwise it cannot be told.
                guard let stored, stored.version == expectedVersion else { throw Self.ambiguous("update") }
            }
            return try await Self.count(connection, statements.update, values) > 0
        }
    }

    /// Reads the row and writes `decide`'s choice with no other write in between: first a
    /// few optimistic attempts (read, then a write at the version read), then, if other
    /// writes kept landing, `SELECT ... FOR UPDATE` and the write in one transaction, so a
    /// merge never fails because other requests saved. All on one pooled connection.
    /// - Throws: `StorageError`, or what `decide` threw (nothing written).
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        let statements = statements
        let keyValue = PostgresValue.text(key.value)
        let pending = PendingWrite<Result>(engine: "postgres")
        return try await call("merge", retry: .again) { connection, attempt in
            if attempt.followsLostConnection, let expected = pending.expected {
                let stored = try await Self.row(connection, statements.read, [keyValue])
                switch expected.committed(stored) {
                case true?: return try pending.result()
                case false?: pending.expected = nil // not committed: merge again
                case nil: throw Self.ambiguous("merge")
                }
            }
            pending.expected = nil
            for _ in 0..<Self.optimisticMergeAttempts {
                let raw = try await Self.row(connection, statements.read, [keyValue])
                let current = raw.flatMap { $0.expiresAt > now ? $0 : nil }
                let (write, result) = try decide(current)
                guard let current, let outcome = PendingWrite<Result>.Expected(write, on: current) else { return result }
                pending.prepare(outcome, result)
                let applied = try await Self.mergeWrite(connection, statements, keyValue, write, at: current.version, now: now)
                pending.expected = nil
                if applied { return result }
            }
            return try await Self.transaction(connection) {
                let raw = try await Self.row(connection, statements.lock, [keyValue])
                let current = raw.flatMap { $0.expiresAt > now ? $0 : nil }
                let (write, result) = try decide(current)
                guard let current, let outcome = PendingWrite<Result>.Expected(write, on: current) else { return result }
                guard try await Self.mergeWrite(connection, statements, keyValue, write, at: current.version, now: now) else {
                    throw StorageError(
                        kind: .other, engine: "postgres", operation: "merge",
                        message: "the locked row changed under its lock", statement: statements.mergeUpdate.sql)
                }
                pending.prepare(outcome, result)
                return result
            }
        }
    }

    private static func mergeWrite(
        _ connection: PostgresConnection, _ statements: PostgresStatements, _ key: PostgresValue,
        _ write: MergeWrite, at version: Int64, now: Int64
    ) async throws -> Bool {
        switch write {
        case .none:
            return true
        case .replace(let data, let expiresAt):
            return try await count(connection, statements.mergeUpdate, [.bytes(data), .int(expiresAt), key, .int(version), .int(now)]) > 0
        case .delete:
            return try await count(connection, statements.deleteVersioned, [key, .int(version)]) > 0
        }
    }

    /// Moves a live row's expiry forward to `expiresAt`; never backwards. `true` when it
    /// moved; after a lost connection, also when the row's expiry is exactly `expiresAt`.
    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        let statements = statements
        return try await call("touch", retry: .again) { connection, attempt in
            if attempt.followsLostConnection {
                let stored = try await Self.row(connection, statements.read, [.text(key.value)])
                guard let stored, stored.expiresAt > now else { return false }
                if stored.expiresAt == expiresAt { return true }
            }
            return try await Self.count(connection, statements.touch, [.int(expiresAt), .text(key.value), .int(now)]) > 0
        }
    }

    /// Marks a row retired (version 0) and moves its expiry back to `expiresAt` when that
    /// is earlier; never forwards. `true` when a row exists for `key`, changed or not
    /// (PostgreSQL counts every row an `UPDATE` matched), so a retried retire reports the same.
    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        let sql = statements.retire
        return try await call("retire", retry: .again) { connection, _ in
            try await Self.count(connection, sql, [.int(expiresAt), .text(key.value)]) > 0
        }
    }

    /// Deletes the row for `key`, only at `expectedVersion` when given; `true` when it did.
    ///
    /// Reads the row's version, then deletes it at that version, so that after a lost
    /// connection the row gone from the version read tells that this delete committed.
    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        let statements = statements
        let keyValue = PostgresValue.text(key.value)
        let pending = PendingWrite<Bool>(engine: "postgres")
        return try await call("delete", retry: .again) { connection, attempt in
            if attempt.followsLostConnection, let expected = pending.expected {
                let stored = try await Self.row(connection, statements.read, [keyValue])
                switch expected.committed(stored) {
                case true?: return true
                case false?: pending.expected = nil
                case nil: throw Self.ambiguous("delete")
                }
            }
            // Another write between the read and the delete moves the version: read again.
            while true {
                pending.expected = nil
                guard let current = try await Self.row(connection, statements.read, [keyValue]),
                      expectedVersion == nil || current.version == expectedVersion else { return false }
                pending.prepare(.deleted(from: current.version), true)
                if try await Self.count(connection, statements.deleteVersioned, [keyValue, .int(current.version)]) > 0 {
                    return true
                }
                await Task.yield()
            }
        }
    }

    /// Deletes at most `limit` rows with `expires_at < before` (exactly the cut-off given;
    /// the store subtracts its clock-skew allowance) in one statement that picks them by
    /// the expiry index (`LIMIT`, skipping rows a writer holds) and checks the cut-off again
    /// on each row it deletes. Not run again after a lost connection, since how many rows a
    /// lost batch deleted cannot be told.
    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        precondition(limit > 0, "limit must be positive")
        let sql = statements.deleteExpired
        return try await call("deleteExpired", retry: .never) { connection, _ in
            let rows = try await Self.rows(connection, sql, [.int(before), .int(Int64(limit))])
            guard let first = rows.first else {
                throw StorageError(kind: .other, engine: "postgres", operation: "deleteExpired", message: "no count returned", statement: sql)
            }
            return Int(try first.decode(Int64.self))
        }
    }

    /// Waits for the calls in flight, then shuts the pool down and closes every connection;
    /// returns when they are closed. A second call does nothing; other calls afterwards
    /// throw `StorageError.Kind.closed`.
    public func close() async throws {
        guard await gate.close() else { return }
        await pool.close()
        logger.debug("closed PostgreSQL session store")
    }

    // MARK: - Internals

    /// How many calls lost their connection mid-call so far (for tests of exact retries).
    var connectionsLost: Int { lost.load(ordering: .relaxed) }
    /// How many connections the pool opened so far (for tests of reuse and reconnection).
    var connectionsOpened: Int { pool.connectionsOpened }

    static func closedError(_ operation: String) -> StorageError {
        StorageError(kind: .closed, engine: "postgres", operation: operation, message: "the PostgreSQL backend was closed")
    }

    /// A write whose connection was lost after it was sent, when the row changed since in a
    /// way that hides whether the write committed.
    static func ambiguous(_ operation: String) -> StorageError {
        StorageError(
            kind: .connection, engine: "postgres", operation: operation,
            message: "the connection was lost after the write was sent, and the row changed since: "
                + "the write may or may not have been committed")
    }

    /// `error` as a `StorageError` when it came from the driver; other errors unchanged.
    static func classified(_ error: any Error, operation: String, statement: String?) -> any Error {
        if let failed = error as? PostgresStatementError {
            return PostgresFailure(failed.underlying, operation: operation, statement: failed.statement)?.error ?? failed.underlying
        }
        return PostgresFailure(error, operation: operation, statement: statement)?.error ?? error
    }

    /// Runs `body` on a pooled connection, unless the backend was closed: again on another
    /// connection after a lost one when `retry` allows, again after a serialization failure
    /// or deadlock, and with every driver error turned into a `StorageError`.
    func call<T: Sendable>(
        _ operation: String, retry: PostgresRetry,
        _ body: @escaping @Sendable (PostgresConnection, PostgresAttempt) async throws -> T
    ) async throws -> T {
        guard gate.enter() else { throw Self.closedError(operation) }
        defer { gate.leave() }
        return try await Self.$queryTimeout.withValue(queryTimeout) { try await attempts(operation, retry: retry, body) }
    }

    /// ``call(_:retry:_:)``'s attempts.
    private func attempts<T: Sendable>(
        _ operation: String, retry: PostgresRetry,
        _ body: @escaping @Sendable (PostgresConnection, PostgresAttempt) async throws -> T
    ) async throws -> T {
        var attempt = PostgresAttempt(followsLostConnection: false)
        var lostConnections = 0
        var rolledBack = 0
        var connectAttempts = 0
        while true {
            do {
                let current = attempt
                return try await pool.withConnection(operation: operation) { connection in try await body(connection, current) }
            } catch let failed as PostgresStatementError {
                // A statement failed on a leased connection: something may have been sent.
                guard let failure = PostgresFailure(failed.underlying, operation: operation, statement: failed.statement) else {
                    throw failed.underlying
                }
                switch failure.recovery {
                case .lostConnection where lostConnections < Self.lostConnectionRetries && !gate.isClosed:
                    lostConnections += 1
                    lost.add(1, ordering: .relaxed)
                    logger.debug("PostgreSQL connection lost mid-call", metadata: [
                        "operation": "\(operation)", "error": "\(failure.error.message)",
                    ])
                    if retry != .never {
                        attempt.followsLostConnection = true
                        continue
                    }
                    var error = failure.error
                    error.message += " (the write may or may not have been committed)"
                    throw error
                case .rolledBack where rolledBack < Self.rolledBackRetries:
                    rolledBack += 1
                    // 1, 2, 4 ... ms, jittered: the other transaction holds the row briefly.
                    let base = 500 << rolledBack
                    try await Task.sleep(for: .microseconds(base / 2 + Int.random(in: 0...base)))
                    continue
                default:
                    var error = failure.error
                    if failure.recovery == .timedOut && retry != .read {
                        error.message += " (a write sent on it may or may not have been committed)"
                    } else if attempt.followsLostConnection {
                        error.message += " (after the connection was lost mid-call; a write sent then may or may not have been committed)"
                    }
                    throw error
                }
            } catch {
                // A connection that could not be opened: nothing was sent. Tried again with a
                // backoff (50 ms, doubling, at most 1 s: about 4.5 s in all), so a server
                // restarting briefly is ridden out.
                if let failure = PostgresFailure(error, operation: operation, statement: nil) {
                    if failure.recovery == .lostConnection && connectAttempts < Self.connectRetries && !gate.isClosed {
                        try await Task.sleep(for: .milliseconds(min(50 << connectAttempts, 1_000)))
                        connectAttempts += 1
                        continue
                    }
                    var error = failure.error
                    if attempt.followsLostConnection {
                        error.message += " (after the connection was lost mid-call; a write sent then may or may not have been committed)"
                    }
                    throw error
                }
                throw error
            }
        }
    }
}

/// What a pooled call may do again when its connection is lost mid-call.
enum PostgresRetry: Sendable {
    /// A read that writes nothing: run it again on a new connection.
    case read
    /// Run it again on a new connection: a write whose body decides exactly what happened
    /// (it is told the attempt follows a lost connection).
    case again
    /// Never again once sent: fail with `StorageError.Kind.connection`, saying the write
    /// may or may not have been committed.
    case never
}

/// What one call's body is told about its attempt.
struct PostgresAttempt: Sendable {
    /// A previous attempt of this call lost its connection, so a write it sent may have
    /// been committed.
    var followsLostConnection: Bool
}

/// A driver error with the statement that failed, so the `StorageError` can name it.
struct PostgresStatementError: Error {
    let underlying: any Error
    let statement: String?
}

extension PostgresBackend {
    /// The outcome of `body`, success or error, so cleanup can run before it is rethrown.
    static func settle<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
}
#endif
