import Foundation

/// A dedicated thread that runs the blocking calls one task hands it, one at a time: the
/// usual way to call a blocking C client from Swift concurrency without blocking the
/// cooperative pool (each call: a condition-variable wake-up of the thread, the blocking
/// call, a continuation resumed). The MySQL loads scenario measures the C client through
/// it ("C client from a task"): what any async API over the client pays for the boundary
/// between a thread that waits for the server and a task.
///
/// The thread ends once the lane is released; what its calls created on it (the floor's
/// connection) goes with it.
final class BlockingLane: Sendable {
    private final class State: @unchecked Sendable {  // `job` and `stopped` are guarded by `condition`
        let condition = NSCondition()
        var job: (@Sendable () -> Void)?
        var stopped = false
        /// What the lane's calls keep between them (the floor's connection), used only on the thread.
        var owned: AnyObject?
    }

    private let state = State()

    init(name: String) {
        let state = state
        let thread = Thread {
            while true {
                state.condition.lock()
                while state.job == nil && !state.stopped { state.condition.wait() }
                guard let job = state.job else {
                    state.condition.unlock()
                    state.owned = nil
                    return
                }
                state.job = nil
                state.condition.unlock()
                job()
            }
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit {
        state.condition.lock()
        state.stopped = true
        state.condition.signal()
        state.condition.unlock()
    }

    /// Runs `body` on the lane's thread with what earlier calls kept there, and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable (inout AnyObject?) throws -> T) async throws -> T {
        let state = state
        return try await withCheckedThrowingContinuation { continuation in
            state.condition.lock()
            state.job = { continuation.resume(with: Result { try body(&state.owned) }) }
            state.condition.signal()
            state.condition.unlock()
        }
    }
}

/// A floor connection used by one task at a time, wherever its calls run (the blocking
/// contender of the MySQL loads scenario).
final class UncheckedFloor<Floor: FloorConnection>: @unchecked Sendable {
    let value: Floor
    init(_ value: Floor) { self.value = value }
}
