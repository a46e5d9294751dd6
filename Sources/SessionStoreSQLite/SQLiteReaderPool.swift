import SessionStore
import Synchronization

/// A reader connection while it is lent to one task.
final class SQLiteReader: @unchecked Sendable {  // @unchecked: the pool lends it to one task at a time
    let connection: SQLiteConnection

    init(_ connection: SQLiteConnection) {
        self.connection = connection
    }
}

/// Reader connections shared by loads: a task checks one out, runs its SELECT inline and
/// returns it. When none is free the task suspends (it never blocks a thread).
final class SQLiteReaderPool: Sendable {
    private struct State {
        var idle: [SQLiteReader]
        var waiters: [CheckedContinuation<SQLiteReader, any Error>] = []
        var closed = false
    }

    private let state: Mutex<State>

    init(_ readers: [SQLiteTransfer<SQLiteConnection>]) {
        state = Mutex(State(idle: readers.map { SQLiteReader($0.value) }))
    }

    /// Runs `body` with a reader connection of its own.
    /// - Throws: ``StorageError`` `.closed` after ``close()``, or what `body` threw.
    func withReader<T>(operation: String, _ body: (SQLiteConnection) throws -> T) async throws -> T {
        let reader = try await checkOut(operation: operation)
        defer { checkIn(reader) }
        return try body(reader.connection)
    }

    private func checkOut(operation: String) async throws -> SQLiteReader {
        let free: SQLiteReader? = try state.withLock { state in
            guard !state.closed else { throw SQLiteBackend.closedError(operation) }
            return state.idle.popLast()
        }
        if let free { return free }
        return try await withCheckedThrowingContinuation { continuation in
            enum Action { case wait, take(SQLiteReader), fail }
            let action: Action = state.withLock { state in
                if state.closed { return .fail }
                if let reader = state.idle.popLast() { return .take(reader) }
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
        enum Action { case none, hand(CheckedContinuation<SQLiteReader, any Error>), close }
        let action: Action = state.withLock { state in
            if state.closed { return .close }
            if !state.waiters.isEmpty { return .hand(state.waiters.removeFirst()) }
            state.idle.append(reader)
            return .none
        }
        switch action {
        case .none: break
        case .hand(let waiter): waiter.resume(returning: reader)
        case .close: reader.connection.close()
        }
    }

    /// Closes idle readers now and lent ones when they come back; waiting loads fail.
    func close() {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            let taken = (state.idle, state.waiters)
            state.idle = []
            state.waiters = []
            return taken
        }
        for reader in idle { reader.connection.close() }
        for waiter in waiters { waiter.resume(throwing: SQLiteBackend.closedError("load")) }
    }
}
