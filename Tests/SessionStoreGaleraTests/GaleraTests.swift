import Foundation
import SessionStoreCore
@testable import SessionStoreMySQL
import SessionStoreTesting
import Synchronization
import Testing

/// The MySQL backend on a real three-node Galera cluster (`.ci/galera.sh`),
/// through one URL naming every node. Serialized: some tests kill nodes, and each leaves the
/// cluster with three Synced nodes again.
@Suite("Galera cluster", .serialized, .galeraCluster)
struct GaleraTests {
    static let far: Int64 = 4_000_000_000_000

    // MARK: - Conformance

    /// The whole backend conformance suite through the multi-host URL, connections spread
    /// over the nodes at random, so saves of one test land on different nodes.
    @Test(arguments: BackendConformance.checks)
    func conformanceThroughTheMultiHostURL(_ check: ConformanceCheck) async throws {
        let url = try #require(GaleraCluster.url)
        let configuration = try GaleraCluster.configuration(
            url, options: "hosts=random&pool=6", table: GaleraCluster.uniqueTable("conf"))
        try await check.run(on: TestDatabase { try await MySQLBackend(configuration: configuration, logger: GaleraCluster.quiet) })
        let cleaner = try await MySQLBackend(configuration: configuration, logger: GaleraCluster.quiet)
        try await GaleraCluster.dropAndClose(cleaner)
    }

    @Test func theMultiHostURLSpreadsConnectionsOverEveryNodeWithHostsRandom() async throws {
        let url = try #require(GaleraCluster.url)
        let backend = try await GaleraCluster.backend(url, options: "hosts=random&pool=24", table: GaleraCluster.uniqueTable("spread"))
        // 24 calls at once need 24 connections; all on two nodes or fewer: 3 * (2/3)^24 = 2e-4 %.
        let nodes = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<24 {
                group.addTask {
                    let rows = try await backend.call("node", retry: .again) { connection, _ in
                        try connection.rows("SELECT @@wsrep_node_name, SLEEP(0.5)")
                    }
                    return rows.first?.first.flatMap { $0 } ?? "?"
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(nodes == ["node1", "node2", "node3"], "connections went to \(nodes.sorted())")
        try await GaleraCluster.dropAndClose(backend)
    }

    @Test func hostsOrderedSendsEveryConnectionToTheFirstNode() async throws {
        let url = try #require(GaleraCluster.url)
        let backend = try await GaleraCluster.backend(url, options: "hosts=ordered&pool=6", table: GaleraCluster.uniqueTable("ordered"))
        let nodes = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let rows = try await backend.call("node", retry: .again) { connection, _ in
                        try connection.rows("SELECT @@wsrep_node_name, SLEEP(0.1)")
                    }
                    return rows.first?.first.flatMap { $0 } ?? "?"
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(nodes == ["node1"])
        try await GaleraCluster.dropAndClose(backend)
    }

    // MARK: - Causal reads

    @Test func causalReadsAreOnByDefaultWithSeveralHostsAndOffWithOne() async throws {
        let table = GaleraCluster.uniqueTable("default")
        let several = try await GaleraCluster.backend(try #require(GaleraCluster.url), table: table)
        let one = try await GaleraCluster.backend(try GaleraCluster.nodeURL(2), table: table)
        let syncWait: @Sendable (MySQLBackend) async throws -> String? = { backend in
            try await backend.call("sync wait", retry: .again) { connection, _ in
                try connection.rows("SELECT @@SESSION.wsrep_sync_wait")
            }.first?.first ?? nil
        }
        #expect(try await syncWait(several) == "1")
        #expect(try await syncWait(one) == "0")
        try await one.close()
        try await GaleraCluster.dropAndClose(several)
    }

    @Test func aLoadOnNode3RightAfterASaveOnNode1NeverSeesTheOldValueWithCausalReads() async throws {
        let table = GaleraCluster.uniqueTable("causal")
        let writer = try await GaleraCluster.backend(try GaleraCluster.nodeURL(1), table: table)
        let causal = try await GaleraCluster.backend(try GaleraCluster.nodeURL(3), options: "causal_reads=true", table: table)
        let plain = try await GaleraCluster.backend(try GaleraCluster.nodeURL(3), options: "causal_reads=false", table: table)
        let key = SessionKey(value: "causal-reads")
        #expect(try await writer.insert(key, SessionRecord(data: [0], version: 1, createdAt: 1, expiresAt: Self.far)))
        var version: Int64 = 1
        func staleReads(_ reader: MySQLBackend, rounds: Int) async throws -> Int {
            var stale = 0
            for round in 0..<rounds {
                let data = Array("round \(round) of \(version)".utf8)
                #expect(try await writer.update(key, data: data, expectedVersion: version, expiresAt: Self.far, now: 2))
                version += 1
                let seen = try await reader.load(key, now: 2)
                if seen?.version != version || seen?.data != data { stale += 1 }
            }
            return stale
        }
        let started = ContinuousClock.now
        let staleCausal = try await staleReads(causal, rounds: 2000)
        let causalTime = ContinuousClock.now - started
        let staleWithout = try await staleReads(plain, rounds: 1000)
        #expect(staleCausal == 0, "\(staleCausal) of 2000 loads on node 3 missed the save just committed on node 1")
        print("""
            Galera causal reads: save on node 1 then load on node 3: stale \(staleCausal) of 2000 with causal_reads \
            (\(seconds(causalTime)) s), \(staleWithout) of 1000 without
            """)
        try await causal.close()
        try await plain.close()
        try await GaleraCluster.dropAndClose(writer)
    }

    // MARK: - Certification failures

    /// Two stores, one on node 1 and one on node 2, save one session at once: each save
    /// sets a key of its own and one shared key. Certification failures (1213 at COMMIT)
    /// are retried inside the backend, and the core's merge keeps every key.
    @Test func concurrentSavesOfOneSessionOnTwoNodesAllSucceedAndKeepEveryKey() async throws {
        let table = GaleraCluster.uniqueTable("merge")
        let first = try await GaleraCluster.backend(try GaleraCluster.nodeURL(1), options: "pool=4&causal_reads=true", table: table)
        let second = try await GaleraCluster.backend(try GaleraCluster.nodeURL(2), options: "pool=4&causal_reads=true", table: table)
        let stores = try [SessionStore(backend: first, logger: GaleraCluster.quiet), SessionStore(backend: second, logger: GaleraCluster.quiet)]
        func certificationFailures() async throws -> Int {
            let one = Int(try await GaleraCluster.status(first, "wsrep_local_cert_failures") ?? "") ?? 0
            let two = Int(try await GaleraCluster.status(second, "wsrep_local_cert_failures") ?? "") ?? 0
            return one + two
        }
        func abortsRetried() -> Int {
            first.pool.resources.lockConflictRetries.load(ordering: .relaxed)
                + second.pool.resources.lockConflictRetries.load(ordering: .relaxed)
        }
        let certifiedBefore = try await certificationFailures()
        // Galera aborts a transaction that conflicts with a replicated write set at any of its
        // statements, not only at COMMIT; a save that failed on such an abort failed about 2
        // runs of one session in 15. 30 sessions in a row let a 1-in-10 failure pass < 5% of runs.
        let sessions = 30, tasksPerStore = 4, rounds = 12
        var saves = 0, merged = 0
        for _ in 0..<sessions {
            var session = stores[0].newSession()
            try session.set("origin", 0)
            #expect(try await stores[0].save(&session) == .created)
            let id = session.id
            let outcomes = try await withThrowingTaskGroup(of: [SaveOutcome].self) { group in
                for (index, store) in stores.enumerated() {
                    for task in 0..<tasksPerStore {
                        group.addTask {
                            var outcomes: [SaveOutcome] = []
                            for round in 0..<rounds {
                                var loaded = try await store.load(id)
                                try loaded.set("k\(index)-\(task)-\(round)", round)
                                try loaded.set("shared", "\(index)-\(task)-\(round)")
                                outcomes.append(try await store.save(&loaded))
                            }
                            return outcomes
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(outcomes.count == 2 * tasksPerStore * rounds)
            #expect(outcomes.allSatisfy { $0.wroteData }, "saves that wrote nothing: \(outcomes.filter { !$0.wroteData })")
            let final = try await stores[1].load(id)
            var missing: [String] = []
            for index in 0..<2 {
                for task in 0..<tasksPerStore {
                    for round in 0..<rounds where try final.get("k\(index)-\(task)-\(round)", as: Int.self) != round {
                        missing.append("k\(index)-\(task)-\(round)")
                    }
                }
            }
            #expect(missing.isEmpty, "keys lost by the merge: \(missing)")
            #expect(try final.get("origin", as: Int.self) == 0)
            #expect(try final.get("shared", as: String.self) != nil)
            saves += outcomes.count
            merged += outcomes.filter { if case .merged = $0 { true } else { false } }.count
        }
        let certificationFailures = try await certificationFailures() - certifiedBefore
        print("""
            Galera concurrent saves of \(sessions) sessions on nodes 1 and 2: \(saves) saves, all wrote \
            (\(saves - merged) updated, \(merged) merged), every key kept, certification failures \
            \(certificationFailures), calls retried after a deadlock or abort \(abortsRetried())
            """)
        try await second.close()
        try await GaleraCluster.dropAndClose(first)
    }

    // MARK: - Owners

    @Test func loginsOfOneOwnerRacingOnTwoNodesLeaveExactlyTheCap() async throws {
        let table = GaleraCluster.uniqueTable("cap")
        let first = try await GaleraCluster.backend(try GaleraCluster.nodeURL(1), options: "pool=4&causal_reads=true", table: table)
        let second = try await GaleraCluster.backend(try GaleraCluster.nodeURL(2), options: "pool=4&causal_reads=true", table: table)
        var configuration = SessionStoreConfiguration()
        configuration.maxSessionsPerOwner = 2
        let stores = try [first, second].map { try SessionStore(backend: $0, configuration: configuration, logger: GaleraCluster.quiet) }
        for round in 0..<10 {
            let owner = "racer-\(round)"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores {
                    for _ in 0..<3 {
                        group.addTask {
                            var session = store.newSession()
                            try session.set("device", round)
                            try await store.logIn(&session, owner: owner)
                        }
                    }
                }
                try await group.waitForAll()
            }
            for store in stores {
                let live = try await store.sessions(ownedBy: owner).sessions.count
                #expect(live == 2, "round \(round): \(live) sessions left on one node, the cap is 2")
            }
        }
        try await second.close()
        try await GaleraCluster.dropAndClose(first)
    }

    // MARK: - Cleanup lease

    @Test func theCleanupLeaseGoesToOneOfTwoNodesAtATime() async throws {
        let table = GaleraCluster.uniqueTable("lease")
        let backends = [
            try await GaleraCluster.backend(try GaleraCluster.nodeURL(1), options: "causal_reads=true", table: table),
            try await GaleraCluster.backend(try GaleraCluster.nodeURL(2), options: "causal_reads=true", table: table),
        ]
        for round in 0..<20 {
            let now = nowMilliseconds()
            let granted = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for (index, backend) in backends.enumerated() {
                    group.addTask {
                        (index, try await backend.acquireCleanupLease(holder: "holder-\(index)", now: now, duration: 60_000))
                    }
                }
                return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            #expect(granted.values.filter { $0 }.count == 1, "round \(round): lease granted to \(granted)")
            for (index, backend) in backends.enumerated() where granted[index] == true {
                try await backend.releaseCleanupLease(holder: "holder-\(index)")
            }
        }
        try await backends[1].close()
        try await GaleraCluster.dropAndClose(backends[0])
    }

    @Test func twoStoresOnTwoNodesCleaningAtOnceDoTheWorkOnce() async throws {
        let table = GaleraCluster.uniqueTable("clean")
        let first = try await GaleraCluster.backend(try GaleraCluster.nodeURL(1), options: "causal_reads=true", table: table)
        let second = try await GaleraCluster.backend(try GaleraCluster.nodeURL(2), options: "causal_reads=true", table: table)
        var configuration = SessionStoreConfiguration()
        configuration.cleanupBatchSize = 25
        let stores = try [first, second].map { try SessionStore(backend: $0, configuration: configuration, logger: GaleraCluster.quiet) }
        let expired = 200
        for round in 0..<3 {
            let past = nowMilliseconds() - 3_600_000
            for index in 0..<expired {
                let record = SessionRecord(data: [1], version: 1, createdAt: past - 1000, expiresAt: past)
                #expect(try await first.insert(SessionKey(value: "expired-\(round)-\(index)"), record))
            }
            let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                for store in stores { group.addTask { try await store.cleanup() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(counts.sorted() == [0, expired], "round \(round): the two stores deleted \(counts)")
        }
        try await second.close()
        try await GaleraCluster.dropAndClose(first)
    }

    @Test func aLeaseHeldByAStoreOnAKilledNodeLapsesAndAnotherTakesOver() async throws {
        let table = GaleraCluster.uniqueTable("lapse")
        let onNode2 = try await GaleraCluster.backend(try GaleraCluster.nodeURL(2), options: "causal_reads=true", table: table)
        let onNode3 = try await GaleraCluster.backend(try GaleraCluster.nodeURL(3), options: "causal_reads=true", table: table)
        let taken = nowMilliseconds()
        #expect(try await onNode2.acquireCleanupLease(holder: "on-node-2", now: taken, duration: 30_000))
        try await GaleraCluster.kill(2)
        // Lease expiry follows the callers' clocks: while it lasts, node 3 sees it held ...
        let during = try await onNode3.acquireCleanupLease(holder: "on-node-3", now: taken + 1000, duration: 30_000)
        // ... and once it lapsed, the store on node 3 takes it.
        let after = try await onNode3.acquireCleanupLease(holder: "on-node-3", now: taken + 30_001, duration: 30_000)
        try await GaleraCluster.startAgain(2)
        #expect(!during, "node 3 took the lease while the killed node's store still held it")
        #expect(after, "the lease of the killed node's store never lapsed for node 3")
        try await onNode2.close()
        try await GaleraCluster.dropAndClose(onNode3)
    }

    // MARK: - Failover

    @Test func aKilledNodeUnderLoadLosesNoReportedSaveAndTheStoreFailsOverAndComesBack() async throws {
        let url = try #require(GaleraCluster.url)
        let backend = try await GaleraCluster.backend(
            url, options: "hosts=ordered&pool=4&connect_timeout=2s&query_timeout=20s&host_retry=1s",
            table: GaleraCluster.uniqueTable("kill"))
        let store = try SessionStore(backend: backend, logger: GaleraCluster.quiet)
        let control = LoadControl()
        let started = ContinuousClock.now
        let workers = (0..<8).map { index in Task { await LoadWorker.run(index, store: store, control: control) } }

        try await Task.sleep(for: .milliseconds(1500))
        try await GaleraCluster.kill(1)
        let killedAt = ContinuousClock.now
        control.phase.store(LoadControl.down, ordering: .sequentiallyConsistent)
        // Served by nodes 2 and 3 past the eviction of node 1 (about 5 s).
        try await Task.sleep(for: .seconds(8))
        let openedOnNode1 = backend.pool.hosts.counts[0].opened
        // The load pauses while node 1 catches up by IST: on two shared cores it never
        // catches up with eight tasks writing at full speed.
        control.paused.store(true, ordering: .sequentiallyConsistent)
        let rejoinAt = ContinuousClock.now
        try await GaleraCluster.startAgain(1)
        let upAt = ContinuousClock.now
        control.phase.store(LoadControl.up, ordering: .sequentiallyConsistent)
        control.paused.store(false, ordering: .sequentiallyConsistent)
        // Connections move back to node 1 once it answers (host_retry=1s).
        var nodesAfter: Set<String> = []
        for _ in 0..<40 {
            try await Task.sleep(for: .milliseconds(250))
            if backend.pool.hosts.counts[0].opened > openedOnNode1 { break }
        }
        try await Task.sleep(for: .seconds(2))
        control.stop.store(true, ordering: .sequentiallyConsistent)
        var total = LoadReport()
        for worker in workers { total.merge(await worker.value) }
        let loadEnded = ContinuousClock.now
        for _ in 0..<4 {
            let rows = try await backend.call("node", retry: .again) { connection, _ in
                try connection.rows("SELECT @@wsrep_node_name")
            }
            nodesAfter.insert(rows.first?.first.flatMap { $0 } ?? "?")
        }

        #expect(total.unexpected.isEmpty, "untyped or unexpected failures: \(total.unexpected.prefix(10))")
        #expect(total.successes[LoadControl.before] > 0, "no save succeeded before the kill")
        #expect(total.successes[LoadControl.down] > 0, "no save succeeded on the other nodes after the kill")
        #expect(total.successes[LoadControl.up] > 0, "no save succeeded after node 1 rejoined")
        #expect(backend.pool.hosts.counts[0].opened > openedOnNode1, "no connection went back to node 1 after it rejoined")
        #expect(nodesAfter == ["node1"], "after the rejoin, calls ran on \(nodesAfter.sorted())")

        let lost = try await total.missing(in: store)
        #expect(lost.isEmpty, "reported saves missing: \(lost.prefix(10))")
        #expect(total.lostDuringLoad.isEmpty, "reported saves missing during the load: \(total.lostDuringLoad.prefix(10))")
        let recovered = control.firstSuccess(in: LoadControl.down).map { seconds($0 - killedAt) } ?? "never"
        let failures = total.failures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print("""
            Galera node killed under load: 8 tasks, pool 4, hosts=ordered, load \(seconds(loadEnded - started)) s, \
            node 1 down \(seconds(rejoinAt - killedAt)) s \
            under load, then rejoined by IST in \(seconds(upAt - rejoinAt)) s with the load paused
              saves reported \(total.savesReported) (before the kill \(total.successes[LoadControl.before]), \
            node 1 down \(total.successes[LoadControl.down]), after it rejoined \(total.successes[LoadControl.up])), loads \(total.loads)
              saves checked \(total.reported.count) sessions, each at its last reported value: lost \(lost.count + total.lostDuringLoad.count)
              failures \(total.failures.values.reduce(0, +)): \(failures.isEmpty ? "none" : failures)
              time from the kill to the first save after it: \(recovered) s; calls failed over \
            \(backend.pool.resources.failovers.load(ordering: .relaxed)); connections per node \
            \(backend.pool.hosts.counts.map(\.opened))
            """)
        try await GaleraCluster.dropAndClose(backend)
    }

    @Test func twoKilledNodesLeaveTheLastWithoutQuorumAndTheStoreSaysSo() async throws {
        let url = try #require(GaleraCluster.url)
        let backend = try await GaleraCluster.backend(
            url, options: "hosts=ordered&pool=2&connect_timeout=2s&query_timeout=20s&host_retry=1s",
            table: GaleraCluster.uniqueTable("quorum"))
        let store = try SessionStore(backend: backend, logger: GaleraCluster.quiet)
        var session = store.newSession()
        try session.set("n", 1)
        #expect(try await store.save(&session) == .created)
        try await GaleraCluster.kill(1)
        try await GaleraCluster.kill(2)
        // Node 3 stalls until it notices both are gone, then refuses everything (1047).
        var quorumError: StorageError?
        var before: [String] = []
        for attempt in 0..<30 where quorumError == nil {
            try session.set("n", attempt + 2)
            do {
                before.append("saved: \(try await store.save(&session))")
            } catch let error as StorageError where error.message.contains("no quorum") {
                quorumError = error
            } catch {
                before.append("\(error)")
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        // From then on, every call fails the same way: nothing is written without quorum.
        var afterwards: [String] = []
        for attempt in 0..<3 where quorumError != nil {
            try session.set("n", attempt + 50)
            do {
                afterwards.append("saved: \(try await store.save(&session))")
            } catch let error as StorageError where error.kind == .connection && error.message.contains("no quorum") {
                // expected
            } catch {
                afterwards.append("\(error)")
            }
        }
        try await GaleraCluster.bootstrap(3)
        try await GaleraCluster.startAgain(1)
        try await GaleraCluster.startAgain(2)
        let error = try #require(quorumError, "no error named the lost quorum; outcomes: \(before)")
        #expect(error.kind == .connection)
        #expect(afterwards.isEmpty, "without quorum: \(afterwards)")
        print("Galera two nodes killed: the store reports: \(error)")
        // Back to three nodes, the same store saves again.
        try session.set("n", 100)
        var recovered = false
        for _ in 0..<20 where !recovered {
            do {
                recovered = try await store.save(&session).wroteData
            } catch {
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(recovered, "the store did not save again once the cluster had quorum")
        try await GaleraCluster.dropAndClose(backend)
    }
}

// MARK: - Load

/// What the load tasks share: when to stop, which phase the cluster is in, and when each
/// phase saw its first successful save.
final class LoadControl: Sendable {
    static let before = 0, down = 1, up = 2
    let stop = Atomic(false)
    /// Tasks wait while set.
    let paused = Atomic(false)
    let phase = Atomic(LoadControl.before)
    private let firsts = Mutex<[Int: ContinuousClock.Instant]>([:])

    func succeeded(in phase: Int) {
        let now = ContinuousClock.now
        firsts.withLock { firsts in if firsts[phase] == nil { firsts[phase] = now } }
    }

    func firstSuccess(in phase: Int) -> ContinuousClock.Instant? { firsts.withLock { $0[phase] } }
}

struct LoadReport: Sendable {
    var reported: [SessionID: Int] = [:]
    var successes = [0, 0, 0]
    var loads = 0
    var failures: [String: Int] = [:]
    var unexpected: [String] = []
    var lostDuringLoad: [String] = []

    var savesReported: Int { successes.reduce(0, +) }

    mutating func succeeded(_ id: SessionID, _ value: Int, phase: Int) {
        reported[id] = max(reported[id] ?? value, value)
        successes[phase] += 1
    }

    mutating func failed(_ error: any Error) {
        switch error {
        case let error as StorageError:
            let cutOff = error.message.contains("may or may not have been committed")
            failures["StorageError.\(error.kind)\(cutOff ? " (write cut off in flight)" : "")", default: 0] += 1
            if ![.connection, .poolExhausted, .busy].contains(error.kind) { unexpected.append("\(error)") }
        default:
            failures["\(type(of: error))", default: 0] += 1
            unexpected.append("\(type(of: error)): \(error)")
        }
    }

    mutating func merge(_ other: LoadReport) {
        reported.merge(other.reported) { max($0, $1) }
        for phase in successes.indices { successes[phase] += other.successes[phase] }
        loads += other.loads
        failures.merge(other.failures, uniquingKeysWith: +)
        unexpected += other.unexpected
        lostDuringLoad += other.lostDuringLoad
    }

    /// Sessions whose stored value is below the last one reported saved.
    func missing(in store: SessionStore) async throws -> [String] {
        var lost: [String] = []
        for (id, value) in reported {
            let session = try await store.load(id)
            let found = session.isStored ? try session.get("n", as: Int.self) : nil
            if (found ?? Int.min) < value {
                lost.append("\(id.redacted): reported \(value), found \(found.map(String.init) ?? "nothing")")
            }
        }
        return lost
    }
}

enum LoadWorker {
    /// Creates sessions and updates them until told to stop, recording every save the store
    /// reported successful; a failed save keeps its change pending for the next one.
    static func run(_ index: Int, store: SessionStore, control: LoadControl) async -> LoadReport {
        var report = LoadReport()
        var owned: [(session: Session, next: Int)] = []
        while !control.stop.load(ordering: .relaxed) {
            if control.paused.load(ordering: .relaxed) {
                do {
                    try await Task.sleep(for: .milliseconds(20))
                } catch {
                    report.unexpected.append("sleep cancelled")
                }
                continue
            }
            do {
                if owned.count < 4 || Int.random(in: 0..<8) == 0 {
                    var session = store.newSession()
                    try session.set("n", 1)
                    try session.set("task", index)
                    let outcome = try await store.save(&session)
                    guard outcome == .created else {
                        report.unexpected.append("create returned \(outcome)")
                        continue
                    }
                    let phase = control.phase.load(ordering: .sequentiallyConsistent)
                    report.succeeded(session.id, 1, phase: phase)
                    control.succeeded(in: phase)
                    owned.append((session, 2))
                } else {
                    let slot = Int.random(in: 0..<owned.count)
                    let id = owned[slot].session.id
                    if Int.random(in: 0..<4) == 0 {
                        let loaded = try await store.load(id)
                        report.loads += 1
                        let found = loaded.isStored ? try loaded.get("n", as: Int.self) : nil
                        let reported = report.reported[id] ?? 1
                        if (found ?? Int.min) < reported {
                            report.lostDuringLoad.append("\(id.redacted): reported \(reported), loaded \(found.map(String.init) ?? "nothing")")
                        } else if !owned[slot].session.hasChanges {
                            owned[slot].session = loaded
                        }
                    }
                    let value = owned[slot].next
                    owned[slot].next += 1
                    try owned[slot].session.set("n", value)
                    let outcome = try await store.save(&owned[slot].session)
                    guard outcome.wroteData else {
                        report.unexpected.append("update returned \(outcome)")
                        owned.remove(at: slot)
                        continue
                    }
                    let phase = control.phase.load(ordering: .sequentiallyConsistent)
                    report.succeeded(id, value, phase: phase)
                    control.succeeded(in: phase)
                }
            } catch {
                report.failed(error)
                do {
                    try await Task.sleep(for: .milliseconds(10))
                } catch {
                    report.unexpected.append("sleep cancelled")
                }
            }
        }
        return report
    }
}
