// Child processes use Glibc's posix_spawn and signals: on other platforms this testing
// support is absent, so the module still builds there.
#if canImport(Glibc)
public import Glibc
import Dispatch
import Synchronization

/// A child process started with `posix_spawn`, for tests that run the CLI, a crash writer
/// or a system tool.
///
/// Not Foundation's `Process`: on Linux its `run()` scans `/proc/self/fd` and crashed here
/// when many descriptors were open (the MySQL suites), and its `waitUntilExit()` can hang
/// under Swift concurrency. Descriptors the test process opens with `O_CLOEXEC` (pipes made
/// here) never leak into a child.
public final class ChildProcess: Sendable {
    /// Where a child's standard output or error goes.
    public enum Output: Sendable {
        /// `/dev/null`.
        case null
        /// A file, created or truncated.
        case file(String)
        /// A descriptor of the test process (e.g. a pipe's write end from ``makePipe()``).
        case descriptor(Int32)
    }

    /// How a child ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)

        /// The exit status, or minus the signal number.
        public var status: Int32 {
            switch self {
            case .exited(let code): code
            case .signalled(let signal): -signal
            }
        }
    }

    /// The child's process id.
    public let pid: pid_t
    private let ended = Mutex<Termination?>(nil)

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `path` with `arguments`, standard input from `/dev/null`.
    /// - Throws: ``ChildProcessError`` when the child cannot be started.
    public static func spawn(_ path: String, _ arguments: [String], stdout: Output = .null, stderr: Output = .null) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else { throw ChildProcessError("posix_spawn_file_actions_init failed") }
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) == 0 else {
            throw ChildProcessError("cannot redirect standard input")
        }
        for (descriptor, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            let result: Int32
            switch output {
            case .null: result = posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0)
            case .file(let file): result = posix_spawn_file_actions_addopen(&actions, descriptor, file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            case .descriptor(let source): result = posix_spawn_file_actions_adddup2(&actions, source, descriptor)
            }
            guard result == 0 else { throw ChildProcessError("cannot redirect descriptor \(descriptor): error \(result)") }
        }
        let words = [path] + arguments
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = launching.withLock { _ in posix_spawn(&pid, path, &actions, nil, argv, environ) }
        guard result == 0 else { throw ChildProcessError("posix_spawn \(path) failed: error \(result)") }
        return ChildProcess(pid: pid)
    }

    /// A pipe whose ends close on exec: `(read, write)`. Hand `write` to one child as
    /// ``Output/descriptor(_:)`` and close it here after the spawn.
    public static func makePipe() throws -> (read: Int32, write: Int32) {
        // Under the spawn lock, so no child starts between pipe() and FD_CLOEXEC.
        try launching.withLock { _ in
            var descriptors: [Int32] = [0, 0]
            guard pipe(&descriptors) == 0 else { throw ChildProcessError("pipe failed: errno \(errno)") }
            for descriptor in descriptors where fcntl(descriptor, F_SETFD, FD_CLOEXEC) != 0 {
                throw ChildProcessError("fcntl FD_CLOEXEC failed: errno \(errno)")
            }
            return (descriptors[0], descriptors[1])
        }
    }

    private static let launching = Mutex(())

    /// Whether the child still runs; reaps it once it has ended.
    public var isRunning: Bool {
        ended.withLock { ended in
            if ended != nil { return false }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            guard result == pid else { return result == 0 }
            ended = Self.termination(status)
            return false
        }
    }

    /// Sends `signal` (SIGKILL by default) unless the child has already been reaped.
    public func kill(_ signal: Int32 = SIGKILL) {
        ended.withLock { ended in
            if ended == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Waits for the child on the calling thread (for synchronous tools that run briefly).
    public func waitBlocking() -> Termination {
        ended.withLock { ended in
            if let ended { return ended }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 {
                guard errno == EINTR else { break }
            }
            let termination = Self.termination(status)
            ended = termination
            return termination
        }
    }

    /// Waits for the child on a thread of its own, never on Swift's cooperative pool.
    public func wait() async -> Termination {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: self.waitBlocking())
            }
        }
    }

    private static func termination(_ status: Int32) -> Termination {
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift cannot import as macros.
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }
}

/// A child process could not be started.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
#endif
