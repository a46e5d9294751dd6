import Foundation
import Logging
import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// The three-node Galera cluster of `bash .ci/test` (`.ci/galera.sh start`): its multi-host
/// URL, one URL per node, and the control script that kills and restarts nodes.
enum GaleraCluster {
    static let environment = ProcessInfo.processInfo.environment

    private static func value(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `mysql://user:pw@h1:p1,h2:p2,h3:p3/sessions_test`.
    static let url = value("SESSION_STORE_GALERA_URL")
    static let directory = value("SESSION_STORE_GALERA_DIR")
    static let control = value("SESSION_STORE_GALERA_CTL")

    /// Whether this is a CI run, where the Galera suite must run.
    static let isCI: Bool = {
        let value = environment["CI"]?.lowercased() ?? ""
        return !value.isEmpty && value != "false" && value != "0"
    }()

    static var available: Bool { url != nil && directory != nil && control != nil }

    /// The URL of node `node` (1-3) alone.
    static func nodeURL(_ node: Int) throws -> String {
        try #require(value("SESSION_STORE_GALERA_NODE\(node)_URL"), "SESSION_STORE_GALERA_NODE\(node)_URL not set")
    }

    /// A configuration from `url` plus `options`, on `table`.
    static func configuration(_ url: String, options: String = "", table: String) throws -> MySQLConfiguration {
        var parsed = try StoreURL(url + (options.isEmpty ? "" : "?" + options))
        var configuration = try MySQLConfiguration(url: &parsed)
        try parsed.checkAllTaken()
        configuration.table = table
        return configuration
    }

    static func backend(_ url: String, options: String = "", table: String) async throws -> MySQLBackend {
        try await MySQLBackend(configuration: configuration(url, options: options, table: table), logger: quiet)
    }

    static let quiet = Logger(label: "galera-tests") { _ in SwiftLogNoOpLogHandler() }

    /// A table name no other test uses.
    static func uniqueTable(_ prefix: String) -> String {
        String("g_\(prefix)_\(String(UInt64.random(in: 0...UInt64.max), radix: 36))".prefix(64))
    }

    /// Drops `backend`'s table and its schema and lease rows, then closes it.
    static func dropAndClose(_ backend: MySQLBackend) async throws {
        let table = backend.configuration.table
        try await backend.call("drop", retry: .again) { connection, _ in
            try connection.run("DROP TABLE IF EXISTS `\(table)`")
            try connection.run("DELETE FROM session_store_schema WHERE name = '\(table)'")
            try connection.run("DELETE FROM session_store_lease WHERE name = '\(table)'")
        }
        try await backend.close()
    }

    /// A status variable of the node `backend` is connected to.
    static func status(_ backend: MySQLBackend, _ name: String) async throws -> String? {
        let rows = try await backend.call("status", retry: .again) { connection, _ in
            try connection.rows("SHOW GLOBAL STATUS LIKE '\(name)'")
        }
        return rows.first?[1] ?? nil
    }

    // MARK: - Nodes

    static func kill(_ node: Int) async throws { try await script("kill", "\(node)") }
    /// Starts a killed node again; returns once it is Synced.
    static func startAgain(_ node: Int) async throws { try await script("start-again", "\(node)") }
    /// Makes a node that lost quorum the primary component again (`pc.bootstrap`).
    static func bootstrap(_ node: Int) async throws { try await script("bootstrap", "\(node)") }

    /// Runs the control script on a thread of its own (posix_spawn + waitpid, off Swift's
    /// cooperative pool; Foundation's `Process` is not safe to start from several threads).
    private static func script(_ arguments: String...) async throws {
        let control = try #require(control, "SESSION_STORE_GALERA_CTL not set")
        let directory = try #require(directory, "SESSION_STORE_GALERA_DIR not set")
        let words = ["/bin/bash", control] + arguments + [directory]
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                continuation.resume(with: Result { try spawnAndWait(words) })
            }.start()
        }
    }

    private static func spawnAndWait(_ words: [String]) throws {
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, words[0], nil, nil, argv, environ)
        guard spawned == 0 else {
            throw StorageError(kind: .other, engine: "test", operation: "spawn", message: "posix_spawn failed: \(spawned)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            throw StorageError(
                kind: .other, engine: "test", operation: words.dropFirst().joined(separator: " "),
                message: "galera.sh exited with status \(status)")
        }
    }
}

/// The time in milliseconds, as the store's clock gives it.
func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

func seconds(_ duration: Duration) -> String {
    let components = duration.components
    return String(format: "%.1f", Double(components.seconds) + Double(components.attoseconds) / 1e18)
}

/// Fails a CI run that has no cluster, so the Galera suite never skips silently there.
@Suite("Galera cluster availability")
struct GaleraAvailabilityTests {
    @Test(
        "SESSION_STORE_GALERA_URL, _DIR and _CTL are set (required in CI)",
        .enabled(if: GaleraCluster.available || GaleraCluster.isCI)
    )
    func clusterConfigured() {
        #expect(
            GaleraCluster.available,
            "the Galera cluster's environment is missing although CI is set: the Galera suite cannot run; use bash .ci/test"
        )
    }
}

extension Trait where Self == ConditionTrait {
    /// SESSION_STORE_GALERA_URL not set: Galera suite not run; use bash .ci/test
    static var galeraCluster: ConditionTrait {
        .enabled(if: GaleraCluster.available, "SESSION_STORE_GALERA_URL not set: Galera suite not run; use bash .ci/test")
    }
}
