import SessionStore
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
    /// Keeps the next reader's flag out of this one's cache line: two threads loading at
    /// once then write to lines of their own.
    private let padding: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)

    /// Takes over `connection` and prepares `loadSQL` on it.
    /// - Throws: ``StorageError`` when the statement cannot be prepared.
    init(_ connection: SQLiteConnection, loadSQL: String) throws(StorageError) {
        self.connection = connection
        self.load = try connection.statement(loadSQL, operation: "open")
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

    init(_ readers: [SQLiteTransfer<SQLiteReader>], busyTimeout: Duration) {
        self.readers = readers.map(\.value)
        self.busyTimeout = busyTimeout
    }

    /// Runs `body` with a reader of its own, again after a pause while the database is
    /// busy, until the busy timeout.
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
                checkIn(reader)
                return result
            } catch where error.kind == .busy {
                checkIn(reader)
            } catch {
                checkIn(reader)
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
                checkIn(reader)
                return result
            } catch where error.kind == .busy && clock.now < deadline {
                checkIn(reader)
                try await Task.sleep(for: .milliseconds(1))
            } catch {
                checkIn(reader)
                throw error
            }
        }
    }

    /// A free reader, or `nil` when all are lent or tasks are already waiting for one.
    /// - Throws: ``StorageError`` `.closed` after ``close()``.
    @inline(__always)
    private func tryCheckOut(operation: String) throws(StorageError) -> SQLiteReader? {
        if waiting.load(ordering: .relaxed) == 0, let reader = takeFree(from: Self.threadHint()) {
            if closed.load(ordering: .sequentiallyConsistent) {
                checkIn(reader)  // closes it: the pool is closing
                throw SQLiteBackend.closedError(operation)
            }
            return reader
        }
        if closed.load(ordering: .sequentiallyConsistent) { throw SQLiteBackend.closedError(operation) }
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

    /// Where the calling thread starts looking: the same reader for the same thread while
    /// it is free, so a reader's connection and page cache stay with one core.
    @inline(__always)
    private static func threadHint() -> Int {
        #if canImport(Darwin)
        let thread = UInt64(UInt(bitPattern: pthread_self()))
        #else
        let thread = UInt64(pthread_self())
        #endif
        return Int(truncatingIfNeeded: (thread &* 0x9E37_79B9_7F4A_7C15) >> 33)
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
                if queues.waiters.isEmpty, let reader = takeFree(from: Self.threadHint()) {
                    waiting.subtract(1, ordering: .sequentiallyConsistent)
                    return .take(reader)
                }
                queues.waiters.append(continuation)
                return .wait
            }
            switch action {
            case .wait: break
            case .take(let reader): continuation.resume(returning: reader)
            case .fail: continuation.resume(throwing: SQLiteBackend.closedError(operation))
            }
        }
    }

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
        let failed = queues.withLock { queues in
            defer { queues.waiters = [] }
            waiting.subtract(queues.waiters.count, ordering: .sequentiallyConsistent)
            return queues.waiters
        }
        for reader in readers
        where reader.taken.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
            retire(reader)
        }
        for failedWaiter in failed { failedWaiter.resume(throwing: SQLiteBackend.closedError("load")) }
        return queues.withLock { queues in
            if closedReaders.load(ordering: .sequentiallyConsistent) == readers.count { return true }
            if let waiter { queues.closeWaiters.append(waiter) }
            return false
        }
    }
}
