import Foundation
import SessionStore
import Testing

/// A private server of its own, started and stopped with `.ci/mariadb.sh`.
struct PrivateServer: Sendable {
    let control: String
    let directory: String
    let url: String

    static var control: String? {
        ProcessInfo.processInfo.environment["SESSION_STORE_MARIADB_CTL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Starts a server of its own (with TLS as the shared one; `plain`: without TLS).
    static func start(plain: Bool = false) throws -> PrivateServer {
        let control = try #require(Self.control, "SESSION_STORE_MARIADB_CTL not set")
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("session-store-private-\(UInt32.random(in: 0...UInt32.max))").path
        let output = plain ? try run(control, "start", directory, "plain") : try run(control, "start", directory)
        func exported(_ name: String) -> String? {
            let prefix = "export \(name)="
            return output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        return PrivateServer(control: control, directory: directory, url: try #require(exported("SESSION_STORE_MYSQL_URL")))
    }

    func kill() throws { _ = try Self.run(control, "kill", directory) }
    func startAgain() throws { _ = try Self.run(control, "start-again", directory) }
    func stop() { _ = try? Self.run(control, "stop", directory) }

    /// Runs the control script on a thread of its own (posix_spawn + waitpid: Foundation's
    /// `Process.waitUntilExit` can hang under Swift concurrency on Linux).
    @discardableResult
    static func run(_ control: String, _ arguments: String...) throws -> String {
        let output = FileManager.default.temporaryDirectory
            .appendingPathComponent("mariadb-ctl-\(UInt32.random(in: 0...UInt32.max)).out").path
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
                               message: "mariadb.sh exited with status \(status)")
        }
        return text
    }
}
