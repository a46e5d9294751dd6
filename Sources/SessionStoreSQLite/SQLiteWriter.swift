import CSessionStoreSQLite
import Dispatch
import Foundation
import Logging
import SessionStoreCore
import Synchronization

/// What a queued job produced.
enum SQLiteOutcome: Sendable {
    /// Rows changed by a write.
    case changes(Int)
    /// A loaded row (in-memory databases read through the writer).
    case record(SessionRecord?)
}

/// One unit of work for the writer thread.
struct SQLiteJob: Sendable {
    enum Mode: Sendable {
        /// A single-statement write that may share a group-commit transaction.
        case batched
        /// A write that runs as its own transaction (group commit off).
        case alone
        /// A longer write that runs as its own transaction on the writer thread, never
        /// inline on a caller's (cooperative) thread: a cleanup slice.
        case background
        /// A read run outside any transaction (in-memory databases only).
        case read
    }

    let id: UInt64
    let mode: Mode
    /// Whether the body runs more than one statement (a read, then a write), so it needs a
    /// transaction even when it runs alone.
    let multiStatement: Bool
    /// The rows the write may change, `nil` when unknown (see ``SQLiteLoadCache``).
    let keys: [SessionKey]?
    /// Whether a write of unknown rows (`keys` `nil`) may add rows; `false` for deletions.
    let addsKeys: Bool
    let body: @Sendable (SQLiteConnection) throws -> SQLiteOutcome
    let continuation: CheckedContinuation<SQLiteOutcome, any Error>
}

/// Hands an object to another thread once; after the hand-over only that thread uses it.
struct SQLiteTransfer<Value>: @unchecked Sendable {  // @unchecked: ownership moves, never shared
    let value: Value
}

/// The one writer: a dedicated thread that drains a queue of jobs, committing many
/// concurrent writes in one transaction (group commit).
///
/// Callers suspend on a continuation; the thread resumes each with its own result only
/// after the transaction holding it committed. No caller's task ever blocks.
final class SQLiteWriter: Sendable {
    private struct State {
        var jobs: [SQLiteJob] = []
        var closing = false
        var paused = false
        var finished = false
        /// Whether the connection is in use: by the thread running a batch, or by a caller
        /// committing its write inline.
        var executing = false
        var nextID: UInt64 = 0
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)
    private let maxBatchSize: Int
    private let logger: Logger
    /// Whether the database lives in a file whose identity is checked before each write.
    private let checksFile: Bool
    private let fileMovedReported = Atomic<Bool>(false)
    /// Write transactions committed (or attempted); for tests and metrics.
    let transactions = Atomic<Int>(0)
    /// Writes committed inline on the caller's thread; for tests and the bench.
    let inlineCommits = Atomic<Int>(0)
    /// The connection; used only by whoever set `executing`.
    private let connection: SQLiteTransfer<SQLiteConnection>
    /// Whether a lone write may commit on the caller's thread (see ``submit``).
    private let inlineAllowed: Bool
    /// Whether the thread lets a batch fill before it commits (``gather(after:clock:)``):
    /// with group commit where commits wait for the disk.
    private let gathersBatches: Bool
    private let checkpointer: SQLiteCheckpointer?
    /// Told which rows each write transaction may change, before it begins and after it ends.
    private let loadCache: SQLiteLoadCache?

    /// Starts the writer thread, which takes ownership of `connection`.
    ///
    /// - Parameters:
    ///   - inlineCommits: Whether a write that finds the writer idle commits on the
    ///     caller's thread: no thread hand-off and no kernel wake-up for a lone save. Only
    ///     where a commit never waits for the disk (`synchronous` below FULL).
    init(
        connection: SQLiteTransfer<SQLiteConnection>, maxBatchSize: Int, checksFile: Bool, inlineCommits: Bool,
        checkpointer: SQLiteCheckpointer?, loadCache: SQLiteLoadCache?, logger: Logger
    ) {
        self.maxBatchSize = maxBatchSize
        self.logger = logger
        self.checksFile = checksFile
        self.connection = connection
        self.inlineAllowed = inlineCommits
        self.gathersBatches = !inlineCommits && maxBatchSize > 1
        self.checkpointer = checkpointer
        self.loadCache = loadCache
        startBackendThread(named: SQLiteThreadName.writer, logger: logger) { [self] in
            self.run(connection.value)
        }
    }

    /// Runs `body` as a write and returns once it committed.
    ///
    /// When the writer is idle (nothing queued, nothing running), the write commits right
    /// here on the caller's thread: a commit at `synchronous=NORMAL` is a few microseconds
    /// of CPU with no fsync, cheaper than waking the writer thread and coming back. It never
    /// waits inside SQLite there: a lock held by another process, or a WAL past its hard
    /// limit (which the writer thread checkpoints), sends the write to the queue instead.
    /// Writes that arrive while one runs queue up and share the next transaction.
    ///
    /// A task cancelled while its job still waits in the queue gets `CancellationError` and
    /// the job never runs; once the writer took the job, it runs and reports as usual (a
    /// write already on its way is never abandoned half-known).
    /// - Throws: ``StorageError`` `.closed` after ``close()``, `CancellationError`, or what
    ///   `body` threw.
    ///
    /// `keys` names the rows the write may change (`nil`: unknown), for the load cache;
    /// `addsKeys: false` says a write of unknown rows only deletes.
    func submit(
        _ mode: SQLiteJob.Mode, operation: String, multiStatement: Bool = false, keys: [SessionKey]? = nil,
        addsKeys: Bool = true,
        _ body: @escaping @Sendable (SQLiteConnection) throws -> SQLiteOutcome
    ) async throws -> SQLiteOutcome {
        if mode == .batched || mode == .alone,
           let outcome = try runInline(multiStatement: multiStatement, keys: keys, addsKeys: addsKeys, body) {
            return outcome
        }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Action { case queued, closed, cancelled }
                let action: Action = state.withLock { state in
                    guard !state.closing else { return .closed }
                    if Task.isCancelled { return .cancelled }
                    state.jobs.append(
                        SQLiteJob(
                            id: id, mode: mode, multiStatement: multiStatement, keys: keys, addsKeys: addsKeys, body: body,
                            continuation: continuation))
                    return .queued
                }
                switch action {
                case .queued: wakeup.signal()
                case .closed: continuation.resume(throwing: SQLiteConnection.closedError(operation))
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let job: SQLiteJob? = state.withLock { state in
                guard let index = state.jobs.firstIndex(where: { $0.id == id }) else { return nil }
                return state.jobs.remove(at: index)
            }
            job?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Commits `body` on the caller's thread when the writer is idle; `nil` when it is not
    /// (or the database is busy), and the write must be queued.
    private func runInline(
        multiStatement: Bool, keys: [SessionKey]?, addsKeys: Bool, _ body: @Sendable (SQLiteConnection) throws -> SQLiteOutcome
    ) throws -> SQLiteOutcome? {
        guard inlineAllowed, checkpointer?.allowsInlineCommit ?? true else { return nil }
        let taken = state.withLock { state in
            guard state.jobs.isEmpty, !state.executing, !state.closing, !state.paused else { return false }
            state.executing = true
            return true
        }
        guard taken else { return nil }
        defer { release() }
        try Task.checkCancellation()
        let connection = connection.value
        connection.failFastWhenBusy = true
        checkpointer?.inlineCommitRunning = true
        defer {
            connection.failFastWhenBusy = false
            checkpointer?.inlineCommitRunning = false
        }
        loadCache?.writeWillBegin(keys: keys, addsKeys: addsKeys)
        let result = runAlone(multiStatement: multiStatement, body, on: connection)
        let committed = if case .success = result { true } else { false }
        loadCache?.writeDidEnd(committed: committed)
        if case .failure(let error as StorageError) = result, error.kind == .busy {
            return nil  // Nothing was written: the writer thread waits for the lock instead.
        }
        inlineCommits.add(1, ordering: .relaxed)
        return try result.get()
    }

    /// Gives the connection back after an inline commit and wakes the thread for writes
    /// that queued meanwhile.
    private func release() {
        let pending = state.withLock { state in
            state.executing = false
            return !state.jobs.isEmpty || state.closing
        }
        if pending { wakeup.signal() }
    }

    /// Lets the queued jobs run, then stops the thread and closes its connection.
    /// Returns once that is done. Later submissions throw `.closed`.
    func close() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                state.closing = true
                state.paused = false
                if state.finished { return true }
                state.closeWaiters.append(continuation)
                return false
            }
            if done {
                continuation.resume()
            } else {
                wakeup.signal()
            }
        }
    }

    /// Asks the thread to stop after the queued jobs, without waiting.
    func shutdown() {
        state.withLock { state in
            state.closing = true
            state.paused = false
        }
        wakeup.signal()
    }

    /// Holds queued jobs until ``resumeForTesting()``, so tests can build a batch.
    func pauseForTesting() {
        state.withLock { $0.paused = true }
    }

    /// Releases jobs held by ``pauseForTesting()``.
    func resumeForTesting() {
        state.withLock { $0.paused = false }
        wakeup.signal()
    }

    /// Jobs waiting in the queue.
    var pendingCount: Int {
        state.withLock { $0.jobs.count }
    }

    // MARK: - Writer thread

    private enum Next {
        case jobs([SQLiteJob])
        case idle
        case stop
    }

    private func run(_ connection: SQLiteConnection) {
        let clock = ContinuousClock()
        var last = (batch: 0, duration: Duration.zero)
        while true {
            if gathersBatches && last.batch >= Self.gatherFrom { gather(after: last, clock: clock) }
            switch takeNext() {
            case .jobs(let jobs):
                let started = clock.now
                checkpointer?.copyTailIfDue(connection.database)
                execute(jobs, on: connection)
                state.withLock { $0.executing = false }
                last = (jobs.count, clock.now - started)
            case .idle:
                // Every enqueue signals once, so a signal sent after takeNext() is kept.
                wakeup.wait()
                // Writes after a pause are not the last batch's writers coming back.
                last = (0, .zero)
            case .stop:
                connection.close()
                let waiters = state.withLock { state in
                    state.finished = true
                    let waiters = state.closeWaiters
                    state.closeWaiters = []
                    return waiters
                }
                for waiter in waiters { waiter.resume() }
                return
            }
        }
    }

    /// The smallest batch after which the thread waits for the next one to fill.
    static let gatherFrom = 4

    /// Waits, briefly, for the writers of the last batch to queue their next writes when
    /// fewer than half of them have, so that they share one commit again (at
    /// `synchronous=FULL`, where each commit waits for the disk). The writers resumed after
    /// a commit reach the queue over a few hundred microseconds; taking whatever is there at
    /// once split 64 writers into a small batch and a large one, two flushes for one. The
    /// wait lasts at most a quarter of the last batch's own time (and 1 ms), so a lone
    /// writer (batches of one) never waits, and a batch that fills never does either.
    private func gather(after last: (batch: Int, duration: Duration), clock: ContinuousClock) {
        let deadline = clock.now + min(last.duration / 4, .milliseconds(1))
        while state.withLock({ $0.jobs.count }) < last.batch / 2, clock.now < deadline {
            usleep(20)
        }
    }

    /// Takes a run of batchable writes (up to `maxBatchSize`) or one other job.
    private func takeNext() -> Next {
        state.withLock { state in
            // An inline commit holds the connection; its release signals again.
            if state.executing { return .idle }
            if state.jobs.isEmpty {
                return state.closing ? .stop : .idle
            }
            if state.paused { return .idle }
            state.executing = true
            var count = 1
            if state.jobs[0].mode == .batched {
                while count < state.jobs.count, count < maxBatchSize, state.jobs[count].mode == .batched {
                    count += 1
                }
            }
            let taken = Array(state.jobs.prefix(count))
            state.jobs.removeFirst(count)
            return .jobs(taken)
        }
    }

    private func execute(_ jobs: [SQLiteJob], on connection: SQLiteConnection) {
        // Reads (in-memory databases only, which have no load cache) change no row.
        let tracking = jobs.first?.mode == .read ? nil : loadCache
        tracking?.writeWillBegin(keys: Self.keys(of: jobs), addsKeys: jobs.contains { $0.addsKeys || $0.keys != nil })
        let committed = executeWrites(jobs, on: connection)
        tracking?.writeDidEnd(committed: committed)
    }

    /// The rows a batch may change, `nil` when any job's are unknown.
    private static func keys(of jobs: [SQLiteJob]) -> [SessionKey]? {
        guard jobs.count > 1 else { return jobs.first?.keys }
        var keys: [SessionKey] = []
        for job in jobs {
            guard let jobKeys = job.keys else { return nil }
            keys += jobKeys
        }
        return keys
    }

    /// Runs `jobs` and resumes their callers; returns whether a transaction committed (a
    /// batch whose jobs failed alone still committed the others').
    private func executeWrites(_ jobs: [SQLiteJob], on connection: SQLiteConnection) -> Bool {
        guard let first = jobs.first else { return false }
        if jobs.count == 1 {
            let result = first.mode == .read
                ? Result { try first.body(connection) }
                : runAlone(multiStatement: first.multiStatement, first.body, on: connection)
            let committed = if case .success = result { true } else { false }
            first.continuation.resume(with: result)
            return committed
        }
        if checksFile, let error = fileMovedError(connection) {
            for job in jobs { job.continuation.resume(throwing: error) }
            return false
        }
        transactions.add(1, ordering: .relaxed)
        var began = false
        var rolledBack = false
        let results: [Result<SQLiteOutcome, any Error>]
        do {
            // A job that fails alone fails alone; the others commit.
            results = try connection.immediateTransaction(operation: "commit") { () throws -> [Result<SQLiteOutcome, any Error>] in
                began = true
                var results: [Result<SQLiteOutcome, any Error>] = []
                results.reserveCapacity(jobs.count)
                for job in jobs {
                    do {
                        results.append(.success(try job.body(connection)))
                    } catch {
                        // SQLite rolled the whole transaction back (disk full, I/O error):
                        // the writes already done are lost too.
                        rolledBack = connection.isAutocommit
                        if rolledBack { throw error }
                        results.append(.failure(error))
                    }
                }
                return results
            }
        } catch {
            if !began {
                logger.warning("SQLite group commit could not begin", metadata: ["error": "\(error)"])
            } else if rolledBack {
                logger.error("SQLite rolled back a group-commit batch", metadata: ["error": "\(error)"])
            } else {
                logger.error("SQLite group commit failed", metadata: ["error": "\(error)", "writes": "\(jobs.count)"])
            }
            for job in jobs { job.continuation.resume(throwing: error) }
            return false
        }
        for (job, result) in zip(jobs, results) {
            job.continuation.resume(with: result)
        }
        return true
    }

    /// Runs one write as its own transaction: a single statement needs no BEGIN/COMMIT;
    /// a read-then-write job runs inside BEGIN IMMEDIATE.
    private func runAlone(
        multiStatement: Bool, _ body: (SQLiteConnection) throws -> SQLiteOutcome, on connection: SQLiteConnection
    ) -> Result<SQLiteOutcome, any Error> {
        if checksFile, let error = fileMovedError(connection) { return .failure(error) }
        transactions.add(1, ordering: .relaxed)
        guard multiStatement else { return Result { try body(connection) } }
        return Result { try connection.immediateTransaction(operation: "write") { try body(connection) } }
    }

    /// An error when the database file was deleted, renamed or replaced since it was
    /// opened: writes would go to a file nobody will open again, so they must fail.
    private func fileMovedError(_ connection: SQLiteConnection) -> StorageError? {
        var moved: Int32 = 0
        let code = sqlite3_file_control(connection.database, "main", SQLITE_FCNTL_HAS_MOVED, &moved)
        if code != SQLITE_OK {
            return SQLiteConnection.error(database: connection.database, code: code, operation: "write", statement: nil)
        }
        guard moved != 0 else { return nil }
        let error = StorageError(
            kind: .fileMoved, engine: "sqlite", operation: "write",
            message: "the database file was deleted, renamed or replaced while the store had it open; "
                + "nothing more is written to it. Restore the file or restart the app")
        if !fileMovedReported.exchange(true, ordering: .relaxed) {
            logger.error("SQLite database file moved under the store; writes fail from now on", metadata: ["error": "\(error)"])
        }
        return error
    }
}
