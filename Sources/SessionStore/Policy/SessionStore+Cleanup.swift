import Logging
import Synchronization

struct CleanupState: Sendable {
    var running: Task<Int, any Error>?
    var background: Task<Void, Never>?
}

extension SessionStore {
    /// Deletes every session that has expired, in batches of
    /// ``SessionStoreConfiguration/cleanupBatchSize``, and returns how many it deleted.
    ///
    /// Set-based and race-free: each batch is one `DELETE ... WHERE expires_at < now`
    /// evaluated by the database at delete time, so a session saved or touched a moment
    /// earlier is never deleted. Single-flight: a call made while a cleanup of this store
    /// runs joins it and returns the same count. Stores sharing one database take a lease
    /// in the backend, so only one cleans at a time; the others return 0.
    /// - Throws: ``StorageError``, ``SessionStoreError`` `closed`.
    @discardableResult
    public func cleanup() async throws -> Int {
        try checkOpen()
        let task = cleanupState.withLock { state in
            if let running = state.running { return running }
            let task = Task<Int, any Error> {
                defer { cleanupState.withLock { $0.running = nil } }
                return try await runCleanup()
            }
            state.running = task
            return task
        }
        return try await task.value
    }

    private func runCleanup() async throws -> Int {
        let holder = instanceName
        let skew = configuration.clockSkewAllowance.milliseconds
        // Seen from a clock `skew` behind: the lease lapses for others only `skew` after
        // it ends by ours, and it still lasts its full duration by ours.
        let leased = try await logged("cleanup lease", nil) {
            try await backend.acquireCleanupLease(
                holder: holder, now: clock.now() - skew, duration: configuration.cleanupLeaseDuration.milliseconds + skew)
        }
        guard leased else {
            logger.debug("cleanup skipped: another store holds the cleanup lease")
            return 0
        }
        var total = 0
        let batchSize = configuration.cleanupBatchSize
        let result: Result<Int, any Error>
        do {
            while true {
                try Task.checkCancellation()
                let deleted = try await logged("cleanup", nil) {
                    try await backend.deleteExpired(before: clock.now() - skew, limit: batchSize)
                }
                total += deleted
                metrics.cleanupDeleted.increment(by: deleted)
                if deleted < batchSize { break }
                await Task.yield()
            }
            result = .success(total)
        } catch {
            result = .failure(error)
        }
        try await logged("cleanup lease", nil) { try await backend.releaseCleanupLease(holder: holder) }
        logger.debug("cleanup finished", metadata: ["deleted": "\(total)"])
        return try result.get()
    }

    /// Runs ``cleanup()`` every `interval` until ``shutdown()``. Failures are logged and
    /// counted, and the next round runs as scheduled; a backend closed without
    /// ``shutdown()`` ends the schedule (one warning). A second call while a schedule runs
    /// is ignored with a warning.
    ///
    /// A slow round stretches the pause after it, so background cleanup takes at most
    /// about 2% of the time whatever the interval: SQLite's
    /// cleanup reads the whole table, and every second on a table of 150k rows it took a
    /// tenth of the writer's time and 11% of a request mix's throughput. Loads never return
    /// an expired session, so rows that wait longer for cleanup change nothing an app
    /// sees. A pause never exceeds 5 minutes, or `interval` when that is longer.
    public func startBackgroundCleanup(every interval: Duration) {
        // The interval is the app's own constant, never a request's value.
        precondition(interval > .zero, "cleanup interval must be positive")
        cleanupState.withLock { state in
            guard state.background == nil else {
                logger.warning("background cleanup is already running; the second schedule is ignored")
                return
            }
            state.background = Task {
                let clock = ContinuousClock()
                var pause = interval
                while true {
                    do {
                        try await Task.sleep(for: pause)
                    } catch {
                        return  // Cancelled by shutdown(): the only error sleep throws.
                    }
                    let started = clock.now
                    defer { pause = Self.backgroundCleanupPause(after: clock.now - started, interval: interval) }
                    do {
                        _ = try await cleanup()
                    } catch let error as StorageError where error.kind == .closed {
                        // The backend was closed without this store's shutdown(): nothing
                        // will ever work again, so stop instead of failing every round.
                        logger.warning("background cleanup stopped: the backend was closed", metadata: ["error": "\(error)"])
                        return
                    } catch {
                        if isClosed.load(ordering: .relaxed) { return }
                        // Nobody awaits a background cleanup: this line is its only report.
                        logger.error("background cleanup failed; the next round runs as scheduled", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    /// The share of time background cleanup may take (see ``startBackgroundCleanup(every:)``).
    static let backgroundCleanupShare = 0.02
    /// The longest pause a slow round stretches background cleanup's interval to.
    static let backgroundCleanupLongestPause = Duration.seconds(300)

    /// The pause after a background round that took `round`: `interval`, or longer so that
    /// rounds take ``backgroundCleanupShare`` of the time, at most
    /// ``backgroundCleanupLongestPause`` unless `interval` is longer still.
    static func backgroundCleanupPause(after round: Duration, interval: Duration) -> Duration {
        let share = round * ((1 - backgroundCleanupShare) / backgroundCleanupShare)
        return max(interval, min(share, backgroundCleanupLongestPause))
    }

    /// Stops background cleanup, waits for a running cleanup, then closes the backend
    /// (which flushes pending writes). Later calls on this store throw `closed`.
    /// - Throws: ``StorageError`` from closing the backend.
    public func shutdown() async throws {
        guard !isClosed.exchange(true, ordering: .relaxed) else { return }
        let (background, running) = cleanupState.withLock { ($0.background, $0.running) }
        background?.cancel()
        await background?.value
        running?.cancel()
        if let running {
            do {
                _ = try await running.value
            } catch {
                logger.debug("cleanup ended by shutdown", metadata: ["error": "\(error)"])
            }
        }
        try await backend.close()
    }
}
