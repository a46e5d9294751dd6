#if os(Linux)
import CSessionStoreMariaDB
import Foundation
import Glibc
import Synchronization

/// One thread that waits on the sockets of a pool's loads in flight (`epoll`) and finishes
/// each reply with Connector/C's non-blocking calls, then resumes its caller.
///
/// A load's caller sends the request itself (``MySQLPendingQuery/start()``, which never
/// blocks), so a load costs one thread wake-up, this loop's, where a hand-off to a pool
/// worker and back cost two or three; when several replies arrive together, one wake-up
/// serves them all. The loop never blocks but in `epoll_wait`.
final class MySQLEventLoop: Sendable {
    private struct State {
        /// Queries waiting on their socket, by socket.
        var waiting: [Int32: MySQLPendingQuery] = [:]
        var stopping = false
        /// Set by the thread as it ends: nothing may wait any more.
        var ended = false
    }

    private let epoll: Int32
    /// An `eventfd` that wakes the loop when it must stop.
    private let wakeup: Int32
    private let state = Mutex(State())
    /// How long the loop sleeps with nothing in flight: no longer than the shortest timeout a
    /// query may ask for (Connector/C's read timeout), so that a query that starts waiting
    /// meanwhile has its deadline checked in time; `nil` (forever) when there is none.
    private let idleWait: Duration?

    /// How long the loop polls for the next reply after its last one before it sleeps in
    /// `epoll_wait`, while fewer loads than cores are in flight. Waking a sleeping thread on
    /// an idle core costs more than the server's whole answer on a VM whose idle vCPUs halt
    /// (bench, 1 task: store hit p50 57 µs without polling, 25 µs with it, C client 20 µs);
    /// with as many loads as cores, the cores are busy and polling would only take one from
    /// the callers and the server (2 tasks on 2 cores: 2.1× the C client polling, 1.3×
    /// without).
    static let spin: Duration = .microseconds(100)

    /// Loads between their start and their caller's resumption (kept by the pool).
    let inFlight = Atomic(0)
    private let pollBelow = max(2, ProcessInfo.processInfo.activeProcessorCount)

    /// Makes the loop's `epoll` set; ``start(name:onExit:)`` starts its thread.
    /// - Throws: ``MySQLClientError`` when `epoll` or `eventfd` cannot be had.
    init(idleWait: Duration?) throws(MySQLClientError) {
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
        self.idleWait = idleWait
    }

    /// Starts the thread; `onExit` runs last on it, after it closed its descriptors.
    func start(name: String, onExit: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            run()
            close(self.wakeup)
            close(self.epoll)
            onExit()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Has the loop continue `query` once its socket is ready for `events` (`MYSQL_WAIT_*`)
    /// or its timeout passed, then resume its caller. Called by the query's caller after
    /// ``MySQLPendingQuery/start()``, or by the loop itself.
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
        let socket = query.socket
        // Registered before the socket is armed: the loop may see it ready at once.
        let accepted = state.withLock { state -> Bool in
            guard !state.ended else { return false }
            state.waiting[socket] = query
            return true
        }
        guard accepted else {
            query.abandon(MySQLClientError(
                code: MySQLErrorCode.serverGone, message: "the pool's event loop has ended", statement: query.statement.sql))
            query.finish()
            return
        }
        var event = epoll_event()
        event.events = interest
        event.data.fd = socket
        // A socket is added once per connection, then re-armed (one-shot) for every wait.
        // Set before arming: once armed, the loop may own the query (and its connection).
        let operation = query.connection.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        query.connection.watched = true
        var result = epoll_ctl(epoll, operation, socket, &event)
        if result != 0 && (errno == ENOENT || errno == EEXIST) {
            result = epoll_ctl(epoll, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, socket, &event)
        }
        guard result == 0 else {
            let error = Self.systemError("epoll_ctl")
            let removed = state.withLock { $0.waiting.removeValue(forKey: socket) }
            if let removed {
                removed.abandon(error)
                removed.finish()
            }
            return
        }
    }

    /// Ends the thread once no query waits any more.
    func stop() {
        state.withLock { $0.stopping = true }
        var one: UInt64 = 1
        // Fails only when the counter would overflow, which means a wake-up is pending anyway.
        _ = write(wakeup, &one, 8)
    }

    private func run() {
        let capacity = 64
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        let clock = ContinuousClock()
        var pollUntil = clock.now
        while true {
            let timeout: Int32? = state.withLock { state in
                if state.stopping && state.waiting.isEmpty {
                    state.ended = true
                    return nil
                }
                let now = ContinuousClock.now
                var nearest: ContinuousClock.Instant?
                for query in state.waiting.values {
                    if let deadline = query.deadline, nearest.map({ deadline < $0 }) ?? true { nearest = deadline }
                }
                if let nearest { return Self.milliseconds(until: nearest, from: now) }
                return idleWait.map { Self.milliseconds($0) } ?? -1
            }
            guard let timeout else { return }
            let polling = timeout != 0 && inFlight.load(ordering: .relaxed) < pollBelow && clock.now < pollUntil
            let count = epoll_wait(epoll, events, Int32(capacity), polling ? 0 : timeout)
            if count == 0 && polling {
                sched_yield() // the server or a caller may need this core more
                continue
            }
            if count > 0 { pollUntil = clock.now + Self.spin }
            if count < 0 {
                guard errno == EINTR else {
                    failAll(Self.systemError("epoll_wait"))
                    continue
                }
            }
            for index in 0..<max(0, Int(count)) {
                let event = events[index]
                let socket = event.data.fd
                if socket == wakeup {
                    var value: UInt64 = 0
                    _ = read(wakeup, &value, 8) // non-blocking; only drains the counter
                    continue
                }
                guard let query = state.withLock({ $0.waiting.removeValue(forKey: socket) }) else { continue }
                var ready: Int32 = 0
                if event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { ready |= MYSQL_WAIT_READ }
                if event.events & (EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { ready |= MYSQL_WAIT_WRITE }
                if event.events & EPOLLPRI.rawValue != 0 { ready |= MYSQL_WAIT_EXCEPT }
                advance(query, ready)
            }
            let now = ContinuousClock.now
            let expired = state.withLock { state -> [MySQLPendingQuery] in
                let sockets = state.waiting.compactMap { socket, query in
                    query.deadline.map { $0 <= now } == true ? socket : nil
                }
                return sockets.compactMap { state.waiting.removeValue(forKey: $0) }
            }
            for query in expired {
                // Connector/C gives up (a lost connection, as its blocking calls report a timeout).
                advance(query, MYSQL_WAIT_TIMEOUT)
            }
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

    /// `epoll_wait` itself failed: no waiting query can be served.
    private func failAll(_ error: MySQLClientError) {
        let all = state.withLock { state -> [MySQLPendingQuery] in
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for query in all {
            query.abandon(error)
            query.finish()
        }
        if all.isEmpty { usleep(1000) } // do not spin on a failing epoll_wait
    }

    private static func milliseconds(until deadline: ContinuousClock.Instant, from now: ContinuousClock.Instant) -> Int32 {
        deadline <= now ? 0 : milliseconds(deadline - now)
    }

    /// Rounded up, so the loop never wakes just before a deadline.
    private static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let millis = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: max(0, millis))
    }

    private static func systemError(_ call: String) -> MySQLClientError {
        MySQLClientError(
            code: 0, message: "\(call) failed: \(String(cString: strerror(errno)))", kind: .other)
    }
}
#endif
