import Dispatch
import Logging
import SessionStoreCore
import Synchronization

/// Builds the load cache's key filter (``SQLiteKeyFilter``) off the request path: reads every
/// slot of the table on a connection of its own, in short transactions of ``chunkRows`` rows
/// (a long one would keep checkpoints from copying the WAL back), and hands them to the cache,
/// which installs the filter only when nothing but this backend's own writes committed
/// meanwhile.
///
/// A build runs when the backend opens and when a load found the filter incomplete (after
/// a commit from elsewhere, or a write of rows the cache is not told that may add rows), at
/// most every ``shortestPause``, and less often while builds keep failing or their filters
/// keep being retired within a minute (a database another process writes to all along):
/// the pause doubles up to ``longestPause``, and is at least ten times the last build's
/// duration, so scanning never takes more than a tenth of one core.
final class SQLiteKeyFilterBuilder: Sendable {
    /// Rows read per transaction.
    static let chunkRows: Int64 = 4096
    static let shortestPause: Duration = .seconds(1)
    static let longestPause: Duration = .seconds(300)
    /// A filter retired sooner than this after it was installed doubles the pause.
    static let shortLife: Duration = .seconds(60)

    private struct State {
        var running = false
        var stopped = false
        var nextAllowed: ContinuousClock.Instant
        var shortestPause = SQLiteKeyFilterBuilder.shortestPause
        var pause = SQLiteKeyFilterBuilder.shortestPause
        var lastInstall: ContinuousClock.Instant?
        /// Woken when the build under way ends.
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    private let queue = DispatchQueue(label: "SessionStoreSQLite.keyFilter", qos: .utility)
    private let cache: SQLiteLoadCache
    private let sql: String
    private let open: @Sendable () throws(StorageError) -> SQLiteConnection
    private let logger: Logger
    /// Filters installed so far; for tests.
    let installs = Atomic<Int>(0)
    /// Builds that ended without a filter (refused, failed or stopped); for tests.
    let refusals = Atomic<Int>(0)
    /// Whether loads and writes start builds; tests that drive builds themselves turn it off.
    let startsBuilds = Atomic<Bool>(true)

    /// A builder for `cache` over `table` (a table with a `slot` rowid); `open` opens the
    /// read-only connection a build scans on.
    init(
        cache: SQLiteLoadCache, table: String, logger: Logger,
        open: @escaping @Sendable () throws(StorageError) -> SQLiteConnection
    ) {
        self.cache = cache
        self.sql = "SELECT slot FROM \(table) WHERE slot >= ?1 ORDER BY slot LIMIT ?2"
        self.open = open
        self.logger = logger
        self.state = Mutex(State(nextAllowed: .now))
    }

    /// Starts a build when the cache wants one and none ran too lately.
    func requestIfWanted() {
        guard cache.filterWanted.load(ordering: .relaxed) else { return }
        request()
    }

    /// Starts a build unless one runs, the builder stopped, or the pause since the last one
    /// has not passed.
    func request() {
        guard startsBuilds.load(ordering: .relaxed) else { return }
        let now = ContinuousClock.now
        let starts = state.withLock { state in
            guard !state.running, !state.stopped, now >= state.nextAllowed else { return false }
            state.running = true
            return true
        }
        guard starts else { return }
        cache.filterWanted.store(false, ordering: .relaxed)
        queue.async { self.run() }
    }

    /// Runs one build now on the caller's thread and returns whether it installed a filter
    /// (for tests; `afterScan` runs between the scan and the install).
    func buildNow(afterScan: () throws -> Void = {}) throws -> Bool {
        let began = state.withLock { state in
            guard !state.running, !state.stopped else { return false }
            state.running = true
            return true
        }
        guard began else { return false }
        defer { finished(installed: false, counted: false, started: .now) }
        return try build(afterScan: afterScan)
    }

    private func run() {
        let started = ContinuousClock.now
        let installed: Bool
        do {
            installed = try build(afterScan: {})
        } catch {
            logger.debug("SQLite key filter build failed; loads read the database meanwhile", metadata: ["error": "\(error)"])
            installed = false
        }
        finished(installed: installed, counted: true, started: started)
    }

    /// Ends a build: sets the pause before the next one and wakes ``stop()``.
    private func finished(installed: Bool, counted: Bool, started: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let waiters = state.withLock { state in
            state.running = false
            if counted {
                let shortLived = state.lastInstall.map { now - $0 < Self.shortLife } ?? false
                state.pause = installed && !shortLived
                    ? state.shortestPause : min(max(state.pause * 2, state.shortestPause), Self.longestPause)
                if installed { state.lastInstall = now }
                state.nextAllowed = now + max(state.pause, (now - started) * 10)
            }
            defer { state.idleWaiters.removeAll() }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Scans the table and installs the filter; `false` when the cache refused to begin or
    /// to install, or the builder stopped.
    private func build(afterScan: () throws -> Void) throws -> Bool {
        guard let ticket = cache.beginFilterBuild() else {
            refusals.add(1, ordering: .relaxed)
            return false
        }
        var handedOver = false
        defer {
            if !handedOver {
                cache.abandonFilterBuild()
                refusals.add(1, ordering: .relaxed)
            }
        }
        let connection = try open()
        defer { connection.close() }
        let statement = try connection.statement(sql, operation: "buildKeyFilter")
        defer { statement.reset() }
        var slots: [Int64] = []
        var from = Int64.min
        while true {
            if state.withLock({ $0.stopped }) { return false }
            try statement.bind(1, from, operation: "buildKeyFilter")
            try statement.bind(2, Self.chunkRows, operation: "buildKeyFilter")
            var read: Int64 = 0
            var last = from
            while try statement.step(operation: "buildKeyFilter") {
                last = try statement.int64(0, operation: "buildKeyFilter")
                slots.append(last)
                read += 1
            }
            // Each chunk is its own read transaction.
            statement.reset()
            guard read == Self.chunkRows, last < Int64.max else { break }
            from = last + 1
        }
        try afterScan()
        handedOver = true
        let installed = cache.finishFilterBuild(ticket, scanned: slots)
        if installed {
            installs.add(1, ordering: .relaxed)
            logger.debug("SQLite key filter built", metadata: ["rows": "\(slots.count)"])
        } else {
            refusals.add(1, ordering: .relaxed)
        }
        return installed
    }

    /// Stops starting builds and returns once the one under way (if any) ended.
    func stop() async {
        state.withLock { $0.stopped = true }
        await waitUntilIdle()
    }

    /// Returns once no build is under way.
    func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let running = state.withLock { state in
                if state.running { state.idleWaiters.append(continuation) }
                return state.running
            }
            if !running { continuation.resume() }
        }
    }

    /// Sets the shortest pause between builds and lets the next one start now (for tests).
    func setShortestPause(_ pause: Duration) {
        state.withLock { state in
            state.shortestPause = pause
            state.pause = pause
            state.nextAllowed = .now
        }
    }

    /// Stops starting builds without waiting (from `deinit`); a build under way stops at
    /// its next chunk and closes its connection.
    func stopWithoutWaiting() {
        state.withLock { $0.stopped = true }
    }
}
