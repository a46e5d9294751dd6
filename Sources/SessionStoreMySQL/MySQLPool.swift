import SessionStore
import Synchronization

/// One pool entry: a worker thread and the connection only that thread touches.
final class MySQLSlot: @unchecked Sendable { // `connection` is only accessed on `worker`'s thread
    let worker: MySQLWorker
    var connection: MySQLConnection?

    init(index: Int) {
        worker = MySQLWorker(name: "SessionStoreMySQL.\(index)")
    }

    /// Runs `body` on this slot's thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable (MySQLSlot) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            worker.submit { [self] in
                continuation.resume(with: Result { try body(self) })
            }
        }
    }

    /// Closes the connection and ends the thread.
    func shutDown() {
        worker.submit { [self] in connection = nil }
        worker.stop()
    }
}

/// A fixed-size pool of slots with a bounded wait for a free one.
final class MySQLPool: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<MySQLSlot, any Error>
    }

    private struct State {
        var free: [MySQLSlot] = []
        var created = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let size: Int
    private let waitTimeout: Duration

    init(size: Int, waitTimeout: Duration) {
        precondition(size > 0, "pool size must be positive")
        self.size = size
        self.waitTimeout = waitTimeout
    }

    /// How many slots (threads, and at most as many connections) exist.
    var createdCount: Int { state.withLock { $0.created } }

    /// Takes a free slot, creating one while fewer than `size` exist, else waits up to the
    /// wait timeout.
    /// - Throws: ``StorageError`` `.poolExhausted` on timeout, `.closed` after ``close()``.
    func acquire(operation: String) async throws -> MySQLSlot {
        enum Outcome { case slot(MySQLSlot), create(Int), wait(UInt64), closed }
        let waitTimeout = waitTimeout
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<MySQLSlot, any Error>) in
            let outcome: Outcome = state.withLock { state in
                if state.closed { return .closed }
                if let slot = state.free.popLast() { return .slot(slot) }
                if state.created < size {
                    state.created += 1
                    return .create(state.created)
                }
                state.nextWaiterID += 1
                state.waiters.append(Waiter(id: state.nextWaiterID, continuation: continuation))
                return .wait(state.nextWaiterID)
            }
            switch outcome {
            case .slot(let slot):
                continuation.resume(returning: slot)
            case .create(let index):
                continuation.resume(returning: MySQLSlot(index: index))
            case .closed:
                continuation.resume(throwing: MySQLBackend.closedError(operation))
            case .wait(let id):
                Task { [self] in
                    do {
                        try await Task.sleep(for: waitTimeout)
                    } catch {
                        // Unreachable: nothing cancels this timer task; time out at once.
                    }
                    let waiter = state.withLock { state -> Waiter? in
                        guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                        return state.waiters.remove(at: index)
                    }
                    waiter?.continuation.resume(throwing: StorageError(
                        kind: .poolExhausted, engine: "mysql", operation: operation,
                        message: "all \(size) pooled connections stayed busy for \(waitTimeout); raise pool or pool_timeout"
                    ))
                }
            }
        }
    }

    /// Returns a slot taken with ``acquire(operation:)``.
    func release(_ slot: MySQLSlot) {
        enum Next { case handOver(Waiter), keep, shutDown }
        let next: Next = state.withLock { state in
            if state.closed { return .shutDown }
            if !state.waiters.isEmpty { return .handOver(state.waiters.removeFirst()) }
            state.free.append(slot)
            return .keep
        }
        switch next {
        case .handOver(let waiter): waiter.continuation.resume(returning: slot)
        case .keep: break
        case .shutDown: slot.shutDown()
        }
    }

    /// Refuses further acquires, fails waiters, and shuts free slots down; slots in use
    /// are shut down when released.
    func close(operation: String) {
        let (free, waiters) = state.withLock { state in
            state.closed = true
            defer { state.free = []; state.waiters = [] }
            return (state.free, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: MySQLBackend.closedError(operation)) }
        for slot in free { slot.shutDown() }
    }
}
