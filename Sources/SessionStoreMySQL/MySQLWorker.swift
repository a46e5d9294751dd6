import Foundation
import Synchronization

/// A dedicated thread that runs blocking client calls in order, off Swift's cooperative pool.
///
/// The thread holds the worker until it ends; ``stop()`` ends it once the queued jobs ran,
/// and `onExit` runs last on the thread, after everything it owned was released.
final class MySQLWorker: @unchecked Sendable { // `jobs` and `stopped` are guarded by `condition`
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopped = false
    private var sleeping = false
    /// Jobs queued and not yet taken, readable without the lock while the thread spins.
    private let queued = Atomic(0)

    /// How long the thread polls for the next job before it sleeps. A caller that issues
    /// call after call hands its next job over within microseconds; catching it while polling
    /// saves the kernel wake-up of a sleeping thread (bench, 1 task: median load 80-114 µs
    /// without polling, 38-46 µs with it, on a loaded 2-core machine).
    static let spin: Duration = .microseconds(50)

    private let spinners: MySQLSpinners

    init(name: String, spinners: MySQLSpinners, onExit: @escaping @Sendable () -> Void) {
        self.spinners = spinners
        let thread = Thread { [self] in
            loop()
            onExit()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Queues `job`; it runs on this worker's thread after the jobs before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        queued.add(1, ordering: .releasing)
        let wake = sleeping
        condition.unlock()
        if wake { condition.signal() }
    }

    /// Ends the thread after the queued jobs have run.
    func stop() {
        condition.lock()
        stopped = true
        condition.unlock()
        condition.signal()
    }

    private func loop() {
        let clock = ContinuousClock()
        while true {
            if Self.spin > .zero && queued.load(ordering: .acquiring) == 0 && spinners.enter() {
                let until = clock.now + Self.spin
                while queued.load(ordering: .acquiring) == 0 && clock.now < until {
                    sched_yield()
                }
                spinners.leave()
            }
            condition.lock()
            while jobs.isEmpty && !stopped {
                sleeping = true
                condition.wait()
                sleeping = false
            }
            if jobs.isEmpty && stopped {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            queued.subtract(1, ordering: .relaxed)
            condition.unlock()
            job()
        }
    }
}

/// Limits how many of a pool's workers poll at once: one polling thread catches a caller's
/// next job; more would take the cores the callers and the server need.
final class MySQLSpinners: Sendable {
    private let count = Atomic(0)
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a polling turn when fewer than the limit poll.
    func enter() -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = count.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func leave() {
        count.subtract(1, ordering: .relaxed)
    }
}
