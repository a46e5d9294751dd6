public import Logging
public import SessionStore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sessions in a MySQL or MariaDB table, through MariaDB Connector/C.
///
/// Connections are pooled (reused, at most ``MySQLConfiguration/poolSize``); each pooled
/// connection has a thread of its own on which all its blocking client calls run, so Swift's
/// cooperative pool never blocks. Statements are prepared once per connection.
///
/// Expiry follows the app's clock: every call passes its own `now`, and the server's
/// `NOW()` is never used. Cleanup deletes only rows that expired
/// ``MySQLConfiguration/clockSkewAllowance`` before the time it is given, so app hosts
/// whose clocks disagree by less than that cannot delete each other's live sessions.
///
/// When the server restarts or drops a connection, the connection is replaced and
/// prepared again; a load, touch, retire, delete or cleanup is retried once, while an
/// insert or update that was cut off fails with ``StorageError/Kind/connection``, since it
/// cannot be known whether the server committed it. Deadlocks and lock wait timeouts are
/// retried a few times before ``StorageError/Kind/busy``.
///
/// Every table has a primary key, and nothing uses `LOCK TABLES` or `GET_LOCK`, so the
/// backend runs on Galera and Group Replication clusters.
public final class MySQLBackend: StorageBackend {
    /// The configuration the backend was opened with.
    public let configuration: MySQLConfiguration
    let statements: MySQLStatements
    let pool: MySQLPool
    private let logger: Logger
    private let skewMilliseconds: Int64
    private let healthCheckInterval: Duration
    private let closed = Atomic(false)
    private let opened = Atomic(0)
    private let lost = Atomic(0)

    /// Opens the backend: connects once, so wrong credentials, a missing database or an
    /// unreachable server fail here, and creates the tables if they are missing.
    ///
    /// - Throws: ``StorageError`` with kind `.access` (credentials, database), `.connection`
    ///   (server unreachable) or `.schema` (the table exists with another layout or a newer
    ///   schema version); ``SessionStoreError`` `invalidConfiguration` for a bad table name.
    public init(configuration: MySQLConfiguration, logger: Logger = Logger(label: "SessionStoreMySQL")) async throws {
        precondition(configuration.poolSize > 0, "poolSize must be positive")
        _ = try SQLIdentifier.validated(configuration.table)
        self.configuration = configuration
        self.logger = logger
        statements = MySQLStatements(
            table: configuration.table, layout: configuration.keyLayout,
            autoIncrement: configuration.autoIncrementPrimaryKey
        )
        pool = MySQLPool(size: configuration.poolSize, waitTimeout: configuration.poolWaitTimeout)
        skewMilliseconds = Self.milliseconds(configuration.clockSkewAllowance)
        healthCheckInterval = configuration.healthCheckInterval
        do {
            try await perform("open", idempotent: true) { [statements] connection in
                try Self.createSchema(connection, statements)
            }
        } catch {
            pool.close(operation: "open")
            throw error
        }
        logger.debug("opened MySQL session store", metadata: ["configuration": "\(configuration)"])
    }

    /// Returns the live row for `key`, or `nil` when it is missing or expired at `now`.
    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        let sql = statements.load
        let parameters = statements.keyValues(key) + [.int(now)]
        let rows = try await perform("load", idempotent: true) { connection in
            try connection.statement(sql).query(parameters, columns: [.bytes, .int, .int, .int])
        }
        guard let row = rows.first else { return nil }
        guard let data = row[0].bytes, let version = row[1].int, let createdAt = row[2].int,
              let expiresAt = row[3].int else {
            throw StorageError(
                kind: .corrupt, engine: "mysql", operation: "load", message: "row has NULL columns", statement: sql
            )
        }
        return SessionRecord(data: data, version: version, createdAt: createdAt, expiresAt: expiresAt)
    }

    /// Inserts a row, or replaces an expired one; returns `false` when a live row exists.
    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        let sql = statements.insert
        let parameters = statements.keyValues(key) + [
            .bytes(record.data), .int(record.version), .int(record.createdAt), .int(record.expiresAt),
        ]
        // 1 = inserted, 2 = an expired row was replaced, 0 = a live row was left alone
        // (the connection does not use CLIENT_FOUND_ROWS).
        let changed = try await perform("insert", idempotent: false) { connection in
            try connection.statement(sql).execute(parameters)
        }
        return changed > 0
    }

    /// Replaces a live row's data at `expectedVersion`; `false` when missing, expired or stale.
    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        let sql = statements.update
        let parameters: [MySQLValue] = [.bytes(data), .int(expiresAt)] + statements.keyValues(key)
            + [.int(expectedVersion), .int(now)]
        return try await perform("update", idempotent: false) { connection in
            try connection.statement(sql).execute(parameters)
        } > 0
    }

    /// Reads and writes the row with no other write in between.
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        try await optimisticMerge(key, now: now, decide)
    }

    /// Moves a live row's expiry forward to `expiresAt`; never backwards.
    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        let sql = statements.touch
        let parameters: [MySQLValue] = [.int(expiresAt)] + statements.keyValues(key) + [.int(now), .int(expiresAt)]
        return try await perform("touch", idempotent: true) { connection in
            try connection.statement(sql).execute(parameters)
        } > 0
    }

    /// Marks a row retired (version 0) and moves its expiry back to `expiresAt` when that
    /// is earlier; never forwards. `false` when nothing changed (missing, or already so).
    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        let sql = statements.retire
        let parameters: [MySQLValue] = [.int(expiresAt)] + statements.keyValues(key)
        return try await perform("retire", idempotent: true) { connection in
            try connection.statement(sql).execute(parameters)
        } > 0
    }

    /// Deletes the row for `key`, only at `expectedVersion` when given.
    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        let sql = expectedVersion == nil ? statements.delete : statements.deleteVersioned
        var parameters = statements.keyValues(key)
        if let expectedVersion { parameters.append(.int(expectedVersion)) }
        return try await perform("delete", idempotent: true) { [parameters] connection in
            try connection.statement(sql).execute(parameters)
        } > 0
    }

    /// Deletes at most `limit` rows that expired before `before` minus the clock skew
    /// allowance, with one `DELETE ... ORDER BY expires_at LIMIT n`.
    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        precondition(limit > 0, "limit must be positive")
        let sql = statements.deleteExpired
        let cutoff = before > Int64.min + skewMilliseconds ? before - skewMilliseconds : Int64.min
        let parameters: [MySQLValue] = [.int(cutoff), .int(Int64(limit))]
        return Int(try await perform("deleteExpired", idempotent: true) { connection in
            try connection.statement(sql).execute(parameters)
        })
    }

    /// Takes or renews the cleanup lease of this table in the shared lease table: granted
    /// when it is free, lapsed at `now`, or already held by `holder`.
    ///
    /// Lease expiry also follows the callers' clocks; choose `duration` longer than the
    /// skew between hosts.
    public func acquireCleanupLease(holder: String, now: Int64, duration: Int64) async throws -> Bool {
        let statements = statements
        let name = statements.table
        let expiresAt = now + max(duration, 1)
        let acquire: [MySQLValue] = [.text(name), .text(holder), .int(expiresAt), .int(now)]
        return try await perform("acquireCleanupLease", idempotent: true) { connection in
            // 1 = inserted, 2 = taken over or renewed: ours. 0 = unchanged: ours only if we
            // already hold it with the same expiry.
            if try connection.statement(statements.leaseAcquire).execute(acquire) > 0 { return true }
            let rows = try connection.statement(statements.leaseRead).query([.text(name)], columns: [.bytes, .int])
            guard let row = rows.first, let current = row[0].bytes, let until = row[1].int else { return false }
            return current == Array(holder.utf8) && until > now
        }
    }

    /// Gives up a lease taken with ``acquireCleanupLease(holder:now:duration:)``.
    public func releaseCleanupLease(holder: String) async throws {
        let sql = statements.leaseRelease
        let parameters: [MySQLValue] = [.text(statements.table), .text(holder)]
        _ = try await perform("releaseCleanupLease", idempotent: true) { connection in
            try connection.statement(sql).execute(parameters)
        }
    }

    /// Closes every pooled connection and stops the worker threads; calls in flight
    /// finish first. Later calls throw ``StorageError/Kind/closed``.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pool.close(operation: "close")
        logger.debug("closed MySQL session store")
    }

    // MARK: - Internals

    /// How many connections were opened so far (for tests of pool reuse and reconnect).
    var connectionsOpened: Int { opened.load(ordering: .relaxed) }
    /// How many connections were discarded because they were lost.
    var connectionsLost: Int { lost.load(ordering: .relaxed) }

    static func closedError(_ operation: String) -> StorageError {
        StorageError(kind: .closed, engine: "mysql", operation: operation, message: "the MySQL backend was closed")
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let components = duration.components
        return components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Runs `body` with a pooled connection on that connection's own thread.
    func perform<T: Sendable>(
        _ operation: String, idempotent: Bool,
        _ body: @escaping @Sendable (MySQLConnection) throws -> T
    ) async throws -> T {
        guard !closed.load(ordering: .acquiring) else { throw Self.closedError(operation) }
        let slot = try await pool.acquire(operation: operation)
        defer { pool.release(slot) }
        return try await slot.run { [self] slot in
            try runOnWorker(slot, operation: operation, idempotent: idempotent, body)
        }
    }

    /// The retry loop; runs on the slot's worker thread.
    private func runOnWorker<T>(
        _ slot: MySQLSlot, operation: String, idempotent: Bool,
        _ body: (MySQLConnection) throws -> T
    ) throws -> T {
        var retriedLost = false
        var reprepared = false
        var lockRetries = 0
        while true {
            let connection: MySQLConnection
            do {
                connection = try ready(slot)
            } catch {
                throw open(error, operation: operation)
            }
            do {
                let result = try body(connection)
                connection.lastUsed = .now
                return result
            } catch let error as MySQLClientError {
                if error.isConnectionLost {
                    slot.connection = nil
                    lost.add(1, ordering: .relaxed)
                    logger.warning("MySQL connection lost; it will be replaced", metadata: [
                        "operation": "\(operation)", "code": "\(error.code)", "error": "\(error.message)",
                    ])
                    if idempotent && !retriedLost {
                        retriedLost = true
                        continue
                    }
                    var failure = error.storageError(operation: operation)
                    if !idempotent {
                        failure.message += " (the write may or may not have been committed)"
                    }
                    throw failure
                }
                if error.isLockConflict && lockRetries < 4 {
                    lockRetries += 1
                    connection.lastUsed = .now
                    usleep(UInt32(1000 << lockRetries)) // 2, 4, 8, 16 ms on this worker thread
                    continue
                }
                if error.needsReprepare && !reprepared {
                    reprepared = true
                    connection.discardStatements()
                    continue
                }
                connection.lastUsed = .now
                throw error.storageError(operation: operation)
            }
        }
    }

    /// The slot's connection, opened when missing and pinged when it idled long.
    private func ready(_ slot: MySQLSlot) throws(MySQLClientError) -> MySQLConnection {
        if let connection = slot.connection {
            if ContinuousClock.now - connection.lastUsed < healthCheckInterval || connection.ping() {
                return connection
            }
            logger.info("idle MySQL connection no longer answers; replacing it")
            lost.add(1, ordering: .relaxed)
            slot.connection = nil
        }
        let connection = try MySQLConnection(configuration)
        opened.add(1, ordering: .relaxed)
        slot.connection = connection
        return connection
    }

    /// A connect failure with a message that names what is wrong (never the password).
    private func open(_ error: MySQLClientError, operation: String) -> StorageError {
        var failure = error.storageError(operation: operation)
        let configuration = configuration
        let target = configuration.unixSocket.map { "socket \($0)" } ?? "\(configuration.host):\(configuration.port)"
        switch error.code {
        case 1045, 1698:
            failure.message = "wrong user name or password for user '\(configuration.user)' at \(target): \(error.message)"
        case 1044:
            failure.message = "user '\(configuration.user)' may not use database '\(configuration.database)': \(error.message)"
        case 1049:
            failure.message = "no such database '\(configuration.database)' at \(target): \(error.message)"
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

    /// Creates the schema, lease and sessions tables if missing and checks the recorded
    /// schema version and layout.
    private static func createSchema(_ connection: MySQLConnection, _ statements: MySQLStatements) throws {
        try connection.run(MySQLStatements.createSchemaTable)
        try connection.run(MySQLStatements.createLeaseTable)
        try connection.run(statements.createTable)
        let table = statements.table
        let layout = statements.layout.rawValue
        let autoIncrement = statements.autoIncrement ? 1 : 0
        try connection.run(
            "INSERT IGNORE INTO \(MySQLStatements.schemaTable) (name, version, key_layout, auto_increment) "
                + "VALUES ('\(table)', \(MySQLStatements.schemaVersion), '\(layout)', \(autoIncrement))"
        )
        let sql = "SELECT version, key_layout, auto_increment FROM \(MySQLStatements.schemaTable) WHERE name = '\(table)'"
        guard let row = try connection.rows(sql).first, let versionText = row[0], let version = Int(versionText) else {
            throw StorageError(kind: .schema, engine: "mysql", operation: "open", message: "schema row missing", statement: sql)
        }
        guard version <= MySQLStatements.schemaVersion else {
            throw StorageError(
                kind: .schema, engine: "mysql", operation: "open",
                message: "table \(table) has schema version \(version); this release reads up to \(MySQLStatements.schemaVersion)",
                statement: sql
            )
        }
        guard row[1] == layout, row[2] == String(autoIncrement) else {
            throw StorageError(
                kind: .schema, engine: "mysql", operation: "open",
                message: "table \(table) was created with key=\(row[1] ?? "?") auto_increment=\(row[2] == "1"); "
                    + "the configuration asks for key=\(layout) auto_increment=\(autoIncrement == 1)",
                statement: sql
            )
        }
    }
}
