import CSessionStoreSQLite
public import Logging
public import SessionStoreCore
import Synchronization

/// Sessions in an embedded SQLite database: WAL mode, one writer thread with group
/// commit, and a pool of reader connections so loads run in parallel.
///
/// Loads check out a reader and run inline on the calling task (a point lookup takes
/// microseconds). Writes are queued to a dedicated thread, which commits all writes
/// waiting at that moment in one transaction; each caller gets its own result once the
/// transaction committed. Cleanup (``deleteExpired(before:limit:)``) walks the key in short slices of
/// its own between batches, paced by the WAL, so saves never wait behind a long delete.
public final class SQLiteBackend: StorageBackend {
    /// The configuration the backend was opened with.
    public let configuration: SQLiteConfiguration
    let queries: SQLiteQueries
    let writer: SQLiteWriter
    /// `nil` for an in-memory database, which reads through the writer's connection.
    let readers: SQLiteReaderPool?
    /// `nil` for an in-memory database, which has no WAL.
    let checkpointer: SQLiteCheckpointer?
    /// Rows loaded lately, answered again while the database has not changed; `nil` for an
    /// in-memory database, or when the WAL index cannot be mapped.
    let loadCache: SQLiteLoadCache?
    /// Builds the load cache's key filter, so loads of keys without a row skip SQLite; `nil`
    /// without a load cache, or for a table of the first form (no slot column).
    let filterBuilder: SQLiteKeyFilterBuilder?
    /// Sizes cleanup slices (see ``deleteExpired(before:limit:)``).
    let cleanupSlicer = SQLiteCleanupSlicer()
    /// Where the last cleanup call that reached its limit stopped its key-order walk.
    let cleanupWalk = SQLiteCleanupWalk()
    private let logger: Logger
    private let closed = Atomic<Bool>(false)
    /// Set once ``upgradeSchema()`` rebuilt the table in another form than ``queries``'.
    let formChanged = Atomic<Bool>(false)

    /// Opens (creating when missing) the database and the session table, and starts the
    /// writer thread.
    ///
    /// - Throws: `SessionStoreError` `invalidConfiguration` for a bad table name, a
    ///   `readerCount` outside 1...64, a `maxBatchSize` below 1 or a negative `mmapSize`
    ///   (before any file is created);
    ///   `StorageError` with kind `.cannotOpen` (missing directory, permissions),
    ///   `.readOnly` (file not writable), `.corrupt` (not a database) or `.schema` (the
    ///   table has another key layout or a newer schema version).
    public init(configuration: SQLiteConfiguration, logger: Logger = Logger(label: "SessionStoreSQLite")) throws {
        guard (1...64).contains(configuration.readerCount) else {
            throw StoreURL.invalid("SQLite readerCount must be in 1...64, got \(configuration.readerCount)")
        }
        guard configuration.maxBatchSize >= 1 else {
            throw StoreURL.invalid("SQLite maxBatchSize must be at least 1, got \(configuration.maxBatchSize)")
        }
        guard configuration.mmapSize >= 0 else {
            throw StoreURL.invalid("SQLite mmapSize must not be negative, got \(configuration.mmapSize)")
        }
        let table = try SQLIdentifier.validated(configuration.table)
        self.configuration = configuration
        self.logger = logger
        let current = SQLiteQueries(table: table, layout: configuration.keyLayout)

        // An in-memory database is private to its connection: everything uses the writer's.
        let path = configuration.path
        let timeout = configuration.busyTimeoutMilliseconds
        let writerConnection = try SQLiteConnection(path: path, uri: false, busyTimeoutMilliseconds: timeout)
        // Announced before the schema is read: an upgrade that rebuilds the table checks for
        // other backends inside its transaction, so one that opens meanwhile either is seen
        // or reads the schema after the upgrade committed.
        var probe: SQLiteSharingProbe?
        let version = try Self.prepareWriter(writerConnection, configuration: configuration, queries: current) {
            if !configuration.isMemory { probe = SQLiteSharingProbe(databasePath: path, logger: logger) }
        }
        // A table of an earlier version keeps its form until `session-store upgrade`.
        let queries = version == SQLiteQueries.schemaVersion
            ? current : SQLiteQueries(table: table, layout: configuration.keyLayout, version: version)
        self.queries = queries

        var readerConnections: [SQLiteTransfer<SQLiteReader>] = []
        if !configuration.isMemory {
            for index in 0..<configuration.readerCount {
                // Readers retry a busy database in the pool, with Task.sleep, not in SQLite.
                let reader = try SQLiteConnection(path: path, uri: false, busyTimeoutMilliseconds: 0)
                try Self.prepareReader(reader, configuration: configuration, queries: queries)
                readerConnections.append(SQLiteTransfer(value: try SQLiteReader(reader, loadSQL: queries.load, index: index)))
            }
            readers = SQLiteReaderPool(readerConnections, busyTimeout: configuration.busyTimeout, probe: probe)
            let checkpointConnection = try SQLiteConnection(path: path, uri: false, busyTimeoutMilliseconds: timeout)
            let checkpointer = SQLiteCheckpointer(
                connection: SQLiteTransfer(value: checkpointConnection), readers: readers, logger: logger,
                metricsLabel: "session_store_sqlite")
            self.checkpointer = checkpointer
            // The writer connection has read the database, so SQLite has mapped its WAL index;
            // no other thread uses the connection yet.
            loadCache = configuration.loadCacheSlots > 0
                ? SQLiteLoadCache(connection: writerConnection, logger: logger, slots: configuration.loadCacheSlots) : nil
            SQLiteCommitHooks.install(on: writerConnection, checkpointer: checkpointer, loadCache: loadCache)
            if let loadCache, queries.form == .slotted {
                filterBuilder = SQLiteKeyFilterBuilder(cache: loadCache, table: queries.table, logger: logger) {
                    () throws(StorageError) -> SQLiteConnection in
                    let connection = try SQLiteConnection(path: path, uri: false, busyTimeoutMilliseconds: timeout, creates: false)
                    do throws(StorageError) {
                        try connection.skipCheckpointOnClose()
                        try Self.prepareReader(connection, configuration: configuration, queries: queries)
                    } catch {
                        connection.close()
                        throw error
                    }
                    return connection
                }
            } else {
                filterBuilder = nil
            }
        } else {
            readers = nil
            checkpointer = nil
            loadCache = nil
            filterBuilder = nil
        }
        writer = SQLiteWriter(
            connection: SQLiteTransfer(value: writerConnection),
            maxBatchSize: configuration.groupCommit ? configuration.maxBatchSize : 1,
            checksFile: !configuration.isMemory,
            inlineCommits: configuration.synchronous != .full,
            checkpointer: checkpointer, loadCache: loadCache, logger: logger)
        filterBuilder?.request()
        logger.debug(
            "Opened SQLite session store",
            metadata: [
                "table": "\(table)", "readers": "\(readerConnections.count)",
                "synchronous": "\(configuration.synchronous.rawValue)",
            ])
    }

    deinit {
        filterBuilder?.stopWithoutWaiting()
        writer.shutdown()
        checkpointer?.stopWithoutWaiting()
        readers?.closeWithoutWaiting()
    }

    /// WAL checkpoints run so far (PASSIVE and TRUNCATE); for tests.
    var checkpointRuns: Int {
        guard let checkpointer else { return 0 }
        return checkpointer.passiveRuns.load(ordering: .relaxed) + checkpointer.truncateRuns.load(ordering: .relaxed)
    }

    /// TRUNCATE checkpoints run so far (escalations after checkpoint starvation); for tests.
    var truncateCheckpointRuns: Int { checkpointer?.truncateRuns.load(ordering: .relaxed) ?? 0 }
    /// Back-pressure checkpoints the writer ran itself; for tests.
    var writerCheckpointRuns: Int { checkpointer?.writerRuns.load(ordering: .relaxed) ?? 0 }

    /// The rowid of `key`'s row in a table this release created (schema version 2): its
    /// slot, which every statement matches with the key itself. For the benchmarks, which
    /// read the table directly (`@_spi(Benchmarks) import SessionStoreSQLite`); not part of
    /// the supported API.
    @_spi(Benchmarks)
    public static func slot(of key: SessionKey) -> Int64 {
        SQLiteSlot.of(key)
    }

    /// Write transactions run so far; group commit makes it smaller than the write count.
    var transactionCount: Int { writer.transactions.load(ordering: .relaxed) }

    // MARK: - StorageBackend

    /// Returns the live row for `key` from a reader connection (the writer's, in memory).
    /// - Throws: `StorageError` (`.corrupt` for a row with unexpected column types,
    ///   `.closed` after ``close()``).
    public func load(_ key: SessionKey, now: Int64) async throws -> SessionRecord? {
        try checkOpen("load")
        guard let readers else {
            let sql = queries.load
            let binding = queries.keyBinding
            let outcome = try await writer.submit(.read, operation: "load") { connection in
                let statement = try connection.statement(sql, operation: "load")
                defer { statement.reset() }
                return .record(try Self.load(key, now: now, binding: binding, with: statement))
            }
            guard case .record(let record) = outcome else { preconditionFailure("load produced no record") }
            return record
        }
        let (cached, ticket) = loadCache?.lookup(key, now: now) ?? (nil, nil)
        if let cached { return cached }
        let binding = queries.keyBinding
        let record = try await readers.withReader(operation: "load") { reader throws(StorageError) in
            try Self.load(key, now: now, binding: binding, with: reader.load)
        }
        if let record, let ticket { loadCache?.keep(record, for: key, after: ticket) }
        filterBuilder?.requestIfWanted()
        return record
    }

    /// Stores a new row, replacing an expired one; `false` when a live row exists.
    /// Returns after the group-commit transaction holding it committed.
    /// - Throws: `StorageError`.
    public func insert(_ key: SessionKey, _ record: SessionRecord) async throws -> Bool {
        guard queries.hasOwners else {
            if record.owner != nil || record.details != nil { throw ownersNeedUpgrade("insert") }
            return try await keyedWrite(
                "insert", queries.insert, key, blob: record.data, [record.version, record.createdAt, record.expiresAt])
        }
        let sql = queries.insert
        let binding = queries.keyBinding
        let cache = loadCache
        return try await write("insert", keys: [key]) { connection in
            let statement = try connection.statement(sql, operation: "insert")
            defer { statement.reset() }
            try binding.bind(key, to: statement, operation: "insert")
            try statement.bind(3, blob: record.data, operation: "insert")
            try statement.bind(4, record.version, operation: "insert")
            try statement.bind(5, record.createdAt, operation: "insert")
            try statement.bind(6, record.expiresAt, operation: "insert")
            try statement.bind(8, optionalText: record.owner, operation: "insert")
            try statement.bind(9, optionalBlob: record.details, operation: "insert")
            try statement.bind(10, record.lastSeen, operation: "insert")
            try statement.run(operation: "insert")
            // Inserted, or written over an expired row: the row is exactly `record`.
            let changes = connection.changes
            if changes == 1 { cache?.rowWritten(record, for: key) }
            return changes
        } > 0
    }

    /// Replaces a live row's data at `expectedVersion`, bumping the version and never
    /// shortening the expiry. Returns after commit.
    /// - Throws: `StorageError`.
    public func update(
        _ key: SessionKey, data: [UInt8], expectedVersion: Int64, expiresAt: Int64, now: Int64
    ) async throws -> Bool {
        try await keyedWrite(
            "update", queries.update, key, blob: data, [expiresAt, expectedVersion, now],
            change: (.update(data: data, expiresAt: expiresAt, now: now), expectedVersion: expectedVersion))
    }

    /// Reads the row and writes `decide`'s choice in one writer job: inside the single
    /// writer's transaction no other write can land in between, so the merge never retries.
    /// - Throws: `StorageError`, or what `decide` threw (nothing written).
    public func merge<Result: Sendable>(
        _ key: SessionKey, now: Int64,
        _ decide: @escaping @Sendable (SessionRecord?) throws -> (MergeWrite, Result)
    ) async throws -> Result {
        try checkOpen("merge")
        let queries = queries
        let cache = loadCache
        let box = SQLiteResultBox<Result>()
        _ = try await writer.submit(
            configuration.groupCommit ? .batched : .alone, operation: "merge", multiStatement: true, keys: [key]
        ) { connection in
            let read = try connection.statement(queries.load, operation: "merge")
            let current: SessionRecord?
            do {
                defer { read.reset() }
                current = try Self.load(key, now: now, binding: queries.keyBinding, with: read)
            }
            let (write, result) = try decide(current)
            box.value = result
            guard let current else { return .changes(0) }
            switch write {
            case .none:
                return .changes(0)
            case .replace(let data, let expiresAt):
                let statement = try connection.statement(queries.update, operation: "merge")
                defer { statement.reset() }
                try queries.keyBinding.bind(key, to: statement, operation: "merge")
                try statement.bind(3, blob: data, operation: "merge")
                try statement.bind(4, expiresAt, operation: "merge")
                try statement.bind(5, current.version, operation: "merge")
                try statement.bind(6, now, operation: "merge")
                try statement.run(operation: "merge")
                // `current` was read in this transaction: the row now stored follows from it.
                if connection.changes == 1 {
                    let change = SQLiteRowChange.update(data: data, expiresAt: expiresAt, now: now)
                    cache?.rowWritten(change.row(from: current, owners: queries.hasOwners), for: key)
                }
            case .delete:
                let statement = try connection.statement(queries.deleteVersion, operation: "merge")
                defer { statement.reset() }
                try queries.keyBinding.bind(key, to: statement, operation: "merge")
                try statement.bind(3, current.version, operation: "merge")
                try statement.run(operation: "merge")
            }
            return .changes(connection.changes)
        }
        guard let result = box.value else {
            throw StorageError(kind: .other, engine: "sqlite", operation: "merge", message: "the merge ran without a decision")
        }
        return result
    }

    /// Moves a live row's expiry forward. Returns after commit.
    /// - Throws: `StorageError`.
    public func touch(_ key: SessionKey, expiresAt: Int64, now: Int64) async throws -> Bool {
        try await keyedWrite("touch", queries.touch, key, [expiresAt, now], change: (.touch(expiresAt: expiresAt, now: now), nil))
    }

    /// Marks a row retired (version 0) and moves its expiry back. Returns after commit.
    /// - Throws: `StorageError`.
    public func retire(_ key: SessionKey, expiresAt: Int64) async throws -> Bool {
        try await keyedWrite("retire", queries.retire, key, [expiresAt])
    }

    /// Deletes a row, optionally only at `expectedVersion`. Returns after commit.
    /// - Throws: `StorageError`.
    public func delete(_ key: SessionKey, expectedVersion: Int64?) async throws -> Bool {
        if let expectedVersion {
            return try await keyedWrite("delete", queries.deleteVersion, key, [expectedVersion])
        }
        return try await keyedWrite("delete", queries.delete, key, [])
    }

    // MARK: - Owners

    /// Rewrites a live row's data, owner and details at `expectedVersion`. Returns after commit.
    /// - Throws: `StorageError` (`.schema` on a table from before schema version 3).
    public func rebind(
        _ key: SessionKey, data: [UInt8], owner: String?, details: [UInt8]?, expiresAt: Int64, expectedVersion: Int64,
        now: Int64
    ) async throws -> Bool {
        guard queries.hasOwners else { throw ownersNeedUpgrade("rebind") }
        let sql = queries.rebind
        let binding = queries.keyBinding
        return try await write("rebind") { connection in
            let statement = try connection.statement(sql, operation: "rebind")
            defer { statement.reset() }
            try binding.bind(key, to: statement, operation: "rebind")
            try statement.bind(3, blob: data, operation: "rebind")
            try statement.bind(4, expiresAt, operation: "rebind")
            try statement.bind(5, expectedVersion, operation: "rebind")
            try statement.bind(6, now, operation: "rebind")
            try statement.bind(8, optionalText: owner, operation: "rebind")
            try statement.bind(9, optionalBlob: details, operation: "rebind")
            try statement.run(operation: "rebind")
            return connection.changes
        } > 0
    }

    /// A page of `owner`'s live sessions through the owner index, read on a reader
    /// connection (the writer's, in memory).
    /// - Throws: `StorageError`.
    public func ownedSessions(
        owner: String, now: Int64, after position: OwnedRecordPosition?, limit: Int
    ) async throws -> [OwnedRecord] {
        try checkOpen("ownedSessions")
        guard queries.hasOwners else { throw ownersNeedUpgrade("ownedSessions") }
        let sql = queries.ownedSessions(afterPosition: position != nil)
        guard let readers else {
            let box = SQLiteResultBox<[OwnedRecord]>()
            _ = try await writer.submit(.read, operation: "ownedSessions") { connection in
                box.value = try Self.ownedSessions(connection, sql, owner: owner, now: now, after: position, limit: limit)
                return .changes(0)
            }
            return box.value ?? []
        }
        return try await readers.withReader(operation: "ownedSessions") { reader throws(StorageError) in
            // A lingering load keeps an older snapshot open on this connection: end it first.
            reader.load.reset()
            return try Self.ownedSessions(reader.connection, sql, owner: owner, now: now, after: position, limit: limit)
        }
    }

    private static func ownedSessions(
        _ connection: SQLiteConnection, _ sql: String, owner: String, now: Int64, after position: OwnedRecordPosition?,
        limit: Int
    ) throws(StorageError) -> [OwnedRecord] {
        let statement = try connection.statement(sql, operation: "ownedSessions")
        defer { statement.reset() }
        try statement.bind(8, text: owner, operation: "ownedSessions")
        try statement.bind(3, now, operation: "ownedSessions")
        try statement.bind(4, Int64(limit), operation: "ownedSessions")
        if let position {
            try statement.bind(5, position.createdAt, operation: "ownedSessions")
            try statement.bind(6, text: position.key.value, operation: "ownedSessions")
        }
        var rows: [OwnedRecord] = []
        while try statement.step(operation: "ownedSessions") {
            rows.append(OwnedRecord(
                key: SessionKey(value: try statement.text(0, operation: "ownedSessions")),
                createdAt: try statement.int64(1, operation: "ownedSessions"),
                lastSeen: try statement.int64(2, operation: "ownedSessions"),
                expiresAt: try statement.int64(3, operation: "ownedSessions"),
                details: statement.columnType(4) == SQLITE_NULL ? nil : try statement.blob(4, operation: "ownedSessions")))
        }
        return rows
    }

    /// Deletes up to `limit` of `owner`'s rows (only `only`, never `except`) in one
    /// statement. Returns after commit.
    /// - Throws: `StorageError`.
    public func deleteOwned(owner: String, only: SessionKey?, except: SessionKey?, limit: Int) async throws -> Int {
        guard queries.hasOwners else { throw ownersNeedUpgrade("deleteOwned") }
        let queries = queries
        return try await write("deleteOwned", addsKeys: false) { connection in
            if let only {
                let statement = try connection.statement(queries.deleteOwnedOne, operation: "deleteOwned")
                defer { statement.reset() }
                try queries.keyBinding.bind(only, to: statement, operation: "deleteOwned")
                try statement.bind(8, text: owner, operation: "deleteOwned")
                try statement.run(operation: "deleteOwned")
                return connection.changes
            }
            let statement = try connection.statement(queries.deleteOwnedBatch, operation: "deleteOwned")
            defer { statement.reset() }
            try statement.bind(8, text: owner, operation: "deleteOwned")
            try statement.bind(3, optionalText: except?.value, operation: "deleteOwned")
            try statement.bind(4, Int64(limit), operation: "deleteOwned")
            try statement.run(operation: "deleteOwned")
            return connection.changes
        }
    }

    /// Keeps `owner`'s `keep` most recently used live rows and deletes the others, in one
    /// statement on the single writer. Returns after commit.
    /// - Throws: `StorageError`.
    public func trimOwned(owner: String, keep: Int, now: Int64) async throws -> Int {
        guard queries.hasOwners else { throw ownersNeedUpgrade("trimOwned") }
        let sql = queries.trimOwned
        return try await writeStatement("trimOwned", sql, addsKeys: false) { statement in
            try statement.bind(8, text: owner, operation: "trimOwned")
            try statement.bind(3, now, operation: "trimOwned")
            try statement.bind(4, Int64(keep), operation: "trimOwned")
        }
    }

    private func ownersNeedUpgrade(_ operation: String) -> StorageError {
        StorageError(
            kind: .schema, engine: "sqlite", operation: operation,
            message: "table \(queries.table) predates session owners (schema version \(SQLiteQueries.ownersVersion)); "
                + "run `session-store upgrade` to add them")
    }

    /// Commits the queued writes, stops the writer and checkpointer threads and closes
    /// every connection (a reader lent to a load closes when it comes back); returns only
    /// when all of them are closed, so the process then holds no descriptor of the
    /// database files. A second call does nothing.
    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await filterBuilder?.stop()
        loadCache?.close()
        await writer.close()
        await checkpointer?.stop()
        await readers?.close()
        logger.debug("Closed SQLite session store", metadata: ["table": "\(queries.table)"])
    }

    // MARK: - Helpers

    /// Carries a merge decision's result from the writer thread back to the caller; written
    /// once on the writer thread before the caller's continuation resumes.
    final class SQLiteResultBox<Value>: @unchecked Sendable {  // @unchecked: handed over by the continuation
        var value: Value?
    }

    func checkOpen(_ operation: String) throws {
        if closed.load(ordering: .acquiring) { throw SQLiteConnection.closedError(operation) }
        if formChanged.load(ordering: .acquiring) {
            throw StorageError(
                kind: .schema, engine: "sqlite", operation: operation,
                message: "table \(queries.table) was upgraded to another form by this backend; open a new one")
        }
    }

    /// Queues a single-statement write and returns the rows it changed.
    /// `keys`: the rows it may change, `nil` when unknown (for the load cache).
    private func write(
        _ operation: String, mode: SQLiteJob.Mode = .batched, keys: [SessionKey]? = nil, addsKeys: Bool = true,
        _ body: @escaping @Sendable (SQLiteConnection) throws -> Int
    ) async throws -> Int {
        try checkOpen(operation)
        let effective: SQLiteJob.Mode = configuration.groupCommit ? mode : .alone
        let outcome = try await writer.submit(effective, operation: operation, keys: keys, addsKeys: addsKeys) { connection in
            .changes(try body(connection))
        }
        guard case .changes(let count) = outcome else { preconditionFailure("write produced no count") }
        return count
    }

    /// Queues one cached statement, bound by `bind`, and returns the rows it changed.
    func writeStatement(
        _ operation: String, _ sql: String, keys: [SessionKey]? = nil, addsKeys: Bool = true,
        bind: @escaping @Sendable (SQLiteStatement) throws -> Void
    ) async throws -> Int {
        try await write(operation, keys: keys, addsKeys: addsKeys) { connection in
            let statement = try connection.statement(sql, operation: operation)
            defer { statement.reset() }
            try bind(statement)
            try statement.run(operation: operation)
            return connection.changes
        }
    }

    /// Runs one write keyed like every table statement: `?1`/`?2` the key, then `blob` (if
    /// any) and `values` from `?3` on. Returns whether a row changed.
    ///
    /// `change` says what the statement does to the row it changes (and the version it
    /// matches, if any): when it changed one and the load cache held that row, still valid,
    /// as the transaction began, the cache keeps the row it left.
    private func keyedWrite(
        _ operation: String, _ sql: String, _ key: SessionKey, blob: [UInt8]? = nil, _ values: [Int64],
        change: (SQLiteRowChange, expectedVersion: Int64?)? = nil
    ) async throws -> Bool {
        let binding = queries.keyBinding
        let cache = change == nil ? nil : loadCache
        let owners = queries.hasOwners
        return try await write(operation, keys: [key]) { connection in
            let statement = try connection.statement(sql, operation: operation)
            defer { statement.reset() }
            try binding.bind(key, to: statement, operation: operation)
            var index: Int32 = 3
            if let blob {
                try statement.bind(index, blob: blob, operation: operation)
                index += 1
            }
            for value in values {
                try statement.bind(index, value, operation: operation)
                index += 1
            }
            try statement.run(operation: operation)
            let changes = connection.changes
            if changes == 1, let cache, let (change, expectedVersion) = change, let previous = cache.rowBeforeWrite(of: key),
               expectedVersion.map({ $0 == previous.version }) ?? true {
                cache.rowWritten(change.row(from: previous, owners: owners), for: key)
            }
            return changes
        } > 0
    }

    /// Runs the load's SELECT (``SQLiteQueries/load``) for `key` and copies the row out.
    /// Leaves the statement un-reset: a reader's read lock lingers until the pool resets it.
    private static func load(
        _ key: SessionKey, now: Int64, binding: SQLiteKeyBinding, with statement: SQLiteStatement
    ) throws(StorageError) -> SessionRecord? {
        try binding.bind(key, to: statement, operation: "load")
        try statement.bind(3, now, operation: "load")
        // No live row: the one row holds NULLs (a stored row's `expires_at` is never NULL,
        // or it would not have matched `expires_at > now`).
        guard try statement.step(operation: "load"), statement.columnType(3) != SQLITE_NULL else { return nil }
        var record = SessionRecord(
            data: try statement.blob(0, operation: "load"),
            version: try statement.int64(1, operation: "load"),
            createdAt: try statement.int64(2, operation: "load"),
            expiresAt: try statement.int64(3, operation: "load"))
        // A table with the owner columns (schema version 3); NULL for an unbound row.
        if statement.columnCount > 4 {
            if statement.columnType(4) != SQLITE_NULL { record.owner = try statement.text(4, operation: "load") }
            if statement.columnType(5) != SQLITE_NULL { record.details = try statement.blob(5, operation: "load") }
            if statement.columnType(6) != SQLITE_NULL { record.lastSeen = try statement.int64(6, operation: "load") }
        }
        return record
    }
}
