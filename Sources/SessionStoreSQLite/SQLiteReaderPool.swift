import SessionStore
import Synchronization

/// A reader connection while it is lent to one task, with its load statement.
final class SQLiteReader: @unchecked Sendable {  // @unchecked: the pool lends it to one task at a time
    let connection: SQLiteConnection
    /// The load's SELECT, prepared once: a load does not look its statement up by SQL text
    /// (hashing ~100 bytes of SQL cost about as much as binding and stepping a hit).
    let load: SQLiteStatement

    /// Takes over `connection` and prepares `loadSQL` on it.
    /// - Throws: ``StorageError`` when the statement cannot be prepared.
    init(_ connection: SQLiteConnection, loadSQL: String) throws(StorageError) {
        self.connection = connection
        self.load = try connection.statement(loadSQL, operation: "open")
    }
}

/// Reader connections shared by loads: a task checks one out, runs its SELECT inline and
/// returns it. When none is free the task suspends (it never blocks a thread).
///
/// Readers never wait inside SQLite: their busy handler gives up at once, and a locked
/// database (another process recovering the WAL, an exclusive lock) is retried here with
/// `Task.sleep` until the busy timeout, so no thread of Swift's cooperative pool sleeps.
final class SQLiteReaderPool: Sendable {
    private struct State {
        var idle: [SQLiteReader]
        var lent = 0
        var waiters: [CheckedContinuation<SQLiteReader, any Error>] = []
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private let state: Mutex<State>
    private let busyTimeout: Duration

    init(_ readers: [SQLiteTransfer<SQLiteReader>], busyTimeout: Duration) {
        state = Mutex(State(idle: readers.map(\.value)))
        self.busyTimeout = busyTimeout
    }

    /// Runs `body` with a reader of its own, again after a pause while the database is
    /// busy, until the busy timeout.
    ///
    /// When a reader is free and the database is not busy (nearly every load), this takes
    /// one lock to check the reader out and one to return it, and never suspends.
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

    /// A free reader, or `nil` when all are lent.
    /// - Throws: ``StorageError`` `.closed` after ``close()``.
    private func tryCheckOut(operation: String) throws(StorageError) -> SQLiteReader? {
        let reader: SQLiteReader?? = state.withLock { state in
            guard !state.closed else { return nil }
            guard let reader = state.idle.popLast() else { return .some(nil) }
            state.lent += 1
            return reader
        }
        guard let reader else { throw SQLiteBackend.closedError(operation) }
        return reader
    }

    private func checkOut(operation: String) async throws -> SQLiteReader {
        if let free = try tryCheckOut(operation: operation) { return free }
        return try await withCheckedThrowingContinuation { continuation in
            enum Action { case wait, take(SQLiteReader), fail }
            let action: Action = state.withLock { state in
                if state.closed { return .fail }
                if let reader = state.idle.popLast() {
                    state.lent += 1
                    return .take(reader)
                }
                state.waiters.append(continuation)
                return .wait
            }
            switch action {
            case .wait: break
            case .take(let reader): continuation.resume(returning: reader)
            case .fail: continuation.resume(throwing: SQLiteBackend.closedError(operation))
            }
        }
    }

    private func checkIn(_ reader: SQLiteReader) {
        enum Action { case none, hand(CheckedContinuation<SQLiteReader, any Error>), close([CheckedContinuation<Void, Never>]) }
        let action: Action = state.withLock { state in
            if state.closed {
                state.lent -= 1
                guard state.lent == 0 else { return .close([]) }
                defer { state.closeWaiters = [] }
                return .close(state.closeWaiters)
            }
            if !state.waiters.isEmpty { return .hand(state.waiters.removeFirst()) }
            state.lent -= 1
            state.idle.append(reader)
            return .none
        }
        switch action {
        case .none: break
        case .hand(let waiter): waiter.resume(returning: reader)
        case .close(let closeWaiters):
            reader.connection.close()
            for waiter in closeWaiters { waiter.resume() }
        }
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

    /// Closes the idle readers and fails the waiting loads; returns whether no reader is
    /// lent, else `waiter` is resumed when the last one comes back.
    private func markClosed(notifying waiter: CheckedContinuation<Void, Never>?) -> Bool {
        let (idle, waiters, done) = state.withLock { state in
            state.closed = true
            let taken = (state.idle, state.waiters, state.lent == 0)
            state.idle = []
            state.waiters = []
            if !taken.2, let waiter { state.closeWaiters.append(waiter) }
            return taken
        }
        for reader in idle { reader.connection.close() }
        for waiter in waiters { waiter.resume(throwing: SQLiteBackend.closedError("load")) }
        return done
    }
}
