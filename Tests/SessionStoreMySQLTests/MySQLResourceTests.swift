import Foundation
import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// No leaks: threads, connections and pool-wait timers end, whether the backend is
/// closed or only released.
@Suite("MySQL resources", .mysqlServer)
struct MySQLResourceTests {
    /// Waits until `done` holds, failing when it stops making progress (a hang, not a time limit).
    private static func settle(_ what: String, _ remaining: () -> Int) async throws {
        var last = remaining()
        var idle = 0
        while last > 0 {
            try await Task.sleep(for: .milliseconds(20))
            let now = remaining()
            idle = now < last ? 0 : idle + 1
            last = now
            // 1500 rounds without progress: 30 s of nothing ending.
            try #require(idle < 1500, "\(what): \(last) left and no longer going down")
        }
    }

    /// Threads of this process (other suites run alongside, so this is reported, not asserted).
    private static func processThreads() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
    }

    @Test func backendsReleasedWithoutCloseEndTheirThreadsAndConnections() async throws {
        let configuration = try MySQLTestServer.configuration(table: "released")
        let threadsBefore = try Self.processThreads()
        var resources: [MySQLResources] = []
        for _ in 0..<200 {
            let backend = try await MySQLBackend(configuration: configuration)
            #expect(backend.pool.resources.threads.load(ordering: .relaxed) == 1)
            #expect(backend.pool.resources.connections.load(ordering: .relaxed) == 1)
            resources.append(backend.pool.resources)
            // Released here, never closed.
        }
        try await Self.settle("threads of released backends") {
            resources.map { $0.threads.load(ordering: .relaxed) }.reduce(0, +)
        }
        try await Self.settle("connections of released backends") {
            resources.map { $0.connections.load(ordering: .relaxed) }.reduce(0, +)
        }
        print("MySQL resources: 200 backends released without close; process threads \(threadsBefore) before, \(try Self.processThreads()) after")
        let cleaner = try await MySQLBackend(configuration: configuration)
        try await MySQLTestServer.drop(cleaner)
        try await cleaner.close()
    }

    @Test func closeReturnsOnlyWhenEveryThreadAndConnectionEnded() async throws {
        let backend = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "closewait") { $0.poolSize = 4 })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 {
                group.addTask {
                    _ = try await backend.insert(SessionKey(value: "k\(index)"), SessionRecord(data: [1], version: 1, createdAt: 1, expiresAt: 9_000))
                }
            }
            try await group.waitForAll()
        }
        #expect(backend.pool.resources.threads.load(ordering: .relaxed) > 1)
        try await MySQLTestServer.drop(backend)
        try await backend.close()
        #expect(backend.pool.resources.threads.load(ordering: .relaxed) == 0)
        #expect(backend.pool.resources.connections.load(ordering: .relaxed) == 0)
        try await backend.close() // a second close does nothing
    }

    @Test func closeWaitsForCallsInFlight() async throws {
        let backend = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "inflight"))
        let started = Flag()
        let mayFinish = Flag()
        // The call runs until the test lets it finish, so it is in flight when close begins
        // however slowly this test's task is scheduled.
        let call = Task {
            try await backend.call("sleep", retry: .never) { connection, _ in
                started.set()
                repeat { try connection.run("DO SLEEP(0.05)") } while !mayFinish.isSet
            }
        }
        while !started.isSet { try await Task.sleep(for: .milliseconds(10)) }
        try await MySQLTestServer.drop(backend)
        let closing = Task { try await backend.close() }
        try await Task.sleep(for: .milliseconds(100))
        #expect(backend.pool.resources.threads.load(ordering: .relaxed) > 0, "close waits for the call")
        mayFinish.set()
        try await closing.value
        try await call.value // it finished rather than being cut off
        #expect(backend.pool.resources.connections.load(ordering: .relaxed) == 0)
        #expect(backend.pool.resources.threads.load(ordering: .relaxed) == 0)
    }

    @Test func poolWaitTimersEndWhenTheirWaitersAreServed() async throws {
        try await MySQLTestServer.withBackend("timers", {
            $0.poolSize = 1
            $0.poolWaitTimeout = .seconds(3600)
        }) { (backend: MySQLBackend) async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask { _ = try await backend.load(SessionKey(value: "k\(index)"), now: 1) }
                }
                try await group.waitForAll()
            }
            // Each waiter's hour-long timer was cancelled when it got the connection.
            try await Self.settle("pool-wait timers") { backend.pool.resources.timers.load(ordering: .relaxed) }
        }
    }
}
