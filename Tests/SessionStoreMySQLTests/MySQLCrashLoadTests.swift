import Foundation
import Logging
import SessionStoreCore
@testable import SessionStoreMySQL
import Synchronization
import Testing

/// Faults, MySQL: the server is SIGKILLed in the middle of a load and started again.
/// In-flight operations fail with typed errors, the same store recovers, and every save that
/// was reported successful is still there afterwards.
///
/// The server is private to this suite (`.ci/mariadb.sh start` in a directory of its own), so
/// the suites sharing `SESSION_STORE_MYSQL_URL` never see the crash. It runs with the InnoDB
/// defaults (`innodb_flush_log_at_trx_commit=1`): a commit the client was told about is durable,
/// which the test checks before it starts.
@Suite(
    "MySQL crash under load", .serialized, .mysqlServer,
    .enabled(
        if: PrivateServer.control(.mariadb) != nil || MySQLTestServer.isCI,
        "SESSION_STORE_MARIADB_CTL not set: MySQL crash test not run; use bash .ci/test"
    )
)
struct MySQLCrashLoadTests {
    static let tasks = 8
    static let poolSize = 4

    @Test func killedServerLosesNoReportedSaveAndTheStoreRecovers() async throws {
        let server = try await step("starting a private server") { try await onThread { try PrivateServer.start(.mariadb) } }
        defer { server.stop() }
        var url = try StoreURL(
            server.url + "?pool=\(Self.poolSize)&pool_timeout=3s&connect_timeout=2s&query_timeout=5s"
        )
        let quiet = Logger(label: "crash-load") { _ in SwiftLogNoOpLogHandler() }
        let backend = try await MySQLBackend(configuration: try MySQLConfiguration(url: &url), logger: quiet)
        let settings = try await MySQLTestServer.rows(
            backend, "SELECT @@innodb_flush_log_at_trx_commit, @@innodb_doublewrite"
        )
        // Committed means durable only when the redo log is written at every commit.
        #expect(settings.first?.first == "1", "innodb_flush_log_at_trx_commit is \(settings), not 1")
        try await CrashUnderLoad(
            engine: "MySQL", tasks: Self.tasks, poolSize: Self.poolSize,
            durability: "innodb_flush_log_at_trx_commit=\(settings.first?.first.flatMap { $0 } ?? "?")"
        ).run(backend: backend, server: server, logger: quiet)
        try await backend.close()
    }
}
