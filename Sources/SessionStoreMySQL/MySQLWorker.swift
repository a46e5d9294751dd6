import Foundation

/// A dedicated thread that runs blocking client calls in order, off Swift's cooperative pool.
///
/// The thread holds the worker until it ends; ``stop()`` ends it once the queued jobs ran,
/// and `onExit` runs last on the thread, after everything it owned was released.
final class MySQLWorker: @unchecked Sendable { // `jobs` and `stopped` are guarded by `condition`
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopped = false
    private var sleeping = false

    init(name: String, onExit: @escaping @Sendable () -> Void) {
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
        while true {
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
            condition.unlock()
            job()
        }
    }
}
