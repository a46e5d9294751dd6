import SessionStoreCore
@testable import SessionStoreMySQL
import Synchronization
import Testing

private func record(_ text: String, version: Int64 = 1, createdAt: Int64 = 1_000, expiresAt: Int64) -> SessionRecord {
    SessionRecord(data: Array(text.utf8), version: version, createdAt: createdAt, expiresAt: expiresAt)
}

/// A flag one task sets and another reads.
final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}

@Suite("MySQL backend", .mysqlServer)
struct MySQLBackendTests {
    // MARK: Opening

    @Test func wrongPasswordIsAccessError() async throws {
        var configuration = try MySQLTestServer.configuration(table: "pw")
        configuration.password = "not-the-password-\(UInt32.random(in: 0...UInt32.max))"
        let password = configuration.password!
        let error = await expectStorageError(.access) { try await MySQLBackend(configuration: configuration) }
        let text = "\(try #require(error))"
        #expect(text.contains("wrong user name or password"))
        #expect(!text.contains(password))
        #expect(error?.code == 1045)
    }

    @Test func missingDatabaseIsAccessError() async throws {
        var configuration = try MySQLTestServer.configuration(table: "db")
        configuration.database = "no_such_db_\(UInt32.random(in: 0...UInt32.max))"
        let error = await expectStorageError(.access) { try await MySQLBackend(configuration: configuration) }
        let text = "\(try #require(error))"
        #expect(text.contains("no such database") || text.contains("may not use database"), "\(text)")
        #expect(!text.contains(configuration.password ?? "\u{0}"))
    }

    @Test func unreachableServerIsConnectionError() async throws {
        var configuration = try MySQLTestServer.configuration(table: "unreachable")
        configuration.host = "127.0.0.1"
        configuration.port = 1
        configuration.connectTimeout = .seconds(2)
        let error = await expectStorageError(.connection) { try await MySQLBackend(configuration: configuration) }
        let text = "\(try #require(error))"
        #expect(text.contains("127.0.0.1:1"))
        #expect(!text.contains(configuration.password ?? "\u{0}"))
    }

    @Test func poolSizeOutOfRangeIsAConfigurationError() async throws {
        var configuration = try MySQLTestServer.configuration(table: "poolsize")
        configuration.poolSize = 0
        await #expect(throws: SessionStoreError.self) { try await MySQLBackend(configuration: configuration) }
    }

    @Test func openedThroughFactoryURL() async throws {
        var url = try StoreURL(try #require(MySQLTestServer.url) + "?table=\(MySQLTestServer.uniqueTable("factory"))&pool=2")
        let backend = try await StorageBackendFactory.mysql.makeBackend(&url, logger: .init(label: "test"))
        try url.checkAllTaken()
        let mysql = try #require(backend as? MySQLBackend)
        #expect(mysql.configuration.poolSize == 2)
        try await MySQLTestServer.drop(mysql)
        try await backend.close()
    }

    // MARK: Schema

    @Test(arguments: [(KeyLayout.idOnly, false), (.idOnly, true), (.checksumAndID, false), (.checksumAndID, true)])
    func schemaHasPrimaryKeyAndCaseSensitiveIDs(layout: KeyLayout, autoIncrement: Bool) async throws {
        try await MySQLTestServer.withBackend("schema", {
            $0.keyLayout = layout
            $0.autoIncrementPrimaryKey = autoIncrement
        }) { (backend: MySQLBackend) async throws in
            let table = backend.configuration.table
            let engine = try await MySQLTestServer.rows(backend,
                "SELECT engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '\(table)'")
            #expect(engine.first?.first == "InnoDB")
            let keys = try await MySQLTestServer.rows(backend,
                "SELECT index_name, column_name, non_unique FROM information_schema.statistics "
                    + "WHERE table_schema = DATABASE() AND table_name = '\(table)' ORDER BY index_name, seq_in_index")
            let primary = keys.filter { $0[0] == "PRIMARY" }.map { $0[1] ?? "" }
            let unique = keys.filter { $0[0] == "session_key" }.map { $0[1] ?? "" }
            let layoutColumns = layout == .checksumAndID ? ["crc32", "id"] : ["id"]
            if autoIncrement {
                #expect(primary == ["row_id"])
                #expect(unique == layoutColumns)
            } else {
                #expect(primary == layoutColumns)
            }
            #expect(keys.contains { $0[0] == "expires_at" && $0[1] == "expires_at" })
            // Every session_store table has a primary key (Galera, Group Replication).
            for name in ["session_store_schema", "session_store_lease"] {
                let rows = try await MySQLTestServer.rows(backend,
                    "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() "
                        + "AND table_name = '\(name)' AND index_name = 'PRIMARY'")
                #expect(rows.first?.first == "1", "\(name) has a primary key")
            }
            // base64url ids differ by case only: both rows coexist.
            #expect(try await backend.insert(SessionKey(value: "AbCdEf"), record("upper", expiresAt: 10_000)))
            #expect(try await backend.insert(SessionKey(value: "abcdef"), record("lower", expiresAt: 10_000)))
            #expect(try await backend.load(SessionKey(value: "AbCdEf"), now: 2_000)?.data == Array("upper".utf8))
            #expect(try await backend.load(SessionKey(value: "abcdef"), now: 2_000)?.data == Array("lower".utf8))
            #expect(try await backend.load(SessionKey(value: "ABCDEF"), now: 2_000) == nil)
        }
    }

    @Test func reopeningWithAnotherLayoutIsSchemaError() async throws {
        try await MySQLTestServer.withBackend("layout") { (backend: MySQLBackend) async throws in
            var other = backend.configuration
            other.keyLayout = .checksumAndID
            await expectStorageError(.schema) { try await MySQLBackend(configuration: other) }
            let same = try await MySQLBackend(configuration: backend.configuration)
            try await same.close()
        }
    }

    // MARK: Operations

    @Test(arguments: [KeyLayout.idOnly, .checksumAndID])
    func insertAndLoad(layout: KeyLayout) async throws {
        try await MySQLTestServer.withBackend("insert", { $0.keyLayout = layout }) { (backend: MySQLBackend) async throws in
            let key = SessionKey(value: "session-one")
            let big = [UInt8]((0..<100_000).map { UInt8(truncatingIfNeeded: $0) })
            #expect(try await backend.insert(key, SessionRecord(data: big, version: 1, createdAt: 1_000, expiresAt: 5_000)))
            #expect(try await backend.load(key, now: 1_500) == SessionRecord(data: big, version: 1, createdAt: 1_000, expiresAt: 5_000))
            // A live row is left alone.
            #expect(try await !backend.insert(key, record("other", createdAt: 4_999, expiresAt: 9_000)))
            #expect(try await backend.load(key, now: 1_500)?.data == big)
            // Expired at 5_000: expiresAt <= now is expired.
            #expect(try await backend.load(key, now: 5_000) == nil)
            // An expired row is replaced, every column.
            #expect(try await backend.insert(key, record("fresh", createdAt: 5_000, expiresAt: 9_000)))
            #expect(try await backend.load(key, now: 5_001) == record("fresh", createdAt: 5_000, expiresAt: 9_000))
            // Empty data round-trips.
            let empty = SessionKey(value: "empty")
            #expect(try await backend.insert(empty, SessionRecord(data: [], version: 1, createdAt: 1, expiresAt: 9_000)))
            #expect(try await backend.load(empty, now: 2)?.data == [])
        }
    }

    @Test func updateChecksVersionAndExpiry() async throws {
        try await MySQLTestServer.withBackend("update") { (backend: MySQLBackend) async throws in
            let key = SessionKey(value: "u1")
            #expect(try await !backend.update(key, data: [1], expectedVersion: 1, expiresAt: 9_000, now: 1_000))
            #expect(try await backend.insert(key, record("v1", expiresAt: 5_000)))
            #expect(try await !backend.update(key, data: [2], expectedVersion: 2, expiresAt: 9_000, now: 1_000))
            #expect(try await backend.update(key, data: [2], expectedVersion: 1, expiresAt: 4_000, now: 1_000))
            var loaded = try #require(try await backend.load(key, now: 1_000))
            #expect(loaded.data == [2])
            #expect(loaded.version == 2)
            #expect(loaded.expiresAt == 5_000, "expiry never moves backwards on update")
            #expect(try await backend.update(key, data: [3], expectedVersion: 2, expiresAt: 7_000, now: 1_000))
            loaded = try #require(try await backend.load(key, now: 1_000))
            #expect(loaded.version == 3)
            #expect(loaded.expiresAt == 7_000)
            #expect(try await !backend.update(key, data: [4], expectedVersion: 3, expiresAt: 9_000, now: 7_000), "expired")
        }
    }

    @Test func touchIsMonotonicAndRetireOnlyMovesBack() async throws {
        try await MySQLTestServer.withBackend("touch") { (backend: MySQLBackend) async throws in
            let key = SessionKey(value: "t1")
            #expect(try await !backend.touch(key, expiresAt: 9_000, now: 1_000))
            #expect(try await backend.insert(key, record("x", expiresAt: 5_000)))
            #expect(try await backend.touch(key, expiresAt: 6_000, now: 1_000))
            #expect(try await !backend.touch(key, expiresAt: 6_000, now: 1_000), "same expiry: nothing changed")
            #expect(try await !backend.touch(key, expiresAt: 4_000, now: 1_000), "never backwards")
            #expect(try await backend.load(key, now: 1_000)?.expiresAt == 6_000)
            #expect(try await !backend.touch(key, expiresAt: 9_000, now: 6_000), "expired rows are not touched")
            #expect(try await backend.load(key, now: 1_000)?.version == 1, "touch does not change the version")

            let other = SessionKey(value: "r1")
            #expect(try await backend.insert(other, record("y", expiresAt: 5_000)))
            #expect(try await backend.retire(other, expiresAt: 8_000), "version set to 0")
            #expect(try await backend.load(other, now: 1_000) == record("y", version: 0, createdAt: 1_000, expiresAt: 5_000), "never forwards")
            #expect(try await backend.retire(other, expiresAt: 2_000))
            #expect(try await backend.retire(other, expiresAt: 3_000), "the row exists: true although nothing changes")
            #expect(try await backend.load(other, now: 1_999)?.version == 0)
            #expect(try await backend.load(other, now: 2_000) == nil)
            #expect(try await !backend.update(other, data: [1], expectedVersion: 1, expiresAt: 9_000, now: 1_000), "retired rows are not rewritten")
            #expect(try await !backend.retire(SessionKey(value: "missing"), expiresAt: 1))
        }
    }

    @Test func deleteWithAndWithoutVersion() async throws {
        try await MySQLTestServer.withBackend("delete") { (backend: MySQLBackend) async throws in
            let key = SessionKey(value: "d1")
            #expect(try await backend.insert(key, record("x", version: 3, expiresAt: 5_000)))
            #expect(try await !backend.delete(key, expectedVersion: 2))
            #expect(try await backend.delete(key, expectedVersion: 3))
            #expect(try await !backend.delete(key, expectedVersion: nil))
            #expect(try await backend.insert(key, record("x", expiresAt: 5_000)))
            #expect(try await backend.delete(key, expectedVersion: nil))
            #expect(try await backend.load(key, now: 1_000) == nil)
        }
    }

    @Test func deleteExpiredInBatchesAtExactlyTheCutOffGiven() async throws {
        try await MySQLTestServer.withBackend("cleanup") { (backend: MySQLBackend) async throws in
            // 25 rows expired long ago, 5 expiring exactly at `now`, 5 live.
            for index in 0..<25 {
                #expect(try await backend.insert(SessionKey(value: "old\(index)"), record("o", createdAt: 0, expiresAt: 100_000)))
            }
            let now: Int64 = 1_000_000
            for index in 0..<5 {
                #expect(try await backend.insert(SessionKey(value: "edge\(index)"), record("r", createdAt: 0, expiresAt: now)))
                #expect(try await backend.insert(SessionKey(value: "live\(index)"), record("l", createdAt: 0, expiresAt: now + 30_000)))
            }
            var batches: [Int] = []
            while true {
                let deleted = try await backend.deleteExpired(before: now, limit: 10)
                batches.append(deleted)
                if deleted < 10 { break }
            }
            #expect(batches == [10, 10, 5])
            let remaining = try await MySQLTestServer.rows(backend, "SELECT COUNT(*) FROM `\(backend.configuration.table)`")
            #expect(remaining.first?.first == "10", "rows expiring at the cut-off and live rows stay")
            #expect(try await backend.deleteExpired(before: now + 1, limit: 100) == 5)
            for index in 0..<5 {
                #expect(try await backend.load(SessionKey(value: "live\(index)"), now: now) != nil)
            }
        }
    }

    // MARK: Pool

    @Test func sequentialCallsReuseOneConnection() async throws {
        try await MySQLTestServer.withBackend("reuse", { $0.poolSize = 4 }) { (backend: MySQLBackend) async throws in
            let key = SessionKey(value: "p1")
            #expect(try await backend.insert(key, record("x", expiresAt: 5_000)))
            for _ in 0..<50 { _ = try await backend.load(key, now: 1_000) }
            #expect(backend.connectionsOpened == 1)
            #expect(backend.pool.createdCount == 1)
        }
    }

    @Test func concurrentCallsStayWithinPoolSize() async throws {
        try await MySQLTestServer.withBackend("bounded", { $0.poolSize = 3 }) { (backend: MySQLBackend) async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    group.addTask {
                        let key = SessionKey(value: "c\(index)")
                        _ = try await backend.insert(key, record("x", expiresAt: 5_000))
                        _ = try await backend.load(key, now: 1_000)
                    }
                }
                try await group.waitForAll()
            }
            #expect(backend.connectionsOpened <= 3)
            #expect(backend.pool.createdCount <= 3)
        }
    }

    @Test func poolExhaustionFailsAfterBoundedWait() async throws {
        try await MySQLTestServer.withBackend("exhausted", {
            $0.poolSize = 1
            $0.poolWaitTimeout = .milliseconds(300)
        }) { (backend: MySQLBackend) async throws in
            let blockerDone = Flag()
            let blocker = Task {
                try await backend.call("sleep", retry: .never) { connection, _ in try connection.run("DO SLEEP(20)") }
                blockerDone.set()
            }
            while backend.pool.inUseCount == 0 { try await Task.sleep(for: .milliseconds(20)) }
            let start = ContinuousClock.now
            let error = await expectStorageError(.poolExhausted) { try await backend.load(SessionKey(value: "x"), now: 0) }
            // Not timed: the wait ends by its timeout, not by the connection coming free.
            #expect(ContinuousClock.now - start >= .milliseconds(300))
            #expect(!blockerDone.isSet, "the wait ended before the connection came free")
            #expect(error?.operation == "load")
            try await blocker.value
            _ = try await backend.load(SessionKey(value: "x"), now: 0)
        }
    }

    @Test func aQueueThatKeepsMovingWaitsPastTheTimeout() async throws {
        try await MySQLTestServer.withBackend("moving", {
            $0.poolSize = 1
            $0.poolWaitTimeout = .seconds(3)
        }) { (backend: MySQLBackend) async throws in
            // 10 calls of 0.5 s each on one connection: the last waits 4.5 s or more, beyond the
            // timeout, but the connection comes free every 0.5 s, so nobody gives up.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await backend.call("sleep", retry: .never) { connection, _ in try connection.run("DO SLEEP(0.5)") }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        try await MySQLTestServer.withBackend("cancelled", {
            $0.poolSize = 1
            $0.poolWaitTimeout = .seconds(3600)
        }) { (backend: MySQLBackend) async throws in
            let blocker = Task {
                try await backend.call("sleep", retry: .never) { connection, _ in try connection.run("DO SLEEP(10)") }
            }
            while backend.pool.inUseCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let waiter = Task { try await backend.load(SessionKey(value: "x"), now: 0) }
            // The waiter queues behind the one connection; on a machine so loaded that the
            // blocker ends first, the test says so instead of waiting forever.
            while backend.pool.resources.timers.load(ordering: .relaxed) == 0 {
                guard backend.pool.inUseCount > 0 else {
                    Issue.record("the connection came free before the waiter queued")
                    return
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            try await blocker.value
            _ = try await backend.load(SessionKey(value: "x"), now: 0)
        }
    }

    @Test func closedBackendThrowsClosed() async throws {
        let backend = try await MySQLBackend(configuration: try MySQLTestServer.configuration(table: "closed"))
        try await MySQLTestServer.drop(backend)
        try await backend.close()
        await expectStorageError(.closed) { try await backend.load(SessionKey(value: "x"), now: 0) }
        try await backend.close()
    }

    // MARK: Cleanup lease

    @Test func onlyOneBackendHoldsTheLeaseUntilItLapses() async throws {
        try await MySQLTestServer.withBackend("lease") { first in
            let second = try await MySQLBackend(configuration: first.configuration)
            defer { Task { try? await second.close() } }
            let now: Int64 = 1_000_000
            async let a = first.acquireCleanupLease(holder: "host-a", now: now, duration: 10_000)
            async let b = second.acquireCleanupLease(holder: "host-b", now: now, duration: 10_000)
            let (gotA, gotB) = try await (a, b)
            #expect(gotA != gotB, "exactly one holder: \(gotA) \(gotB)")
            let (holder, other, otherName) = gotA ? (first, second, "host-b") : (second, first, "host-a")
            let holderName = gotA ? "host-a" : "host-b"
            #expect(try await holder.acquireCleanupLease(holder: holderName, now: now + 1_000, duration: 10_000), "renewal")
            #expect(try await holder.acquireCleanupLease(holder: holderName, now: now + 1_000, duration: 10_000), "same renewal again")
            #expect(try await !other.acquireCleanupLease(holder: otherName, now: now + 10_999, duration: 10_000))
            // The renewed lease lapses at now + 11_000.
            #expect(try await other.acquireCleanupLease(holder: otherName, now: now + 11_000, duration: 10_000))
            #expect(try await !holder.acquireCleanupLease(holder: holderName, now: now + 12_000, duration: 10_000))
            try await other.releaseCleanupLease(holder: otherName)
            #expect(try await holder.acquireCleanupLease(holder: holderName, now: now + 12_000, duration: 10_000), "released")
        }
    }

    @Test func twoBackendsCleaningAtOnceDoTheWorkOnce() async throws {
        try await MySQLTestServer.withBackend("twocleaners") { first in
            let second = try await MySQLBackend(configuration: first.configuration)
            defer { Task { try? await second.close() } }
            for index in 0..<40 {
                #expect(try await first.insert(SessionKey(value: "e\(index)"), record("x", createdAt: 0, expiresAt: 500)))
            }
            @Sendable func clean(_ backend: MySQLBackend, _ name: String) async throws -> (leased: Bool, deleted: Int) {
                guard try await backend.acquireCleanupLease(holder: name, now: 1_000, duration: 60_000) else { return (false, 0) }
                var total = 0
                while true {
                    let deleted = try await backend.deleteExpired(before: 1_000, limit: 7)
                    total += deleted
                    if deleted < 7 { break }
                }
                try await backend.releaseCleanupLease(holder: name)
                return (true, total)
            }
            async let a = clean(first, "a")
            async let b = clean(second, "b")
            let results = try await [a, b]
            #expect(results.filter(\.leased).count >= 1)
            #expect(results.map(\.deleted).reduce(0, +) == 40)
            if results.allSatisfy(\.leased) {
                // Sequential: the second ran after the first released and found nothing.
                #expect(results.map(\.deleted).sorted() == [0, 40])
            }
        }
    }
}

@Suite("MySQL shared database", .mysqlServer)
struct MySQLSharedDatabaseTests {
    /// Two backends with separate pools (two app processes) write, read and clean one table
    /// at once: no live row is lost and no duplicate-key or deadlock error reaches a caller.
    @Test func twoPoolsWriteReadAndCleanConcurrently() async throws {
        try await MySQLTestServer.withBackend("shared", { $0.poolSize = 4 }) { first in
            let second = try await MySQLBackend(configuration: first.configuration)
            let backends = [first, second]
            let now: Int64 = 1_000_000
            // Expired rows for the cleaners to chew on.
            for index in 0..<300 {
                _ = try await first.insert(SessionKey(value: "x\(index)"), SessionRecord(data: [1], version: 1, createdAt: 0, expiresAt: 10))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        let backend = backends[worker % 2]
                        for index in 0..<40 {
                            let key = SessionKey(value: "live\(index)")
                            // Both pools race to create the same rows: exactly one wins each.
                            _ = try await backend.insert(key, SessionRecord(data: [UInt8(worker)], version: 1, createdAt: now, expiresAt: now + 600_000))
                            if let row = try await backend.load(key, now: now) {
                                _ = try await backend.update(key, data: [UInt8(worker), 1], expectedVersion: row.version, expiresAt: now + 600_000, now: now)
                            }
                            _ = try await backend.touch(key, expiresAt: now + 700_000, now: now)
                        }
                    }
                }
                for backend in backends {
                    group.addTask {
                        for _ in 0..<30 { _ = try await backend.deleteExpired(before: now + 120_000, limit: 10) }
                    }
                }
                try await group.waitForAll()
            }
            for index in 0..<40 {
                let row = try await second.load(SessionKey(value: "live\(index)"), now: now)
                #expect(row != nil, "live\(index) survived")
            }
            while try await first.deleteExpired(before: now + 120_000, limit: 100) > 0 {}
            let left = try await MySQLTestServer.rows(first, "SELECT COUNT(*) FROM `\(first.configuration.table)`")
            #expect(left.first?.first == "40")
            try await second.close()
        }
    }
}
