import CSessionStoreSQLite
import Foundation
import SessionStoreTestSupport
import SessionStoreTesting
import SessionStore
import SessionStoreSQLite
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The child processes of the crash and lock tests: `session-store-crash-writer`, an
/// executable of this package built beside the test bundle.
enum CrashWriter {
    /// The executable's path: `SESSION_STORE_CRASH_WRITER` when set, else the build
    /// directory holding this test bundle.
    static var path: String? {
        if let path = ProcessInfo.processInfo.environment["SESSION_STORE_CRASH_WRITER"], !path.isEmpty {
            return path
        }
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for directory in candidates {
            let path = directory.appendingPathComponent("session-store-crash-writer").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func launch(_ arguments: [String], output: ChildProcess.Output = .null) throws -> ChildProcess {
        let path = try #require(path, "session-store-crash-writer not built: run swift build --build-tests")
        return try ChildProcess.spawn(path, arguments, stdout: output)
    }

    /// SIGKILLs `process` and waits for it.
    @discardableResult
    static func kill(_ process: ChildProcess) -> ChildProcess.Termination {
        process.kill()
        return process.waitBlocking()
    }
}

/// Runs `PRAGMA integrity_check` on its own connection and returns its first row.
func integrityCheck(_ path: String) throws -> String? {
    try rawSQL(path, "PRAGMA integrity_check").first ?? nil
}

@Suite("SQLite crash safety", .serialized)
struct SQLiteCrashTests {
    /// What the child reported as committed: the highest step per session id.
    static func reported(in path: String) throws -> [String: Int] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // A line without its newline was being written at the kill: not reported.
        let complete = text.lastIndex(of: "\n").map { text[...$0] } ?? ""
        var steps: [String: Int] = [:]
        for line in complete.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let step = Int(parts[1]) else { continue }
            steps[String(parts[0]), default: 0] = max(steps[String(parts[0]), default: 0], step)
        }
        return steps
    }

    /// Whether the session is stored with its payload and at least the reported step (a
    /// later step may have committed before its report line was written).
    static func holds(_ store: SessionStore, _ id: SessionID, step: Int) async throws -> Bool {
        let session = try await store.load(id)
        guard session.isStored, let stored = try session.get("step", as: Int.self) else { return false }
        let payload = try session.get("payload", as: String.self)
        return stored >= step && payload?.hasSuffix("x") == true
    }

    @Test(arguments: [SQLiteConfiguration.Synchronous.full])
    func sigkillLosesNoReportedSaveAndLeavesAnIntactDatabase(_ synchronous: SQLiteConfiguration.Synchronous) async throws {
        try await withTemporaryDatabase { database in
            let reportPath = database.directory.appendingPathComponent("report.txt").path
            // 50 kills however slow the machine; the deadline only stops a run that hangs.
            let deadline = ContinuousClock.now + .seconds(600)
            var kills = 0
            var checked = 0
            var lost = 0
            var verified: [String: Int] = [:]
            while kills < 50, ContinuousClock.now < deadline {
                #expect(FileManager.default.createFile(atPath: reportPath, contents: nil))
                let child = try CrashWriter.launch(["save", database.path, reportPath, synchronous.rawValue])
                // Random moments: during open and schema set-up, early saves, steady state.
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...250)))
                let ended = CrashWriter.kill(child)
                #expect(ended == .signalled(SIGKILL), "the child died of SIGKILL, not of an error: \(ended)")
                kills += 1

                #expect(try integrityCheck(database.path) == "ok", "integrity_check after kill \(kills)")
                let reported = try Self.reported(in: reportPath)
                let backend = try database.open()
                let store = try SessionStore(backend: backend)
                for (text, step) in reported {
                    let id = try #require(SessionID(validating: text))
                    checked += 1
                    if try await !Self.holds(store, id, step: step) { lost += 1 }
                    verified[text] = step
                }
                try await store.shutdown()
            }
            // At the end, every session reported in any round is still there.
            #expect(try integrityCheck(database.path) == "ok")
            let backend = try database.open()
            let store = try SessionStore(backend: backend)
            for (text, step) in verified {
                if try await !Self.holds(store, try #require(SessionID(validating: text)), step: step) { lost += 1 }
            }
            try await store.shutdown()
            print("crash test (synchronous=\(synchronous.rawValue)): \(kills) SIGKILLs survived, \(checked) reported sessions checked after kills (\(verified.count) distinct, re-checked at the end), \(lost) lost")
            #expect(kills >= 50)
            #expect(verified.count > 100, "the child saved sessions between kills")
            #expect(lost == 0)
        }
    }
}
