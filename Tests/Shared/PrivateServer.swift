// Shared by the MySQL and PostgreSQL test targets (a symbolic link in each).
import Foundation
import SessionStoreCore
import Testing

/// A private server of its own, started and stopped with `.ci/mariadb.sh` or `.ci/postgres.sh`.
struct PrivateServer: Sendable {
    /// Which control script starts it, and which of its exports is the URL.
    struct Engine: Sendable {
        /// The environment variable that names the control script (set by `.ci/test`).
        let controlVariable: String
        /// The `export` line of the script's `start` that holds the server's URL.
        let urlVariable: String

        static let mariadb = Engine(controlVariable: "SESSION_STORE_MARIADB_CTL", urlVariable: "SESSION_STORE_MYSQL_URL")
        static let postgres = Engine(controlVariable: "SESSION_STORE_POSTGRES_CTL", urlVariable: "SESSION_STORE_POSTGRES_URL")
    }

    let control: String
    let directory: String
    let url: String
    /// Every `export NAME=VALUE` line the script's `start` printed.
    let exports: [String: String]

    /// The control script of `engine`, when `.ci/test` set it.
    static func control(_ engine: Engine) -> String? {
        ProcessInfo.processInfo.environment[engine.controlVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Starts a server of its own (with TLS as the shared one; `plain`: without TLS).
    static func start(_ engine: Engine, plain: Bool = false) throws -> PrivateServer {
        let control = try #require(Self.control(engine), "\(engine.controlVariable) not set")
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("session-store-private-\(UInt32.random(in: 0...UInt32.max))").path
        let output = plain ? try run(control, "start", directory, "plain") : try run(control, "start", directory)
        var exports: [String: String] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("export ") {
            let assignment = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1)
            if assignment.count == 2 { exports[String(assignment[0])] = String(assignment[1]) }
        }
        return PrivateServer(
            control: control, directory: directory, url: try #require(exports[engine.urlVariable]), exports: exports)
    }

    func kill() throws { _ = try Self.run(control, "kill", directory) }
    func startAgain() throws { _ = try Self.run(control, "start-again", directory) }
    func stop() { _ = try? Self.run(control, "stop", directory) }

    /// Runs the control script on a thread of its own (posix_spawn + waitpid: Foundation's
    /// `Process.waitUntilExit` can hang under Swift concurrency on Linux).
    @discardableResult
    static func run(_ control: String, _ arguments: String...) throws -> String {
        let output = FileManager.default.temporaryDirectory
            .appendingPathComponent("server-ctl-\(UInt32.random(in: 0...UInt32.max)).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let quoted = ([control] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = "bash " + quoted.joined(separator: " ") + " > '\(output)'"
        let words: [String] = ["/bin/bash", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else {
            throw StorageError(kind: .other, engine: "test", operation: "spawn", message: "posix_spawn failed")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw StorageError(kind: .other, engine: "test", operation: arguments.joined(separator: " "),
                               message: "\(control) exited with status \(status)")
        }
        return text
    }
}
