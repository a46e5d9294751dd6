import CSessionStoreMariaDB
import Foundation
import Logging
import SessionStoreCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if os(Linux)

/// A slot's dedicated thread: runs blocking client calls in order, off Swift's cooperative
/// pool, and finishes the replies of loads its caller sent without blocking.
///
/// The thread sleeps in `epoll_wait` on an `eventfd` (jobs, stop) and, while a load is in
/// flight, its connection's socket. A load (``MySQLPendingQuery``) is sent by its caller;
/// ``wait(_:for:)`` adds the socket to the set the thread already sleeps on, so the reply
/// itself wakes the thread, once, as it wakes a thread blocked in the C client. Each slot
/// waits on its own socket, so a caller, its server thread and this thread can share a core.
///
/// The thread holds the worker until it ends; ``stop()`` ends it once the queued jobs ran,
/// and `onExit` runs last on the thread, after everything it owned was released.
final class MySQLWorker: @unchecked Sendable { // `jobs`, `stopped`, `sleeping`, `pending` are guarded by `lock`
    private let lock = NSLock()
    private var jobs: [@Sendable () -> Void] = []
    private var stopped = false
    private var sleeping = false
    /// The load whose reply the thread waits for, set by ``wait(_:for:)``.
    private var pending: MySQLPendingQuery?
    /// Jobs queued and not yet taken, readable without the lock while the thread polls.
    private let queued = Atomic(0)
    /// Whether a load waits on the socket, readable without the lock while the thread polls.
    private let armed = Atomic(false)
    private let epoll: Int32
    /// An `eventfd` that wakes the sleeping thread for a job or to stop.
    private let wakeup: Int32

    /// How long the thread polls for its next job or reply before it sleeps. A caller that
    /// issues call after call hands its next job over, or its next reply arrives, within
    /// microseconds; catching it while polling saves the kernel wake-up of a sleeping thread,
    /// which can cost more than the server's whole answer on a VM whose idle vCPUs halt
    /// (bench, 1 task: a load handed to the thread as a job, p50 80-114 µs without polling,
    /// 38-46 µs with it; one shared event-loop thread, 57 µs without, 25 µs with). A load
    /// sent by its caller to a thread asleep on its own socket measured the same either way
    /// (p50 26 µs, C client 22-26 µs, load average 10). Only one thread of a pool polls, and
    /// none while as many loads as cores are in flight (see ``MySQLSpinners``).
    static let spin: Duration = .microseconds(100)

    private let spinners: MySQLSpinners

    /// How long the thread sleeps with no load in flight: no longer than a load's read
    /// timeout, so that a load that starts waiting meanwhile has its deadline checked in
    /// time; `nil` (until woken) when loads have no timeout.
    private let idleWait: Duration?

    /// Makes the thread's `epoll` set and starts it.
    /// - Throws: ``MySQLClientError`` when `epoll` or `eventfd` cannot be had.
    init(
        name: String, spinners: MySQLSpinners, idleWait: Duration?, logger: Logger,
        onExit: @escaping @Sendable () -> Void
    ) throws(MySQLClientError) {
        self.spinners = spinners
        self.idleWait = idleWait
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw Self.systemError("epoll_create1") }
        let wakeup = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeup >= 0 else {
            let error = Self.systemError("eventfd")
            close(epoll)
            throw error
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeup
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event) == 0 else {
            let error = Self.systemError("epoll_ctl")
            close(wakeup)
            close(epoll)
            throw error
        }
        self.epoll = epoll
        self.wakeup = wakeup
        startBackendThread(named: name, stackSize: Self.stackSize, logger: logger) { [self] in
            loop()
            onExit()
        }
    }

    /// Closes the descriptors only once nothing can use them: `stop()` and `submit(_:)`
    /// write to `wakeup` after the thread may have ended, and a descriptor closed by the
    /// thread could by then be another connection's socket.
    deinit {
        close(wakeup)
        close(epoll)
    }

    /// Queues `job`; it runs on this worker's thread after the jobs before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        let wake = lock.withLock {
            jobs.append(job)
            queued.add(1, ordering: .releasing)
            return sleeping
        }
        if wake { signal() }
    }

    /// Ends the thread after the queued jobs have run and the load in flight finished.
    func stop() {
        lock.withLock { stopped = true }
        signal()
    }

    /// Has the thread continue `query`, whose caller started it on this worker's slot, once
    /// its socket is ready for `events` (`MYSQL_WAIT_*`) or its timeout passed, then resume
    /// its caller. Called by the caller after ``MySQLPendingQuery/start()``, or by the thread.
    func wait(_ query: MySQLPendingQuery, for events: Int32) {
        if events & MYSQL_WAIT_TIMEOUT != 0 {
            query.deadline = .now + .milliseconds(Int(mysql_get_timeout_value_ms(query.connection.handle)))
        } else {
            query.deadline = nil
        }
        var interest: UInt32 = EPOLLONESHOT.rawValue
        if events & MYSQL_WAIT_READ != 0 { interest |= EPOLLIN.rawValue }
        if events & MYSQL_WAIT_WRITE != 0 { interest |= EPOLLOUT.rawValue }
        if events & MYSQL_WAIT_EXCEPT != 0 { interest |= EPOLLPRI.rawValue }
        // Set before the socket is armed: the thread may see it ready at once. The deadline
        // (the read timeout from now) is never before the end of the thread's current sleep
        // (at most `idleWait`, the same timeout, from when it began).
        lock.withLock {
            pending = query
            armed.store(true, ordering: .releasing)
        }
        var event = epoll_event()
        event.events = interest
        event.data.fd = query.socket
        // A socket is added once per connection, then re-armed (one-shot) for every wait.
        let connection = query.connection
        let operation = connection.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        connection.watched = true
        var result = epoll_ctl(epoll, operation, query.socket, &event)
        if result != 0 && (errno == ENOENT || errno == EEXIST) {
            result = epoll_ctl(epoll, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, query.socket, &event)
        }
        if result != 0 {
            let error = Self.systemError("epoll_ctl")
            let unarmed = lock.withLock { () -> MySQLPendingQuery? in
                defer { pending = nil; armed.store(false, ordering: .releasing) }
                return pending
            }
            if let unarmed {
                unarmed.abandon(error)
                unarmed.finish()
            }
            return
        }
    }

    private func signal() {
        var one: UInt64 = 1
        // Fails only when the counter would overflow, which means a wake-up is pending anyway.
        _ = write(wakeup, &one, 8)
    }

    private func loop() {
        let clock = ContinuousClock()
        let capacity = 4
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while true {
            if Self.spin > .zero && queued.load(ordering: .acquiring) == 0 && spinners.enter() {
                var until = clock.now + Self.spin
                while queued.load(ordering: .acquiring) == 0 && clock.now < until && spinners.mayPoll {
                    if armed.load(ordering: .acquiring) {
                        let count = epoll_wait(epoll, events, Int32(capacity), 0)
                        if count > 0 {
                            handle(events, count: Int(count))
                            until = clock.now + Self.spin
                            continue
                        }
                    }
                    sched_yield()
                }
                spinners.leave()
            }
            lock.lock()
            if !jobs.isEmpty {
                let job = jobs.removeFirst()
                queued.subtract(1, ordering: .relaxed)
                lock.unlock()
                job()
                continue
            }
            if stopped && pending == nil {
                lock.unlock()
                return
            }
            let deadline = pending?.deadline
            sleeping = true
            lock.unlock()
            let now = clock.now
            let timeout = deadline.map { Self.milliseconds(until: $0, from: now) }
                ?? idleWait.map { Self.milliseconds(until: now + $0, from: now) } ?? -1
            let count = epoll_wait(epoll, events, Int32(capacity), timeout)
            let failure = count < 0 && errno != EINTR ? Self.systemError("epoll_wait") : nil
            lock.withLock { sleeping = false }
            if count > 0 { handle(events, count: Int(count)) }
            if deadline != nil, let query = takeExpired(at: clock.now) {
                // Connector/C gives up (a lost connection, as its blocking calls report a timeout).
                advance(query, MYSQL_WAIT_TIMEOUT)
            }
            if let failure, let query = take(socket: nil) {
                query.abandon(failure)
                query.finish()
            }
        }
    }

    private func handle(_ events: UnsafeMutablePointer<epoll_event>, count: Int) {
        for index in 0..<count {
            let event = events[index]
            if event.data.fd == wakeup {
                var value: UInt64 = 0
                _ = read(wakeup, &value, 8) // non-blocking; only drains the counter
                continue
            }
            // Nothing waits on it after a timeout, until its connection is closed.
            guard let query = take(socket: event.data.fd) else { continue }
            var ready: Int32 = 0
            if event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { ready |= MYSQL_WAIT_READ }
            if event.events & (EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { ready |= MYSQL_WAIT_WRITE }
            if event.events & EPOLLPRI.rawValue != 0 { ready |= MYSQL_WAIT_EXCEPT }
            advance(query, ready)
        }
    }

    /// Takes the waiting load when it waits on `socket` (any when `nil`).
    private func take(socket: Int32?) -> MySQLPendingQuery? {
        lock.withLock {
            guard let query = pending, socket == nil || query.socket == socket else { return nil }
            pending = nil
            armed.store(false, ordering: .releasing)
            return query
        }
    }

    /// Takes the waiting load when its deadline passed.
    private func takeExpired(at now: ContinuousClock.Instant) -> MySQLPendingQuery? {
        lock.withLock {
            guard let query = pending, let deadline = query.deadline, deadline <= now else { return nil }
            pending = nil
            armed.store(false, ordering: .releasing)
            return query
        }
    }

    private func advance(_ query: MySQLPendingQuery, _ events: Int32) {
        let next = query.resume(events)
        if next == 0 {
            query.finish()
        } else if events == MYSQL_WAIT_TIMEOUT {
            // Still waiting after its timeout: give up without the client.
            query.abandon(MySQLClientError(
                code: MySQLErrorCode.serverLost, message: "no reply from the server within the read timeout",
                statement: query.statement.sql))
            query.finish()
        } else {
            wait(query, for: next)
        }
    }

    private static func milliseconds(until deadline: ContinuousClock.Instant, from now: ContinuousClock.Instant) -> Int32 {
        guard deadline > now else { return 0 }
        // Rounded up, so the thread never wakes just before the deadline.
        let (seconds, attoseconds) = (deadline - now).components
        return Int32(clamping: max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
    }

    private static func systemError(_ call: String) -> MySQLClientError {
        MySQLClientError(code: 0, message: "\(call) failed: \(String(cString: strerror(errno)))", kind: .other)
    }
}

#else
/// A slot's dedicated thread that runs blocking client calls in order, off Swift's cooperative
/// pool (platforms without `epoll`: loads go through it like any other call).
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
    static let spin: Duration = .microseconds(100)

    private let spinners: MySQLSpinners

    init(
        name: String, spinners: MySQLSpinners, idleWait: Duration?, logger: Logger,
        onExit: @escaping @Sendable () -> Void
    ) throws(MySQLClientError) {
        self.spinners = spinners
        startBackendThread(named: name, stackSize: Self.stackSize, logger: logger) { [self] in
            loop()
            onExit()
        }
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
#endif

/// Limits how many of a pool's workers poll at once: one polling thread catches a caller's
/// next job or reply; more would take the cores the callers and the server need. None
/// polls while at least as many loads as cores are in flight: then every core is busy with
/// callers and the server, and a polling thread only takes one from them (bench, 2 tasks on
/// 2 cores, one shared event-loop thread: 2.1× the C client polling, 1.3× not).
final class MySQLSpinners: Sendable {
    private let count = Atomic(0)
    private let limit: Int
    /// Loads between their start by the caller and the caller's resumption.
    let inFlight = Atomic(0)
    private let cores = max(2, ProcessInfo.processInfo.activeProcessorCount)

    init(limit: Int) {
        self.limit = limit
    }

    /// Whether polling is worth a core now.
    var mayPoll: Bool { inFlight.load(ordering: .relaxed) < cores }

    /// Takes a polling turn when fewer than the limit poll and polling is worth it.
    func enter() -> Bool {
        guard mayPoll else { return false }
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

extension MySQLWorker {
    /// A slot thread's stack (1 MiB: it runs client calls and a poll loop).
    static let stackSize = 1 << 20
}
