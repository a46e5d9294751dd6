public import Foundation
import Synchronization

/// Starts child processes one at a time across the whole test process.
///
/// Foundation's `Process.run()` on Linux is not safe to call from several threads at once
/// (seen here: a crash inside `Process.run` while other suites spawned children), so every
/// test that spawns a child goes through here.
public enum ChildProcesses {
    private static let launching = Mutex(())

    /// Runs `process.run()` while no other child is being started.
    public static func run(_ process: Process) throws {
        try launching.withLock { _ in try process.run() }
    }
}
