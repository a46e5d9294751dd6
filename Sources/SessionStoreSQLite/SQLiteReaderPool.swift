import Dispatch
import SessionStoreCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A reader connection and its load statement; lent to one task at a time.
final class SQLiteReader: @unchecked Sendable {  // @unchecked: the pool lends it to one task at a time
    let connection: SQLiteConnection
    /// The load's SELECT, prepared once: a load does not look its statement up by SQL text
    /// (hashing ~100 bytes of SQL cost about as much as binding and stepping a hit).
    let load: SQLiteStatement
    /// Whether a task holds this reader, or the pool closed it: taken and given back with
    /// one atomic operation each, no lock shared with the other readers.
    let taken = Atomic<Bool>(false)
    /// Its place in the pool.
    let index: Int
    /// Keeps the next reader's flag out of this one's cache line: two threads loading at
    /// once then write to lines of their own.
    private let padding: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)

    /// Takes over `connection` and prepares `loadSQL` on it.
    /// - Throws: ``StorageError`` when the statement cannot be prepared.
    init(_ connection: SQLiteConnection, loadSQL: String, index: Int) throws(StorageError) {
        self.connection = connection
        self.load = try connection.statement(loadSQL, operation: "open")
        self.index = index
    }
}

/// Reader connections shared by loads: a task takes one, runs its SELECT inline and gives
/// it back. When none is free the task suspends (it never blocks a thread).
///
/// A load takes a reader with one compare-and-swap on that reader's own flag, starting
/// from a reader picked by its thread, so two threads loading at once usually keep to
/// readers of their own and share no lock or cache line (with one shared lock, the
/// store's loads from two tasks ran at up to 1.5x the naive store's time). Waiting tasks
/// queue behind a lock that only the slow path takes; while any waits, new loads queue
/// behind them, so a waiter is never overtaken for long.
///
/// Readers never wait inside SQLite: their busy handler gives up at once, and a locked
/// database (another process recovering the WAL, an exclusive lock) is retried here with
/// `Task.sleep` until the busy timeout, so no thread of Swift's cooperative pool sleeps.
///
/// **The last load's read lock lingers.** Each load is its own read transaction at the
/// newest snapshot, which takes a shared lock on a WAL read-mark in the `-shm` file. SQLite
/// makes one `fcntl` call when the first connection of the process takes that lock and one
/// when the last lets go, under a mutex shared by every connection to the file: back-to-back
/// loads paid both, about 1.5 µs of a 5 µs hit (measured with the C API: 193k → 273k hits/s
/// on one thread, 330k → 460k on two, when another connection held the lock). So a load
/// leaves its statement un-reset, which keeps its read lock, and resets the previous load's
/// statement (its own thread's, on the other reader of the thread's pair) only after its own
/// took the lock: the process then holds it across loads, and neither call is made.
///
/// The lingering snapshot is never read again (every load starts its own transaction on
/// another reader), so no load sees stale data. What a lingering lock could hold back is a
/// checkpoint or a WAL restart, hence the bounds: this backend's checkpoints and cleanups
/// pause lingering (``pauseLingering()``), a load that finds no free reader takes a
/// lingering one, a sweep ends every linger at most ``lingerLimit`` after a chain of them
/// began, and loads do not linger while another backend has the database open
/// (``SQLiteSharingProbe``).
final class SQLiteReaderPool: Sendable {
    private struct Queues {
        var waiters: [CheckedContinuation<SQLiteReader, any Error>] = []
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let readers: [SQLiteReader]
    private let closed = Atomic<Bool>(false)
    /// Tasks in ``Queues/waiters``; read by every give-back to know whether to hand over.
    private let waiting = Atomic<Int>(0)
    /// Readers whose connection is closed; ``close()`` returns when all are.
    private let closedReaders = Atomic<Int>(0)
    private let queues = Mutex(Queues())
    private let busyTimeout: Duration
    /// Per pair of readers, the index of the lingering one, or ``noLinger``. A
    /// thread loads from its own pair (``homeReader()``), so each load ends its own
    /// thread's previous linger: a connection stays with one core instead of being reset
    /// by the other thread.
    private let lingerSlots: [LingerSlot]
    private static let noLinger = -1
    /// Callers of ``pauseLingering()`` that have not resumed.
    private let lingerPauses = Atomic<Int>(0)
    /// Whether a timer will end the current chain of lingers.
    private let sweepScheduled = Atomic<Bool>(false)
    /// How long a chain of lingering read locks may last before a timer ends it; loads go on
    /// in a new chain (one pair of `fcntl` calls per chain). Each sweep wakes a timer thread
    /// and a worker: at 2 ms, a mix whose saves make loads miss ran about 500 sweeps a
    /// second, and its server switched threads 0.84-0.88 times per request against 0.78-0.80
    /// at 20 ms (`perf stat`, `Benchmarks/http`). 10 ms still bounds what a linger can hold
    /// back (another process's checkpoint, or how soon another backend is seen) to a blink.
    static let lingerLimit = DispatchTimeInterval.milliseconds(10)

    /// Whether another backend has the database open (``SQLiteSharingProbe``): loads then
    /// do not linger. Asked again by each sweep.
    private let shared: Atomic<Bool>
    private let probe: SQLiteSharingProbe?

    /// Whether the probe sees another backend with the database open (never on platforms
    /// where it cannot tell).
    var isSharedWithAnotherBackend: Bool {
        #if os(Linux)
        probe?.isShared() ?? false
        #else
        false
        #endif
    }

    /// Takes over `readers`; `probe` (closed with the last reader) tells when loads may
    /// linger, never when it is `nil`.
    init(_ readers: [SQLiteTransfer<SQLiteReader>], busyTimeout: Duration, probe: SQLiteSharingProbe?) {
        self.readers = readers.map(\.value)
        self.busyTimeout = busyTimeout
        self.probe = probe
        shared = Atomic(probe?.isShared() ?? true)
        lingerSlots = (0..<max(1, readers.count / 2)).map { _ in LingerSlot() }
        assert(self.readers.enumerated().allSatisfy { $0.offset == $0.element.index })
    }

    /// Runs `body` with a reader of its own, again after a pause while the database is
    /// busy, until the busy timeout. `body` steps the reader's load statement and leaves it
    /// un-reset: the pool resets it, at once when `body` throws, else when the next load
    /// holds the read lock (see the type's notes).
    ///
    /// When a reader is free and the database is not busy (nearly every load), this takes
    /// no lock and never suspends.
    /// - Throws: ``StorageError`` `.closed` after ``close()``, `.busy` after the timeout, or
    ///   what `body` threw.
    @inline(__always)
    func withReader<T>(operation: String, _ body: (SQLiteReader) throws(StorageError) -> T) async throws -> T {
        if let reader = try tryCheckOut(operation: operation) {
            do {
                let result = try body(reader)
                linger(reader)
                return result
            } catch where error.kind == .busy {
                release(reader)
            } catch {
                release(reader)
                throw error
            }
        }
        return try await withReaderWaiting(operation: operation, body)
    }

    /// ``withReader(operation:_:)`` when no reader was free or the database was busy:
    /// waits for a reader, and retries a busy database every millisecond until the timeout.
    private func withReaderWaiting<T>(
        operation: String, _ body: (SQLiteReader) throws(StorageError) -> T
    ) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: busyTimeout)
        while true {
            let reader = try await checkOut(operation: operation)
            do {
                let result = try body(reader)
                linger(reader)
                return result
            } catch where error.kind == .busy && clock.now < deadline {
                release(reader)
                try await Task.sleep(for: .milliseconds(1))
            } catch {
                release(reader)
                throw error
            }
        }
    }

    /// A free reader (the lingering one when no other is free), or `nil` when all are lent
    /// or tasks are already waiting for one.
    /// - Throws: ``StorageError`` `.closed` after ``close()``.
    @inline(__always)
    private func tryCheckOut(operation: String) throws(StorageError) -> SQLiteReader? {
        if waiting.load(ordering: .relaxed) == 0, let reader = takeFree(from: homeReader()) ?? takeLingering() {
            if closed.load(ordering: .sequentiallyConsistent) {
                checkIn(reader)  // closes it: the pool is closing
                throw SQLiteConnection.closedError(operation)
            }
            return reader
        }
        if closed.load(ordering: .sequentiallyConsistent) { throw SQLiteConnection.closedError(operation) }
        return nil
    }

    /// Takes the first free reader from `start` on, or `nil`.
    private func takeFree(from start: Int) -> SQLiteReader? {
        let count = readers.count
        var index = start % count
        for _ in 0..<count {
            let reader = readers[index]
            if reader.taken.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
                return reader
            }
            index = index + 1 == count ? 0 : index + 1
        }
        return nil
    }

    /// Where the calling thread starts looking: the first reader of its pair, so that a
    /// reader's connection and page cache stay with one core, and two threads (numbered in
    /// the order they first loaded) keep to pairs of their own.
    @inline(__always)
    private func homeReader() -> Int {
        (LoadingThread.number % lingerSlots.count) * 2
    }

    /// The linger slot of `reader`'s pair.
    @inline(__always)
    private func slot(of reader: SQLiteReader) -> LingerSlot {
        lingerSlots[min(reader.index / 2, lingerSlots.count - 1)]
    }

    private func checkOut(operation: String) async throws -> SQLiteReader {
        if let free = try tryCheckOut(operation: operation) { return free }
        return try await withCheckedThrowingContinuation { continuation in
            enum Action { case wait, take(SQLiteReader), fail }
            let action: Action = queues.withLock { queues in
                if closed.load(ordering: .sequentiallyConsistent) { return .fail }
                // Counted before looking, and a give-back reads the count after freeing its
                // reader: either this look sees that reader free, or that give-back sees
                // this waiter and hands it a reader.
                waiting.add(1, ordering: .sequentiallyConsistent)
                if queues.waiters.isEmpty, let reader = takeFree(from: homeReader()) ?? takeLingering() {
                    waiting.subtract(1, ordering: .sequentiallyConsistent)
                    return .take(reader)
                }
                queues.waiters.append(continuation)
                return .wait
            }
            switch action {
            case .wait: break
            case .take(let reader): continuation.resume(returning: reader)
            case .fail: continuation.resume(throwing: SQLiteConnection.closedError(operation))
            }
        }
    }

    /// Leaves `reader`'s read lock held after its load and ends the previous load's, or
    /// gives the reader back at once while lingering is paused, tasks wait or the pool closes.
    @inline(__always)
    private func linger(_ reader: SQLiteReader) {
        if lingerPauses.load(ordering: .relaxed) > 0 || waiting.load(ordering: .relaxed) > 0 {
            release(reader)
            return
        }
        if shared.load(ordering: .relaxed) {
            release(reader)
            scheduleSweep()  // which asks the probe again
            return
        }
        let previous = slot(of: reader).value.exchange(reader.index, ordering: .sequentiallyConsistent)
        if previous == Self.noLinger {
            scheduleSweep()
        } else {
            release(readers[previous])
        }
        // A pause, a waiter or ``close()`` that began meanwhile may have looked before this
        // reader lingered: it must not stay (each of them sets its flag, then ends the linger).
        if lingerPauses.load(ordering: .sequentiallyConsistent) > 0 || waiting.load(ordering: .sequentiallyConsistent) > 0
            || closed.load(ordering: .sequentiallyConsistent) {
            endLinger()
        }
    }

    /// Resets the reader's statement (ending its read transaction) and gives it back.
    @inline(__always)
    private func release(_ reader: SQLiteReader) {
        reader.load.reset()
        checkIn(reader)
    }

    /// The lingering reader, its read transaction ended, for the caller to use; `nil` when
    /// none lingers.
    private func takeLingering() -> SQLiteReader? {
        for slot in lingerSlots {
            let previous = slot.value.exchange(Self.noLinger, ordering: .sequentiallyConsistent)
            guard previous != Self.noLinger else { continue }
            let reader = readers[previous]
            reader.load.reset()
            return reader
        }
        return nil
    }

    /// Ends every read transaction lingering now and gives their readers back (one pass:
    /// loads lingering after it are another sweep's).
    private func endLinger() {
        for slot in lingerSlots {
            let previous = slot.value.exchange(Self.noLinger, ordering: .sequentiallyConsistent)
            if previous != Self.noLinger { release(readers[previous]) }
        }
    }

    /// Ends the chain of lingers ``lingerLimit`` from now, and asks the probe again whether
    /// another backend has the database open.
    @inline(__always)
    private func scheduleSweep() {
        guard !sweepScheduled.load(ordering: .relaxed),
              !sweepScheduled.exchange(true, ordering: .sequentiallyConsistent)
        else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.lingerLimit) { [weak self] in
            guard let self else { return }
            // Cleared first: a load that lingers after this line schedules the next sweep.
            self.sweepScheduled.store(false, ordering: .sequentiallyConsistent)
            self.sweeps.add(1, ordering: .relaxed)
            if !self.closed.load(ordering: .sequentiallyConsistent), let probe = self.probe {
                self.shared.store(probe.isShared(), ordering: .relaxed)
            }
            self.endLinger()
        }
    }

    /// Stops loads from lingering until ``resumeLingering()`` and ends the current linger:
    /// for this backend's checkpoints and cleanups, which need every reader of an old
    /// snapshot gone to copy the WAL back and start it over.
    func pauseLingering() {
        lingerPauses.add(1, ordering: .sequentiallyConsistent)
        endLinger()
    }

    /// Lets loads linger again after ``pauseLingering()``.
    func resumeLingering() {
        lingerPauses.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Whether a load's read transaction is open now; for tests.
    var hasLingeringRead: Bool { lingerSlots.contains { $0.value.load(ordering: .sequentiallyConsistent) != Self.noLinger } }

    /// Sweeps run so far; for tests.
    var sweepsRun: Int { sweeps.load(ordering: .relaxed) }
    private let sweeps = Atomic<Int>(0)

    @inline(__always)
    private func checkIn(_ reader: SQLiteReader) {
        if closed.load(ordering: .sequentiallyConsistent) {
            retire(reader)
            return
        }
        reader.taken.store(false, ordering: .sequentiallyConsistent)
        if closed.load(ordering: .sequentiallyConsistent) {
            // ``close()`` may have passed this reader while it was lent: whichever of the
            // two takes it now closes it.
            if reader.taken.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
                retire(reader)
            }
            return
        }
        if waiting.load(ordering: .sequentiallyConsistent) > 0 { handOver() }
    }

    /// Gives free readers to waiting tasks, first come first served.
    private func handOver() {
        let handed: [(CheckedContinuation<SQLiteReader, any Error>, SQLiteReader)] = queues.withLock { queues in
            var handed: [(CheckedContinuation<SQLiteReader, any Error>, SQLiteReader)] = []
            while !queues.waiters.isEmpty, let reader = takeFree(from: 0) {
                handed.append((queues.waiters.removeFirst(), reader))
                waiting.subtract(1, ordering: .sequentiallyConsistent)
            }
            return handed
        }
        for (waiter, reader) in handed { waiter.resume(returning: reader) }
    }

    /// Closes a reader taken for good (the pool is closing), and wakes ``close()`` when it
    /// was the last.
    private func retire(_ reader: SQLiteReader) {
        reader.connection.close()
        guard closedReaders.add(1, ordering: .sequentiallyConsistent).newValue == readers.count else { return }
        probe?.closeFile()
        let closeWaiters = queues.withLock { queues in
            defer { queues.closeWaiters = [] }
            return queues.closeWaiters
        }
        for waiter in closeWaiters { waiter.resume() }
    }

    /// Closes idle readers now and lent ones when they come back (loads take microseconds);
    /// waiting loads fail. Returns once every reader connection is closed.
    func close() async {
        await withCheckedContinuation { continuation in
            if markClosed(notifying: continuation) { continuation.resume() }
        }
    }

    /// Closes idle readers without waiting for lent ones (from `deinit`).
    func closeWithoutWaiting() {
        _ = markClosed(notifying: nil)
    }

    /// Closes the idle readers and fails the waiting loads; returns whether every reader is
    /// closed, else `waiter` is resumed when the last lent one comes back.
    private func markClosed(notifying waiter: CheckedContinuation<Void, Never>?) -> Bool {
        closed.store(true, ordering: .sequentiallyConsistent)
        endLinger()
        let failed = queues.withLock { queues in
            defer { queues.waiters = [] }
            waiting.subtract(queues.waiters.count, ordering: .sequentiallyConsistent)
            return queues.waiters
        }
        for reader in readers
        where reader.taken.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
            retire(reader)
        }
        for failedWaiter in failed { failedWaiter.resume(throwing: SQLiteConnection.closedError("load")) }
        return queues.withLock { queues in
            if closedReaders.load(ordering: .sequentiallyConsistent) == readers.count { return true }
            if let waiter { queues.closeWaiters.append(waiter) }
            return false
        }
    }
}

/// One pair's lingering reader (``SQLiteReaderPool``), padded so that two pairs' slots do
/// not share a cache line.
private final class LingerSlot: Sendable {
    let value = Atomic<Int>(-1)
    private let padding: (Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0)
}

/// Numbers threads in the order they first load from any pool.
private enum LoadingThread {
    /// The thread-specific slot holding each thread's number plus one; `nil` if the system
    /// had no key left, and every thread is then number 0 (a shared pair, still correct).
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key, nil) == 0 ? key : nil
    }()
    private static let next = Atomic<Int>(0)

    /// The calling thread's number.
    static var number: Int {
        guard let key else { return 0 }
        if let stored = pthread_getspecific(key) { return Int(bitPattern: stored) - 1 }
        let number = next.add(1, ordering: .relaxed).oldValue
        // A thread whose number cannot be stored draws a new one next time: still correct.
        _ = pthread_setspecific(key, UnsafeRawPointer(bitPattern: number + 1))
        return number
    }
}
