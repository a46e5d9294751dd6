#if Postgres
import SessionStore
@testable import SessionStorePostgres
import Synchronization
import Testing

/// Every call is bounded on the client side: a pooled lease waits at most `pool_timeout`
/// while nothing moves, a waiting call whose task is cancelled leaves the queue, and a
/// statement the server never answers fails after `query_timeout` and costs its connection.
/// Connections are held by test code (not by server-side sleeps), so what is waiting when is
/// forced, not left to timing; no test bounds how long anything takes.
@Suite("PostgreSQL client-side bounds")
struct PostgresClientTimeoutTests {
    /// A switch the test flips once; holders poll it.
    final class Latch: Sendable {
        private let value = Atomic(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
        func set() { value.store(true, ordering: .releasing) }
    }

    /// Holds one pooled connection until `release` is set; `holding` is set once it has it.
    static func hold(_ backend: PostgresBackend, holding: Latch, until release: Latch) -> Task<Void, any Error> {
        Task {
            try await backend.call("hold", retry: .never) { _, _ in
                holding.set()
                while !release.isSet { try await Task.sleep(for: .milliseconds(5)) }
            }
        }
    }

    /// The query timeout of the tests whose server stops answering: long enough that no
    /// statement answered on a loaded machine runs into it (the whole suite's parallel run
    /// on 2 cores saw a catalog query take more than 8 s).
    static let stalledQueryTimeout = Duration.seconds(30)

    /// Waits until `condition` holds, checking every 5 ms.
    static func waitUntil(_ condition: () -> Bool) async throws {
        while !condition() { try await Task.sleep(for: .milliseconds(5)) }
    }

    @Test func aLeaseFailsWithPoolExhaustedOnceNoConnectionCameFreeForThePoolTimeout() async throws {
        try await PostgresTestServer.withBackend("pool_exhausted", {
            $0.poolSize = 1
            $0.poolWaitTimeout = .milliseconds(300)
        }) { (backend: PostgresBackend) async throws in
            let (holding, release) = (Latch(), Latch())
            let holder = Self.hold(backend, holding: holding, until: release)
            try await Self.waitUntil { holding.isSet }
            let error = await expectStorageError(.poolExhausted) { try await backend.load(SessionKey(value: "x"), now: 0) }
            #expect(error?.operation == "load")
            #expect(error?.engine == "postgres")
            #expect(backend.pool.waiting == 0, "the call that gave up left the queue")
            #expect(backend.pool.armedTimers == 0)
            release.set()
            try await holder.value
            #expect(try await backend.load(SessionKey(value: "x"), now: 0) == nil)
            #expect(backend.pool.openConnections == 1)
        }
    }

    @Test func callsInAQueueThatKeepsMovingWaitPastThePoolTimeout() async throws {
        let timeout = Duration.seconds(10)
        let calls = 800
        try await PostgresTestServer.withBackend("pool_moving", {
            $0.poolSize = 1
            $0.poolWaitTimeout = timeout
        }) { (backend: PostgresBackend) async throws in
            // 800 calls hold the one connection 20 ms each: the last waits 16 s or more, beyond
            // the timeout, but a connection comes free every 20 ms or so (seconds, at worst,
            // on a loaded machine), so none gives up.
            let waits = try await withThrowingTaskGroup(of: Duration.self) { group in
                for _ in 0..<calls {
                    group.addTask {
                        let asked = ContinuousClock.now
                        return try await backend.call("hold", retry: .never) { _, _ in
                            let waited = ContinuousClock.now - asked
                            try await Task.sleep(for: .milliseconds(20))
                            return waited
                        }
                    }
                }
                return try await group.reduce(into: [Duration]()) { $0.append($1) }
            }
            #expect(waits.count == calls)
            #expect(waits.max().map { $0 > timeout } == true, "the longest wait, \(String(describing: waits.max())), passed the timeout")
            #expect(backend.pool.waiting == 0)
        }
    }

    @Test func aWaitingCallWhoseTaskIsCancelledLeavesTheQueue() async throws {
        try await PostgresTestServer.withBackend("pool_cancel", {
            $0.poolSize = 1
            $0.poolWaitTimeout = .seconds(3600)
        }) { (backend: PostgresBackend) async throws in
            let (holding, release) = (Latch(), Latch())
            let holder = Self.hold(backend, holding: holding, until: release)
            try await Self.waitUntil { holding.isSet }
            let waiter = Task { try await backend.load(SessionKey(value: "x"), now: 0) }
            try await Self.waitUntil { backend.pool.waiting == 1 }
            #expect(backend.pool.armedTimers == 1)
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            #expect(backend.pool.waiting == 0)
            #expect(backend.pool.armedTimers == 0, "the hour-long wait timer was cancelled with its call")
            release.set()
            try await holder.value
            #expect(try await backend.load(SessionKey(value: "x"), now: 0) == nil)
        }
    }

    /// The soak: thousands of calls cancelled while waiting (some before they queued) behind
    /// connections held for good, as an hour of impatient clients would do, leave no waiter,
    /// timer or connection behind.
    @Test func thousandsOfCancelledWaitersLeaveNoWaiterTimerOrConnectionBehind() async throws {
        try await PostgresTestServer.withBackend("pool_soak", {
            $0.poolSize = 2
            $0.poolWaitTimeout = .seconds(3600)
        }) { (backend: PostgresBackend) async throws in
            let release = Latch()
            let holders = (0..<2).map { _ in Self.hold(backend, holding: Latch(), until: release) }
            try await Self.waitUntil { backend.pool.openConnections == 2 && backend.pool.waiting == 0 }
            let (rounds, perRound) = (50, 40)
            var cancelled = 0
            for round in 0..<rounds {
                let waiters = (0..<perRound).map { index in
                    Task { try await backend.load(SessionKey(value: "r\(round)w\(index)"), now: 0) }
                }
                // Every other round cancels as soon as the calls are started, so some are
                // cancelled before they queue; the others once all queued.
                if round % 2 == 1 { try await Self.waitUntil { backend.pool.waiting == perRound } }
                for waiter in waiters { waiter.cancel() }
                for waiter in waiters {
                    await #expect(throws: CancellationError.self) { try await waiter.value }
                    cancelled += 1
                }
                #expect(backend.pool.waiting == 0, "round \(round): waiters left in the queue")
                #expect(backend.pool.armedTimers == 0, "round \(round): wait timers left armed")
                #expect(backend.pool.openConnections == 2, "round \(round): connections opened or lost")
            }
            #expect(cancelled == rounds * perRound)
            release.set()
            for holder in holders { try await holder.value }
            #expect(try await backend.load(SessionKey(value: "after"), now: 0) == nil)
            #expect(backend.pool.openConnections == 2)
            #expect(backend.connectionsOpened == 2, "the pool still serves on the same two connections")
        }
    }

    @Test func aReadTheServerNeverAnswersFailsAfterTheQueryTimeoutAndItsConnectionIsDropped() async throws {
        try await PostgresTestServer.withProxiedBackend("qt_read", {
            $0.statementTimeout = .zero
            $0.queryTimeout = Self.stalledQueryTimeout
        }) { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "k")
            #expect(try await backend.insert(key, SessionRecord(data: [1], version: 1, createdAt: 1_000, expiresAt: 1_000_000)))
            let opened = backend.connectionsOpened
            proxy.arm(CuttingProxy.parse, containing: "expires_at > $2", .stall)
            let error = await expectStorageError(.connection) { try await backend.load(key, now: 2_000) }
            #expect(error?.message.contains("query_timeout") == true, "\(String(describing: error))")
            #expect(error?.message.contains("committed") == false, "a read says nothing of commits: \(String(describing: error))")
            #expect(error?.operation == "load")
            #expect(proxy.fired == 1, "one statement stalled, and the call did not run it again")
            proxy.disarm()
            #expect(try await backend.load(key, now: 2_000)?.data == [1])
            #expect(backend.connectionsOpened == opened + 1, "the stalled connection was replaced")
            #expect(backend.pool.openConnections == 1)
        }
    }

    @Test func aWriteWhoseReplyNeverComesFailsSayingItMayOrMayNotHaveBeenCommitted() async throws {
        try await PostgresTestServer.withProxiedBackend("qt_write", {
            $0.statementTimeout = .zero
            $0.queryTimeout = Self.stalledQueryTimeout
        }) { (backend: PostgresBackend, proxy: CuttingProxy) async throws in
            let key = SessionKey(value: "k")
            #expect(try await backend.insert(key, SessionRecord(data: [1], version: 1, createdAt: 1_000, expiresAt: 1_000_000)))
            proxy.arm(CuttingProxy.parse, containing: "UPDATE", .stall)
            let error = await expectStorageError(.connection) {
                try await backend.update(key, data: [2], expectedVersion: 1, expiresAt: 1_000_000, now: 2_000)
            }
            #expect(error?.message.contains("query_timeout") == true, "\(String(describing: error))")
            #expect(error?.message.contains("may or may not have been committed") == true, "\(String(describing: error))")
            #expect(proxy.fired == 1)
            proxy.disarm()
            // The server did run it (the proxy passed the statement on and kept the answer).
            let stored = try await backend.load(key, now: 2_000)
            #expect(stored?.version == 2 && stored?.data == [2], "\(String(describing: stored))")
        }
    }

    @Test func aStatementOnAConnectionThatClosedUnderneathRunsAgainOnANewOne() async throws {
        try await PostgresTestServer.withBackend("closed_under", { $0.poolSize = 1 }) { (backend: PostgresBackend) async throws in
            _ = try await PostgresTestServer.execute(backend, "SELECT 1")
            let opened = backend.connectionsOpened
            // postgres-nio drops a query written to a closed channel without ever answering
            // it; the backend refuses to send it, and the call runs again on a new connection.
            let answer = try await backend.call("test", retry: .read) { connection, attempt in
                if !attempt.followsLostConnection { try await connection.close() }
                return try await PostgresBackend.rows(connection, "SELECT 42", []).first?.decode(Int.self)
            }
            #expect(answer == 42)
            #expect(backend.connectionsOpened == opened + 1)
        }
    }

    @Test func aWriteOnAConnectionThatClosedUnderneathIsAConnectionErrorNotAHang() async throws {
        try await PostgresTestServer.withBackend("closed_write", { $0.poolSize = 1 }) { (backend: PostgresBackend) async throws in
            let error = await expectStorageError(.connection) {
                try await backend.call("test", retry: .never) { connection, _ in
                    try await connection.close()
                    _ = try await PostgresBackend.rows(connection, "SELECT 1", [])
                }
            }
            #expect(error?.message.contains("closed before the statement was sent") == true, "\(String(describing: error))")
            #expect(try await backend.load(SessionKey(value: "x"), now: 0) == nil, "the pool replaced the connection")
        }
    }

    @Test func aServerThatAnswersInTimeKeepsItsConnection() async throws {
        try await PostgresTestServer.withBackend("qt_kept", {
            $0.poolSize = 1
            $0.statementTimeout = .zero
            $0.queryTimeout = .seconds(20)
        }) { (backend: PostgresBackend) async throws in
            for index in 0..<50 {
                #expect(try await backend.insert(
                    SessionKey(value: "k\(index)"), SessionRecord(data: [1], version: 1, createdAt: 1_000, expiresAt: 1_000_000)))
            }
            // Past every statement's deadline: one left armed would have closed the connection.
            try await Task.sleep(for: .seconds(21))
            #expect(try await backend.load(SessionKey(value: "k0"), now: 2_000)?.data == [1])
            #expect(backend.connectionsOpened == 1, "no deadline closed a connection that answered")
        }
    }
}
#endif
