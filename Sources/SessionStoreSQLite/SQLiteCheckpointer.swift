import CSessionStoreSQLite
import CoreMetrics
import Dispatch
import Foundation
import Logging
import SessionStoreCore
import Synchronization

/// Checkpoints the WAL on a thread and connection of its own, so saves never pay for it,
/// and keeps the WAL file bounded under sustained writes.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the threshold: on
/// the writer thread, stalling every save queued behind it (measured here: 60-210 ms
/// during a cleanup, against 4-6 ms with checkpoints moved away). The writer's WAL hook
/// (``SQLiteCommitHooks``) wakes this thread instead (installing the hook turns the
/// automatic checkpoint off, so this thread is the only one that checkpoints).
///
/// Each wake-up runs a PASSIVE checkpoint: it copies what no reader still needs and never
/// blocks the writer or the readers; the next write then starts the WAL file over. When
/// readers keep the WAL from being reset and it still holds ``escalationPages`` after a
/// PASSIVE pass (checkpoint starvation), a TRUNCATE checkpoint waits for the readers of old
/// snapshots (point lookups, microseconds), holds writers back meanwhile, and empties the
/// file. `journal_size_limit` on the writer truncates a reset WAL to ``fileLimitPages``.
///
/// **Starting the WAL over under steady saves.** SQLite starts the WAL over only at a write
/// that begins with every frame copied back and no reader on a snapshot that needs one. With
/// saves committing during every pass, a pass on this thread almost never leaves that state,
/// so the WAL stayed past the threshold and every commit woke another pass (measured: a
/// pass and a WAL flush every 15 saves under saves alone). So once a
/// pass has copied all but the frames committed while it ran, the next write goes to the
/// writer thread, which copies those few frames on its own connection with lingering reads
/// paused (``copyTailIfDue(_:)``); the write after it starts the WAL over, as SQLite's own
/// automatic checkpoint would, without the bulk of the copying in a save's path.
final class SQLiteCheckpointer: Sendable {
    /// WAL pages after a commit that trigger a checkpoint (SQLite's default threshold).
    static let thresholdPages: Int32 = 1000
    /// WAL pages left after a PASSIVE checkpoint that make the checkpointer TRUNCATE.
    static let escalationPages: Int32 = 2 * thresholdPages
    /// WAL pages after a commit that make the writer itself run a TRUNCATE checkpoint
    /// before it takes the next write: back-pressure when the checkpointer cannot keep up
    /// or is starved, so the WAL file never grows much past this.
    static let hardLimitPages: Int32 = 4 * thresholdPages
    /// WAL pages at which a running cleanup stops deleting until this thread has copied
    /// the WAL back, then starts it over itself (``paceCleanup(patience:)``). While a
    /// cleanup runs it is the one that restarts the WAL, so this thread does not escalate to
    /// a TRUNCATE (which would hold saves back); the writer's ``hardLimitPages`` stays the
    /// last resort, a cleanup slice and the tail well below it.
    static let cleanupPacePages: Int32 = escalationPages + thresholdPages / 2

    /// WAL pages after a commit that wake this thread while a cleanup runs.
    static let cleanupWakePages: Int32 = thresholdPages / 4

    /// The most frames a paced cleanup leaves for ``copyTail(_:)`` to copy on the writer's
    /// connection when it can: frames committed during a pass beyond these are copied by
    /// another pass on this thread first (at most ``tailRounds`` more).
    static let tailPages: Int32 = 16
    /// Extra passes ``paceCleanup(patience:)`` runs to bring the tail under ``tailPages``.
    static let tailRounds = 4

    /// WAL pages a WAL file that was started over is truncated back to
    /// (`journal_size_limit`): as many as a paced cleanup lets it hold. With the limit at
    /// ``thresholdPages``, the commit that started the WAL over also truncated the file
    /// each time a cleanup or a rekey had paced it (3.5 ms at the median and up to 48 ms
    /// of a save's time during a rekey of 1M rows), and the next pages grew it again.
    static let fileLimitPages: Int32 = cleanupPacePages + thresholdPages / 2

    /// Whether the WAL is past ``cleanupPacePages``: a cleanup's next slice is then one of
    /// ``SQLiteCleanupSlicer/minRows``, since a slice that failed to start the WAL over
    /// (a reader held its old end) only makes it grow.
    var pastCleanupPace: Bool { lastPages.load(ordering: .relaxed) >= Self.cleanupPacePages }

    /// What a checkpoint pass ``requestCheckpoint()`` waited for found.
    enum PassOutcome: Sendable, Equatable {
        /// Every frame the pass saw was copied back and flushed to disk; `behind` frames
        /// committed while it ran remain.
        case copied(behind: Int32)
        /// Frames remain that a reader of an old snapshot still needs, or the checkpoint
        /// failed (logged by the pass).
        case incomplete
        /// The checkpointer has stopped.
        case stopped
    }

    private struct State {
        var stopping = false
        var finished = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        /// Callers of ``requestCheckpoint()`` waiting for the next pass to end.
        var passWaiters: [CheckedContinuation<PassOutcome, Never>] = []
    }

    private let wakeup = DispatchSemaphore(value: 0)
    private let pending = Atomic<Bool>(false)
    private let state = Mutex(State())
    /// Checkpoints run so far, by mode; for tests.
    let passiveRuns = Atomic<Int>(0)
    let truncateRuns = Atomic<Int>(0)
    let writerRuns = Atomic<Int>(0)
    let tailRuns = Atomic<Int>(0)
    /// Tail copies the writer ran to start the WAL over under steady saves; for tests.
    let restartTailRuns = Atomic<Int>(0)
    private let logger: Logger
    /// The backend's readers, whose lingering read lock (``SQLiteReaderPool``) each
    /// checkpoint and cleanup pauses: it would keep the WAL from being copied or started over.
    private let readers: SQLiteReaderPool?
    private let writerCounter: Counter
    private let walPagesGauge: Gauge
    private let checkpointCounter: Counter
    private let truncateCounter: Counter
    private let failureCounter: Counter

    /// Starts the thread, which takes ownership of `connection`.
    init(connection: SQLiteTransfer<SQLiteConnection>, readers: SQLiteReaderPool?, logger: Logger, metricsLabel: String) {
        self.readers = readers
        walPagesGauge = Gauge(label: "\(metricsLabel)_wal_pages")
        checkpointCounter = Counter(label: "\(metricsLabel)_checkpoints_total", dimensions: [("mode", "passive")])
        truncateCounter = Counter(label: "\(metricsLabel)_checkpoints_total", dimensions: [("mode", "truncate")])
        writerCounter = Counter(label: "\(metricsLabel)_checkpoints_total", dimensions: [("mode", "writer")])
        self.logger = logger
        failureCounter = Counter(label: "\(metricsLabel)_checkpoint_failures_total")
        // A connection that has never read reports -1/-1 and copies nothing (SQLite 3.40.1).
        // It reads here, while the backend opens, not when the thread first runs: by then
        // the file may be gone, which the writer reports (once) on its own.
        do {
            try connection.value.execute("SELECT count(*) FROM sqlite_master", operation: "checkpoint")
        } catch {
            logger.error("SQLite checkpointer cannot read the database; the WAL will not be checkpointed", metadata: ["error": "\(error)"])
        }
        startBackendThread(named: SQLiteThreadName.checkpointer, logger: logger) { [self] in
            self.run(connection.value)
        }
    }

    /// WAL pages after the last commit; 0 once the writer copied them all back (the next
    /// write starts the WAL over).
    private let lastPages = Atomic<Int32>(0)
    /// Cleanups running; while there is one, passes do not escalate to TRUNCATE.
    private let cleanups = Atomic<Int>(0)
    /// Set while a cleanup restarts the WAL: only passes it asked for run, so that its own
    /// copy of the last frames on the writer's connection finds no checkpoint running.
    private let holdPasses = Atomic<Bool>(false)
    private let inlineRunning = Atomic<Bool>(false)
    /// Set by a pass that copied all but a short tail: the writer copies the tail before its
    /// next write (``copyTailIfDue(_:)``), so that write starts the WAL over.
    private let tailDue = Atomic<Bool>(false)

    /// Set while a write commits on a caller's thread, where the back-pressure checkpoint
    /// must not run (it may wait); the writer thread runs it at its next commit.
    var inlineCommitRunning: Bool {
        get { inlineRunning.load(ordering: .relaxed) }
        set { inlineRunning.store(newValue, ordering: .relaxed) }
    }

    /// Whether writes may commit on callers' threads: not while the writer is to copy the
    /// WAL's tail (a flush, kept off callers' threads), nor past three quarters of the hard
    /// limit, where the writer thread checkpoints.
    var allowsInlineCommit: Bool {
        !tailDue.load(ordering: .relaxed) && lastPages.load(ordering: .relaxed) < Self.hardLimitPages / 4 * 3
    }

    /// Called by the writer's WAL hook (``SQLiteCommitHooks``) after a commit, on the writer
    /// thread or an inline caller's.
    func walGrew(to pages: Int32, writer database: OpaquePointer?) {
        lastPages.store(pages, ordering: .relaxed)
        if pages >= Self.hardLimitPages, !inlineRunning.load(ordering: .relaxed), let database {
            // SQLite's own auto-checkpoint runs from this hook the same way.
            writerCheckpoint(database)
            return
        }
        // During a cleanup, copying starts early so that little is left when it pauses.
        let threshold = cleanups.load(ordering: .relaxed) > 0 ? Self.cleanupWakePages : Self.thresholdPages
        // While the writer is to copy the tail, another pass would only hold it off.
        guard pages >= threshold, !tailDue.load(ordering: .relaxed), !pending.exchange(true, ordering: .relaxed) else { return }
        wakeup.signal()
    }

    /// The writer's back-pressure checkpoint: waits for a checkpoint of the checkpointer
    /// thread to end (SQLite lets one run at a time and does not wait for it) and for
    /// readers of old snapshots (busy timeout), then copies every page back and empties the
    /// WAL file. Saves queue meanwhile; none fails for it.
    private func writerCheckpoint(_ database: OpaquePointer) {
        readers?.pauseLingering()
        defer { readers?.resumeLingering() }
        var walPages: Int32 = 0
        var copied: Int32 = 0
        var code = SQLITE_BUSY
        for attempt in 0..<Self.writerCheckpointAttempts {
            if attempt > 0 { usleep(1000) }
            code = sqlite3_wal_checkpoint_v2(database, nil, SQLITE_CHECKPOINT_TRUNCATE, &walPages, &copied)
            if code != SQLITE_BUSY || walPages >= 0 { break }
        }
        writerRuns.add(1, ordering: .relaxed)
        writerCounter.increment()
        if code == SQLITE_OK { lastPages.store(0, ordering: .relaxed) }
        record(code, mode: "writer", walPages: walPages, copied: copied, database: database)
    }

    /// How many times (1 ms apart) the writer tries to start its checkpoint while the
    /// checkpointer thread runs one.
    static let writerCheckpointAttempts = 5000

    /// Stops the thread after a checkpoint in progress and closes its connection; returns
    /// when both are done. Safe to call more than once.
    func stop() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                state.stopping = true
                if state.finished { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if done {
                continuation.resume()
            } else {
                wakeup.signal()
            }
        }
    }

    /// Stops the thread without waiting (from `deinit`).
    func stopWithoutWaiting() {
        state.withLock { $0.stopping = true }
        wakeup.signal()
    }

    private func run(_ connection: SQLiteConnection) {
        while true {
            wakeup.wait()
            if state.withLock({ $0.stopping }) { break }
            pending.store(false, ordering: .relaxed)
            let passWaiters = state.withLock { state in
                defer { state.passWaiters = [] }
                return state.passWaiters
            }
            if passWaiters.isEmpty, holdPasses.load(ordering: .acquiring) { continue }
            var result = checkpoint(connection, mode: SQLITE_CHECKPOINT_PASSIVE)
            if let pages = result?.walPages, pages >= Self.escalationPages, cleanups.load(ordering: .relaxed) == 0 {
                result = checkpoint(connection, mode: SQLITE_CHECKPOINT_TRUNCATE)
            }
            // Saves alone (no cleanup pacing the WAL, which restarts it itself): copy what
            // they committed during the pass too, then leave the writer the last frames.
            let restarts = passWaiters.isEmpty && cleanups.load(ordering: .relaxed) == 0
            var rounds = 0
            while restarts, rounds < Self.tailRounds, let last = result, last.walPages > 0, last.copied >= last.walPages,
                  lastPages.load(ordering: .relaxed) - last.copied > Self.tailPages {
                rounds += 1
                result = checkpoint(connection, mode: SQLITE_CHECKPOINT_PASSIVE)
            }
            if let pages = result?.walPages { walPagesGauge.record(Int64(pages)) }
            var outcome = PassOutcome.incomplete
            if let result, result.copied >= result.walPages {
                // Flushed here, the pass's pages cost the tail copy that follows (a waiting
                // cleanup's, or the writer's) nothing.
                if !passWaiters.isEmpty || (restarts && result.walPages > 0) { flush(connection) }
                outcome = .copied(behind: max(0, lastPages.load(ordering: .relaxed) - result.copied))
                if restarts && result.walPages > 0 { tailDue.store(true, ordering: .relaxed) }
            }
            for waiter in passWaiters { waiter.resume(returning: outcome) }
        }
        connection.close()
        let (waiters, passWaiters) = state.withLock { state in
            state.finished = true
            defer {
                state.stopWaiters = []
                state.passWaiters = []
            }
            return (state.stopWaiters, state.passWaiters)
        }
        for waiter in passWaiters { waiter.resume(returning: .stopped) }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs a checkpoint pass on this thread (after the one running, if any) and returns
    /// what it found.
    func requestCheckpoint() async -> PassOutcome {
        await withCheckedContinuation { continuation in
            let stopped = state.withLock { state in
                if state.stopping || state.finished { return true }
                state.passWaiters.append(continuation)
                return false
            }
            if stopped {
                continuation.resume(returning: .stopped)
                return
            }
            pending.store(true, ordering: .relaxed)
            wakeup.signal()
        }
    }

    /// Runs `body` as a cleanup: meanwhile passes leave restarting the WAL to the cleanup's
    /// pacing instead of escalating to a TRUNCATE that holds saves back.
    func whileCleaning<T>(_ body: () async throws -> T) async rethrows -> T {
        cleanups.add(1, ordering: .relaxed)
        readers?.pauseLingering()
        defer {
            readers?.resumeLingering()
            cleanups.subtract(1, ordering: .relaxed)
        }
        return try await body()
    }

    /// Holds a cleanup back while the WAL is past ``cleanupPacePages`` until this thread
    /// has copied it back; returns `true` when the cleanup's next slice must copy the few
    /// frames committed meanwhile (``copyTail(_:)``, which also lets passes run again) so
    /// that its write starts the WAL over.
    ///
    /// A cleanup writes the WAL faster than anything else. Unpaced, it outruns this thread
    /// until the WAL reaches ``hardLimitPages`` and the writer runs a TRUNCATE checkpoint
    /// itself, with every save queued behind it (measured: a 155-230 ms stall). Paced, the
    /// copying overlaps the cleanup's slices up to ``cleanupPacePages`` and only the rest
    /// is waited for (one pass, with no other pass started meanwhile, then more while the
    /// frames committed during the last one exceed ``tailPages``; each flushed to disk on
    /// this thread). The WAL restarts only when a write begins with every frame copied,
    /// which steady saves (committing during every pass) would rarely allow; so the last
    /// frames are copied on the writer's own connection, between two writes, by the slice
    /// that restarts the WAL.
    /// While a reader of an old snapshot keeps frames from being copied, the cleanup waits
    /// (1-10 ms apart) for at most `patience`, then goes on: the writer's back-pressure
    /// still bounds the WAL.
    /// - Throws: `CancellationError` when the waiting task is cancelled.
    func paceCleanup(patience: Duration) async throws -> Bool {
        guard lastPages.load(ordering: .relaxed) >= Self.cleanupPacePages else { return false }
        holdPasses.store(true, ordering: .releasing)
        var holding = true
        defer { if holding { holdPasses.store(false, ordering: .releasing) } }
        let clock = ContinuousClock()
        let deadline = clock.now + patience
        var pause = Duration.milliseconds(1)
        var rounds = 0
        while true {
            switch await requestCheckpoint() {
            case .copied(let behind) where behind > Self.tailPages && rounds < Self.tailRounds:
                // The saves (and the cleanup's writes in flight) committed while the pass ran
                // would make the tail long: copy them here too.
                rounds += 1
                continue
            case .copied:
                holding = false  // Released by copyTail(_:), after the copy.
                return true
            case .stopped: return false
            case .incomplete: break
            }
            guard clock.now < deadline else {
                logger.debug("cleanup goes on with the WAL not copied back", metadata: ["walPages": "\(lastPages.load(ordering: .relaxed))"])
                return false
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(10))
        }
    }

    /// Copies the WAL's last frames back on the writer's connection, just before a cleanup
    /// slice writes, so that the slice starts the WAL over. Runs on the writer thread; only
    /// after ``paceCleanup(patience:)`` returned `true`, when the checkpointer already copied
    /// and flushed all but the frames committed since (about ``tailPages`` at most), so the
    /// saves queued behind this copy wait for little more than its two flushes. A failure
    /// is logged and counted like the thread's own; the slice goes on regardless.
    func copyTail(_ database: OpaquePointer) {
        defer { releasePasses() }
        tailRuns.add(1, ordering: .relaxed)
        // Until the next write starts the WAL over, the cleanup must not pace again for the
        // old size: that ran a pass and a flush beside the restarting commit and paused the
        // cleanup for it.
        _ = checkpointOnWriter(database, mode: "cleanup tail")
    }

    /// A PASSIVE checkpoint on the writer's connection, counted and logged as `mode`. When
    /// it copied every frame, the next write starts the WAL over (its commit then reports the
    /// new size), so the WAL counts as empty until then. Returns SQLite's result code and
    /// whether the checkpoint started at all (not when another one was running).
    private func checkpointOnWriter(_ database: OpaquePointer, mode: String) -> (code: Int32, started: Bool) {
        var walPages: Int32 = 0
        var copied: Int32 = 0
        let code = sqlite3_wal_checkpoint_v2(database, nil, SQLITE_CHECKPOINT_PASSIVE, &walPages, &copied)
        checkpointCounter.increment()
        record(code, mode: mode, walPages: walPages, copied: copied, database: database)
        if code == SQLITE_OK, walPages >= 0, copied >= walPages { lastPages.store(0, ordering: .relaxed) }
        return (code, walPages >= 0)
    }

    /// Copies the WAL's last frames back on the writer's connection when a pass left them
    /// for it, with lingering reads paused meanwhile, so that the write about to run starts
    /// the WAL over (a lingering read of an older snapshot would keep it from that). Runs on
    /// the writer thread, between two writes; the pass already flushed what it copied, so
    /// this costs the few frames and two small flushes. When another checkpoint was running
    /// (a pass woken before this was due, another process's), the next write tries again; a
    /// reader of an old snapshot that kept frames from being copied leaves the WAL to grow
    /// until the next commit past the threshold wakes a pass. Failures are logged and
    /// counted like the thread's own.
    func copyTailIfDue(_ database: OpaquePointer) {
        guard tailDue.load(ordering: .relaxed), tailDue.exchange(false, ordering: .relaxed),
              cleanups.load(ordering: .relaxed) == 0,
              lastPages.load(ordering: .relaxed) >= Self.thresholdPages  // else started over already
        else { return }
        readers?.pauseLingering()
        defer { readers?.resumeLingering() }
        restartTailRuns.add(1, ordering: .relaxed)
        let (code, started) = checkpointOnWriter(database, mode: "tail")
        if code == SQLITE_BUSY && !started { tailDue.store(true, ordering: .relaxed) }
    }

    /// Whether passes are held for a cleanup's WAL restart; for tests.
    var passesHeld: Bool { holdPasses.load(ordering: .acquiring) }

    /// Lets passes run again after ``paceCleanup(patience:)`` returned `true`: done by
    /// ``copyTail(_:)``, or by the cleanup when its slice never ran (cancelled, closed).
    func releasePasses() {
        holdPasses.store(false, ordering: .releasing)
    }

    /// Runs one checkpoint and returns the pages in the WAL file, copied back or not, and
    /// the pages copied so far (`-1` when it did not finish; `nil` when it failed): a WAL
    /// that readers keep from being reset grows even when every page was copied.
    private func checkpoint(_ connection: SQLiteConnection, mode: Int32) -> (walPages: Int32, copied: Int32)? {
        readers?.pauseLingering()
        defer { readers?.resumeLingering() }
        var walPages: Int32 = 0
        var copied: Int32 = 0
        let truncate = mode == SQLITE_CHECKPOINT_TRUNCATE
        let code = sqlite3_wal_checkpoint_v2(connection.database, nil, mode, &walPages, &copied)
        if truncate { truncateRuns.add(1, ordering: .relaxed) } else { passiveRuns.add(1, ordering: .relaxed) }
        (truncate ? truncateCounter : checkpointCounter).increment()
        guard let pages = record(code, mode: truncate ? "truncate" : "passive", walPages: walPages, copied: copied, database: connection.database) else {
            return nil
        }
        return (pages, code == SQLITE_OK ? copied : -1)
    }

    /// Flushes the WAL and the database file to disk on this thread, after a pass a
    /// cleanup waits for. A PASSIVE checkpoint flushes the database file only when no
    /// commit landed while it copied, which steady saves rarely allow; the next checkpoint
    /// that copies anything flushes it, and that was the cleanup's copy of the last frames
    /// on the writer's connection (``copyTail(_:)``), with every save queued behind it. It
    /// flushed the pass's scattered pages (up to ``cleanupPacePages``): during a rekey of 1M
    /// rows it took 24 ms at p90 and up to 109 ms, the saves' worst stalls. A failure is
    /// logged and counted; the tail's own checkpoint flushes again.
    private func flush(_ connection: SQLiteConnection) {
        for (file, control) in [("WAL", SQLITE_FCNTL_JOURNAL_POINTER), ("database", SQLITE_FCNTL_FILE_POINTER)] {
            let code = csessionstore_sqlite3_sync_file(connection.database, control, SQLITE_SYNC_NORMAL)
            guard code != SQLITE_OK else { continue }
            failureCounter.increment()
            let error = SQLiteConnection.error(database: connection.database, code: code, operation: "checkpoint", statement: nil)
            logger.error("SQLite checkpointer could not flush the \(file) file", metadata: ["error": "\(error)"])
        }
    }

    /// Logs a checkpoint's result and returns the WAL's pages, `nil` after a failure. BUSY is
    /// expected (a reader or the writer held on); anything else is logged as an error, since
    /// nobody else hears of it (the next commit past the threshold tries again).
    @discardableResult
    private func record(_ code: Int32, mode: String, walPages: Int32, copied: Int32, database: OpaquePointer) -> Int32? {
        switch code {
        case SQLITE_OK:
            logger.debug("SQLite WAL checkpoint", metadata: ["mode": "\(mode)", "walPages": "\(walPages)", "copied": "\(copied)"])
            return walPages
        case SQLITE_BUSY:
            logger.debug("SQLite WAL checkpoint could not finish: busy", metadata: ["mode": "\(mode)", "walPages": "\(walPages)"])
            return walPages >= 0 ? walPages : nil
        default:
            failureCounter.increment()
            let error = SQLiteConnection.error(database: database, code: code, operation: "checkpoint", statement: nil)
            logger.error("SQLite WAL checkpoint failed", metadata: ["mode": "\(mode)", "error": "\(error)"])
            return nil
        }
    }
}
