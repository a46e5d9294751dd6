// Shared by the MySQL and PostgreSQL test targets (a symbolic link in each): a server is
// SIGKILLed in the middle of a saving load and started again. In-flight operations fail with
// typed errors, the same store recovers, and every save that was reported successful is
// still there afterwards.
import Foundation
import Logging
import SessionStore
import Synchronization
import Testing

/// The crash scenario, run on a backend opened on a private server.
struct CrashUnderLoad {
    /// The engine's name in the printed figures.
    let engine: String
    let tasks: Int
    let poolSize: Int
    /// The server's durability settings, as printed.
    let durability: String
    /// Whether the kill must fail some calls: MySQL's pool fails calls while the server is
    /// down; the PostgreSQL backend tries to connect again for a few seconds and finishes
    /// calls cut off by exact retries, so there a quick restart may fail none.
    var callsInFlightFail = true

    /// Runs the load, kills and restarts `server` under it, and checks what was reported.
    func run(backend: any StorageBackend, server: PrivateServer, logger quiet: Logger) async throws {
        let store = try SessionStore(backend: backend, logger: quiet)

        let control = LoadControl()
        let started = ContinuousClock.now
        let workers = (0..<tasks).map { index in
            Task { await Self.work(index, store: store, control: control) }
        }

        try await Task.sleep(for: .milliseconds(1500))
        try await control.waitForASave(in: LoadControl.before)
        control.phase.store(LoadControl.down, ordering: .sequentiallyConsistent)
        let killedAt = ContinuousClock.now
        try await step("kill the server (SIGKILL)") { try await onThread { try server.kill() } }
        try await Task.sleep(for: .milliseconds(700))
        let restartAt = ContinuousClock.now
        try await step("start the server again") { try await onThread { try server.startAgain() } }
        let upAt = ContinuousClock.now
        control.phase.store(LoadControl.up, ordering: .sequentiallyConsistent)
        try await Task.sleep(for: .milliseconds(2500))
        try await control.waitForASave(in: LoadControl.up)
        control.stop.store(true, ordering: .sequentiallyConsistent)

        // (a) No hang: every task ends soon after being told to stop, since every call is
        // bounded by the pool, connect and query timeouts.
        let reports = try await step("the load tasks to stop") {
            var reports: [WorkerReport] = []
            for worker in workers { reports.append(await worker.value) }
            return reports
        }
        let loadEnded = ContinuousClock.now
        var total = WorkerReport()
        for report in reports { total.merge(report) }

        // (a) Every failure was typed and of an expected kind.
        #expect(total.unexpected.isEmpty, "untyped or unexpected failures: \(total.unexpected.prefix(10))")
        #expect(total.successes[LoadControl.before] > 0, "no save succeeded before the kill")
        if callsInFlightFail {
            #expect(!total.failures.isEmpty, "the kill caused no failure: the load was not in flight")
        }

        // (b) The same store works again after the restart: the load recovered on its own ...
        #expect(total.successes[LoadControl.up] > 0, "no save succeeded after the restart")
        // ... and fresh saves and loads succeed.
        try await step("saves and loads after the restart") {
            var session = store.newSession()
            try session.set("fresh", 1)
            #expect(try await store.save(&session) == .created)
            var loaded = try await store.load(session.id)
            #expect(try loaded.get("fresh", as: Int.self) == 1)
            try loaded.set("fresh", 2)
            #expect(try await store.save(&loaded) == .updated)
            #expect(try await store.load(session.id).get("fresh", as: Int.self) == 2)
        }

        // (c) Every save reported successful is there with at least the reported value.
        let expected = Array(total.reported)
        let lostSessions = try await step("checking \(expected.count) sessions") {
            try await withThrowingTaskGroup(of: [String].self) { group in
                let lanes = 4
                for lane in 0..<lanes {
                    group.addTask {
                        var lost: [String] = []
                        for (id, value) in expected[lane...].striding(by: lanes) {
                            let session = try await store.load(id)
                            let found = session.isStored ? try session.get("n", as: Int.self) : nil
                            if (found ?? Int.min) < value {
                                lost.append("\(id.redacted): reported \(value), found \(found.map(String.init) ?? "nothing")")
                            }
                        }
                        return lost
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
        }
        let lost = lostSessions.count + total.lostDuringLoad.count
        #expect(lostSessions.isEmpty, "reported saves missing after the restart: \(lostSessions.prefix(10))")
        #expect(total.lostDuringLoad.isEmpty, "reported saves missing during the load: \(total.lostDuringLoad.prefix(10))")

        // (d) The figures.
        let failures = total.failures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print("""
            \(engine) crash under load: \(tasks) tasks, pool \(poolSize), \(durability), \
            load \(seconds(loadEnded - started)) s, kill to up again \(seconds(upAt - killedAt)) s \
            (start-again \(seconds(upAt - restartAt)) s)
              saves reported \(total.savesReported) (before the kill \(total.successes[LoadControl.before]), \
            while the kill ran \(total.successes[LoadControl.down]), after the restart \(total.successes[LoadControl.up])), \
            loads \(total.loads)
              saves checked \(total.savesReported): \(expected.count) sessions, each at its last reported value
              failures \(total.failures.values.reduce(0, +)) (before the kill \(total.failed[LoadControl.before]), \
            from the kill to up again \(total.failed[LoadControl.down]), after the restart \(total.failed[LoadControl.up])): \
            \(failures.isEmpty ? "none" : failures); unexpected \(total.unexpected.count); \
            slowest call \(total.slowest.components.seconds * 1000 + total.slowest.components.attoseconds / 1_000_000_000_000_000) ms
              lost \(lost)
            """)

    }

    /// One load task: creates sessions and updates them in a loop until told to stop,
    /// recording every save the store reported successful.
    private static func work(_ index: Int, store: SessionStore, control: LoadControl) async -> WorkerReport {
        var report = WorkerReport()
        var owned: [Owned] = []
        while !control.stop.load(ordering: .relaxed) {
            let began = ContinuousClock.now
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
                    report.succeeded(session.id, 1, phase: control.succeeded())
                    owned.append(Owned(session: session, next: 2))
                } else {
                    let slot = Int.random(in: 0..<owned.count)
                    let id = owned[slot].session.id
                    if Int.random(in: 0..<4) == 0 {
                        // Read it back: it must hold at least what was last reported.
                        let loaded = try await store.load(id)
                        report.loads += 1
                        let found = loaded.isStored ? try loaded.get("n", as: Int.self) : nil
                        let reported = report.reported[id] ?? 1
                        if (found ?? Int.min) < reported {
                            report.lostDuringLoad.append(
                                "\(id.redacted): reported \(reported), loaded \(found.map(String.init) ?? "nothing")")
                        } else if !owned[slot].session.hasChanges {
                            owned[slot].session = loaded
                        }
                    }
                    let value = owned[slot].next
                    owned[slot].next += 1
                    // A save that failed keeps its change pending; the next one re-applies it
                    // on whatever the failed write left behind (committed or not).
                    try owned[slot].session.set("n", value)
                    let outcome = try await store.save(&owned[slot].session)
                    guard outcome.wroteData else {
                        report.unexpected.append("update returned \(outcome)")
                        if outcome == .gone { report.lostDuringLoad.append("\(id.redacted): save found it gone") }
                        owned.remove(at: slot)
                        continue
                    }
                    report.succeeded(id, value, phase: control.succeeded())
                }
            } catch {
                // A create that failed is dropped (it may or may not have committed, and was
                // never reported saved); a failed update keeps its change pending.
                report.failed(error, phase: control.phase.load(ordering: .sequentiallyConsistent))
                try? await Task.sleep(for: .milliseconds(10))
            }
            report.slowest = max(report.slowest, ContinuousClock.now - began)
        }
        return report
    }
}

/// What the load tasks share: when to stop, and whether the server is up.
private final class LoadControl: Sendable {
    static let before = 0, down = 1, up = 2
    let stop = Atomic(false)
    let phase = Atomic(LoadControl.before)
    /// Saves reported so far in the phases `before` and `up`, read while the load runs.
    private let savedBefore = Atomic(0)
    private let savedUp = Atomic(0)

    /// Counts a reported save in the current phase, and returns that phase.
    func succeeded() -> Int {
        let current = phase.load(ordering: .sequentiallyConsistent)
        if current == Self.before { savedBefore.add(1, ordering: .relaxed) }
        if current == Self.up { savedUp.add(1, ordering: .relaxed) }
        return current
    }

    private func saves(in phase: Int) -> Int {
        phase == Self.before ? savedBefore.load(ordering: .relaxed) : savedUp.load(ordering: .relaxed)
    }

    /// Waits until a save was reported in `phase` (`before` or `up`), checking every 50 ms,
    /// for at most `rounds` checks: a loaded machine may run the tasks late, and the phase
    /// must hold load before it ends; past the rounds, the test's expectation reports it.
    func waitForASave(in phase: Int, rounds: Int = 1200) async throws {
        for _ in 0..<rounds where saves(in: phase) == 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

private struct Owned: Sendable {
    var session: Session
    var next: Int
}

/// What one load task saw.
private struct WorkerReport: Sendable {
    /// The last value reported saved, per session.
    var reported: [SessionID: Int] = [:]
    /// Successful saves by phase (before the kill, server down, after the restart).
    var successes = [0, 0, 0]
    /// Failed calls by phase.
    var failed = [0, 0, 0]
    var loads = 0
    /// Failures by type and kind, e.g. `StorageError.connection`.
    var failures: [String: Int] = [:]
    var unexpected: [String] = []
    var lostDuringLoad: [String] = []
    var slowest: Duration = .zero

    var savesReported: Int { successes.reduce(0, +) }

    mutating func succeeded(_ id: SessionID, _ value: Int, phase: Int) {
        reported[id] = max(reported[id] ?? value, value)
        successes[phase] += 1
    }

    mutating func failed(_ error: any Error, phase: Int) {
        failed[phase] += 1
        switch error {
        case let error as StorageError:
            // A write cut off in flight says so: it may or may not have been committed.
            let cutOff = error.message.contains("may or may not have been committed")
            failures["StorageError.\(error.kind)\(cutOff ? " (write cut off in flight)" : "")", default: 0] += 1
            if ![.connection, .poolExhausted, .busy].contains(error.kind) { unexpected.append("\(error)") }
        case let error as SessionStoreError:
            failures["SessionStoreError.\(error.code)", default: 0] += 1
        default:
            failures["\(type(of: error))", default: 0] += 1
            unexpected.append("\(type(of: error)): \(error)")
        }
    }

    mutating func merge(_ other: WorkerReport) {
        reported.merge(other.reported) { max($0, $1) }
        for phase in successes.indices {
            successes[phase] += other.successes[phase]
            failed[phase] += other.failed[phase]
        }
        loads += other.loads
        failures.merge(other.failures, uniquingKeysWith: +)
        unexpected += other.unexpected
        lostDuringLoad += other.lostDuringLoad
        slowest = max(slowest, other.slowest)
    }
}

private extension ArraySlice {
    /// Every `step`th element from the start of the slice.
    func striding(by step: Int) -> [Element] {
        stride(from: startIndex, to: endIndex, by: step).map { self[$0] }
    }
}

private func seconds(_ duration: Duration) -> String {
    let components = duration.components
    let value = Double(components.seconds) + Double(components.attoseconds) / 1e18
    return String(format: "%.1f", value)
}

/// Runs one named step of the scenario. No time limit (CI machines are loaded; no test
/// bounds time); a failure names the step.
func step<T: Sendable>(_ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    do {
        return try await operation()
    } catch {
        throw StepFailed(what: what, error: "\(error)")
    }
}

struct StepFailed: Error, CustomStringConvertible {
    let what: String
    let error: String
    var description: String { "\(what) failed: \(error)" }
}

/// Runs blocking work (the control script) on a thread of its own, off Swift's cooperative
/// pool, which has only as many threads as cores.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
