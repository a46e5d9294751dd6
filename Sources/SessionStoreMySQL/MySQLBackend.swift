public import Logging
public import SessionStoreCore
import Synchronization

/// Sessions in a MySQL or MariaDB table, through MariaDB Connector/C.
///
/// The backend maps each operation to SQL; `MySQLPool` owns the connections (at most
/// ``MySQLConfiguration/poolSize``), each on a thread of its own so Swift's cooperative pool
/// never blocks. Statements are prepared once per connection.
///
/// Expiry follows the app's clock: every call passes its own `now`, and the server's
/// `NOW()` is never used.
///
/// When the server restarts or drops a connection, the connection is replaced. A call cut
/// off that way runs again on a new connection only when what happened can be told exactly:
/// loads; `retire` (it counts the row it matched, changed or not); inserts, updates,
/// touches, deletes and merges, whose retry first reads the row to see whether the lost
/// attempt committed (an insert finds its own row, an update its version and data, a delete
/// the row gone from the version it locked). When the row changed again since, so that
/// this cannot be told, and for cleanup batches, the call fails with
/// `StorageError.Kind.connection` saying the write may or may not have been committed.
/// Deadlocks and lock wait timeouts are retried a few times before `StorageError.Kind.busy`.
///
/// Every table has a primary key, and nothing uses `LOCK TABLES` or `GET_LOCK`, so the
/// backend runs on Galera and Group Replication clusters.
public final class MySQLBackend: StorageBackend {
    /// The configuration the backend was opened with.
    public let configuration: MySQLConfiguration
    let statements: MySQLStatements
    let pool: MySQLPool
    private let logger: Logger
    private let closed = Atomic(false)

    /// Optimistic attempts (load, then a versioned write) a merge makes before it takes the
    /// row lock.
    static let optimisticMergeAttempts = 2

    /// Opens the backend: connects once, so wrong credentials, a missing database, an
    /// unreachable server or TLS that cannot be had fail here, and creates the tables if
    /// they are missing.
    ///
    /// - Throws: `StorageError` with kind `.access` (credentials, database), `.connection`
    ///   (server unreachable, TLS required but not available or not verified), `.other` (an
    ///   option Connector/C refused) or `.schema` (the table exists with another layout or a
    ///   newer schema version); `SessionStoreError` `invalidConfiguration` for a bad table
    ///   name or pool size.
    public init(configuration: MySQLConfiguration, logger: Logger = Logger(label: "SessionStoreMySQL")) async throws {
        guard (1...1024).contains(configuration.poolSize) else {
            throw StoreURL.invalid("MySQL poolSize must be in 1...1024, got \(configuration.poolSize)")
        }
        _ = try SQLIdentifier.validated(configuration.table)
        guard !configuration.hosts.isEmpty else { throw StoreURL.invalid("MySQL configuration has no host") }
        self.configuration = configuration
        self.logger = logger
        let current = MySQLStatements(
            table: configuration.table, layout: configuration.keyLayout,
            autoIncrement: configuration.autoIncrementPrimaryKey
        )
        let pool = MySQLPool(configuration: configuration, logger: logger)
        self.pool = pool
        let version: Int
        do {
            version = try await pool.run("open", retry: .again) { connection, _ in
                try Self.createSchema(connection, current)
            }
        } catch {
            await pool.close()
            throw error
        }
        // A table of an earlier version keeps its columns until `session-store upgrade`.
        statements = version == MySQLStatements.schemaVersion
            ? current
            : MySQLStatements(
                table: configuration.table, layout: configuration.keyLayout,
                autoIncrement: configuration.autoIncrementPrimaryKey, version: version)
        logger.debug("opened MySQL session store", metadata: ["configuration": "\(configuration)"])
    }

    /// A backend released without ``close()`` still ends its threads and closes its
    /// connections (without waiting for them).
    deinit {
        pool.shutDown()
    }

    /// Returns the live row for `key`, or `nil` when it is missing or expired at `now`.
    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        let sql = statements.load
        let parameters = statements.keyValues(key) + [.int(now)]
        guard !closed.load(ordering: .acquiring) else { throw Self.closedError("load") }
        // Sent by this task itself and finished by the slot's thread (no blocking call here).
        let rows = try await pool.query("load", sql, parameters, columns: statements.recordColumns)
        return try Self.record(rows, sql, operation: "load")
    }

    /// Inserts a row, or replaces an expired one; returns `false` when a live row exists.
    ///
    /// One `INSERT`; only when the key exists does it lock the row to replace an expired
    /// one. After a lost connection, a row equal to `record` is this insert's own.
    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        let statements = statements
        guard statements.hasOwners || (record.owner == nil && record.details == nil) else {
            throw ownersNeedUpgrade("insert")
        }
        let keyValues = statements.keyValues(key)
        let values = statements.recordValues(record)
        return try await call("insert", retry: .again) { connection, attempt in
            // A new session's id is known to no other request until this insert returns, so a
            // row equal to `record` after a lost connection is this insert's own; any other
            // row is left to the normal path.
            if attempt.followsLostConnection,
               try Self.row(connection, statements, statements.read, keyValues, operation: "insert") == record {
                return true
            }
            do {
                _ = try connection.statement(statements.insert).execute(keyValues + values)
                return true
            } catch let error as MySQLClientError where error.code == MySQLErrorCode.duplicateEntry {
                // The key exists: replace it if it expired, under the row lock.
            }
            return try connection.transaction {
                guard let current = try Self.row(connection, statements, statements.lock, keyValues, operation: "insert") else {
                    _ = try connection.statement(statements.insert).execute(keyValues + values)
                    return true
                }
                guard current.expiresAt <= record.createdAt else { return false }
                _ = try connection.statement(statements.replace).execute(values + keyValues)
                return true
            }
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
        let keyValues = statements.keyValues(key)
        let parameters: [MySQLValue] = [.bytes(data), .int(expiresAt)] + statements.lastSeen(now) + keyValues
            + [.int(expectedVersion), .int(now)]
        return try await call("update", retry: .again) { connection, attempt in
            if attempt.followsLostConnection {
                let stored = try Self.row(connection, statements, statements.read, keyValues, operation: "update")
                if let stored, stored.version == expectedVersion + 1 {
                    // Ours, or another request's write at that version, which made ours fail.
                    return stored.data == data
                }
                // At `expectedVersion` it did not commit: run it again; otherwise it cannot be told.
                guard let stored, stored.version == expectedVersion else { throw Self.ambiguous("update") }
            }
            return try connection.statement(statements.update).execute(parameters) > 0
        }
    }

    /// Reads the row and writes `decide`'s choice with no other write in between: first a
    /// few optimistic attempts (load, then a write at the version read), then, if other
    /// writes kept landing, `SELECT ... FOR UPDATE` and the write in one transaction, so a
    /// merge never fails because other requests saved. All on one pooled connection.
    /// - Throws: `StorageError`, or what `decide` threw (nothing written).
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        let statements = statements
        let keyValues = statements.keyValues(key)
        let pending = PendingWrite<Result>(engine: "mysql")
        return try await call("merge", retry: .again) { connection, attempt in
            if attempt.followsLostConnection, let expected = pending.expected {
                let stored = try Self.row(connection, statements, statements.read, keyValues, operation: "merge")
                switch expected.committed(stored) {
                case true?: return try pending.result()
                case false?: pending.expected = nil // not committed: merge again
                case nil: throw Self.ambiguous("merge")
                }
            }
            pending.expected = nil
            for _ in 0..<Self.optimisticMergeAttempts {
                let raw = try Self.row(connection, statements, statements.read, keyValues, operation: "merge")
                let current = raw.flatMap { $0.expiresAt > now ? $0 : nil }
                let (write, result) = try decide(current)
                guard let current, let outcome = PendingWrite<Result>.Expected(write, on: current) else { return result }
                pending.prepare(outcome, result)
                let applied = try Self.mergeWrite(connection, statements, keyValues, write, at: current.version, now: now) > 0
                pending.expected = nil
                if applied { return result }
            }
            return try connection.transaction({
                let raw = try Self.row(connection, statements, statements.lock, keyValues, operation: "merge")
                let current = raw.flatMap { $0.expiresAt > now ? $0 : nil }
                let (write, result) = try decide(current)
                guard let current, let outcome = PendingWrite<Result>.Expected(write, on: current) else { return result }
                guard try Self.mergeWrite(connection, statements, keyValues, write, at: current.version, now: now) > 0 else {
                    throw StorageError(
                        kind: .other, engine: "mysql", operation: "merge",
                        message: "the locked row changed under its lock", statement: statements.mergeUpdate)
                }
                pending.prepare(outcome, result)
                return result
            })
        }
    }

    private static func mergeWrite(
        _ connection: MySQLConnection, _ statements: MySQLStatements, _ keyValues: [MySQLValue],
        _ write: MergeWrite, at version: Int64, now: Int64
    ) throws -> UInt64 {
        switch write {
        case .none:
            return 1
        case .replace(let data, let expiresAt):
            let parameters: [MySQLValue] = [.bytes(data), .int(expiresAt)] + statements.lastSeen(now) + keyValues + [.int(version)]
            return try connection.statement(statements.mergeUpdate).execute(parameters)
        case .delete:
            return try connection.statement(statements.deleteVersioned).execute(keyValues + [.int(version)])
        }
    }

    /// Moves a live row's expiry forward to `expiresAt`; never backwards. `true` when it
    /// moved; after a lost connection, also when the row's expiry is exactly `expiresAt`.
    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        let statements = statements
        let keyValues = statements.keyValues(key)
        let parameters: [MySQLValue] = [.int(expiresAt)] + statements.lastSeen(now) + keyValues + [.int(now), .int(expiresAt)]
        return try await call("touch", retry: .again) { connection, attempt in
            if attempt.followsLostConnection {
                let stored = try Self.row(connection, statements, statements.read, keyValues, operation: "touch")
                guard let stored, stored.expiresAt > now else { return false }
                if stored.expiresAt == expiresAt { return true }
            }
            return try connection.statement(statements.touch).execute(parameters) > 0
        }
    }

    /// Marks a row retired (version 0) and moves its expiry back to `expiresAt` when that
    /// is earlier; never forwards. `true` when a row exists for `key`, changed or not
    /// (the connection counts matched rows), so a retried retire reports the same.
    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        let sql = statements.retire
        let parameters: [MySQLValue] = [.int(expiresAt)] + statements.keyValues(key)
        return try await call("retire", retry: .again) { connection, _ in
            try connection.statement(sql).execute(parameters) > 0
        }
    }

    /// Deletes the row for `key`, only at `expectedVersion` when given; `true` when it did.
    ///
    /// The row is locked and checked, then deleted, in one transaction, so that after a
    /// lost connection the row gone from the version it locked tells that this delete committed.
    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        let statements = statements
        let keyValues = statements.keyValues(key)
        let pending = PendingWrite<Bool>(engine: "mysql")
        return try await call("delete", retry: .again) { connection, attempt in
            if attempt.followsLostConnection, let expected = pending.expected {
                let stored = try Self.row(connection, statements, statements.read, keyValues, operation: "delete")
                switch expected.committed(stored) {
                case true?: return true
                case false?: pending.expected = nil
                case nil: throw Self.ambiguous("delete")
                }
            }
            pending.expected = nil
            return try connection.transaction({
                guard let current = try Self.row(connection, statements, statements.lock, keyValues, operation: "delete"),
                      expectedVersion == nil || current.version == expectedVersion else { return false }
                _ = try connection.statement(statements.deleteVersioned).execute(keyValues + [.int(current.version)])
                pending.prepare(.deleted(from: current.version), true)
                return true
            })
        }
    }

    /// Deletes at most `limit` rows with `expires_at < before` (exactly the cut-off given;
    /// the store subtracts its clock-skew allowance), with one
    /// `DELETE ... ORDER BY expires_at LIMIT n`. Not run again after a lost connection, since
    /// how many rows a lost batch deleted cannot be told.
    public func deleteExpired(before: Int64, limit: Int) async throws -> Int {
        precondition(limit > 0, "limit must be positive")
        let sql = statements.deleteExpired
        let parameters: [MySQLValue] = [.int(before), .int(Int64(limit))]
        return Int(try await call("deleteExpired", retry: .never) { connection, _ in
            try connection.statement(sql).execute(parameters)
        })
    }

    /// Closes every pooled connection and ends the worker threads once the calls in flight
    /// finished; returns when they are closed. A second call does nothing; other calls
    /// afterwards throw `StorageError.Kind.closed`.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await pool.close()
        logger.debug("closed MySQL session store")
    }

    // MARK: - Internals

    /// How many connections were opened so far (for tests of pool reuse and reconnect).
    var connectionsOpened: Int { pool.resources.opened.load(ordering: .relaxed) }
    /// How many connections were discarded because they were lost.
    var connectionsLost: Int { pool.resources.lost.load(ordering: .relaxed) }

    static func closedError(_ operation: String) -> StorageError {
        StorageError(kind: .closed, engine: "mysql", operation: operation, message: "the MySQL backend was closed")
    }

    /// A write whose connection was lost after it was sent, when the row changed since in a
    /// way that hides whether the write committed.
    static func ambiguous(_ operation: String) -> StorageError {
        StorageError(
            kind: .connection, engine: "mysql", operation: operation,
            message: "the connection was lost after the write was sent, and the row changed since: "
                + "the write may or may not have been committed")
    }

    /// Runs `body` on a pooled connection, unless the backend was closed.
    func call<T: Sendable>(
        _ operation: String, retry: MySQLRetry,
        _ body: @escaping @Sendable (MySQLConnection, MySQLAttempt) throws -> T
    ) async throws -> T {
        guard !closed.load(ordering: .acquiring) else { throw Self.closedError(operation) }
        return try await pool.run(operation, retry: retry, body)
    }

    /// The columns of `SELECT data, version, created_at, expires_at`.

    /// Runs a keyed `SELECT data, version, created_at, expires_at` and returns its row.
    static func row(
        _ connection: MySQLConnection, _ statements: MySQLStatements, _ sql: String, _ parameters: [MySQLValue],
        operation: String
    ) throws -> SessionRecord? {
        try record(try connection.statement(sql).query(parameters, columns: statements.recordColumns), sql, operation: operation)
    }

    /// The record in the first of `rows` (`data, version, created_at, expires_at`), if any.
    static func record(_ rows: [[MySQLResultValue]], _ sql: String, operation: String) throws -> SessionRecord? {
        guard let row = rows.first else { return nil }
        guard let data = row[0].bytes, let version = row[1].int, let createdAt = row[2].int,
              let expiresAt = row[3].int else {
            throw StorageError(
                kind: .corrupt, engine: "mysql", operation: operation, message: "row has NULL columns", statement: sql
            )
        }
        var record = SessionRecord(data: data, version: version, createdAt: createdAt, expiresAt: expiresAt)
        // A table with the owner columns (schema version 2); NULL for an unbound row.
        if row.count > 4 {
            if let owner = row[4].bytes {
                guard let text = String(validating: owner, as: UTF8.self) else {
                    throw StorageError(kind: .corrupt, engine: "mysql", operation: operation, message: "owner is not UTF-8", statement: sql)
                }
                record.owner = text
            }
            record.details = row[5].bytes
            if let lastSeen = row[6].int { record.lastSeen = lastSeen }
        }
        return record
    }
}
