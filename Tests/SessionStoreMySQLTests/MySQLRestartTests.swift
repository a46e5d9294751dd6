import Foundation
import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// Kills and restarts a server while a backend uses it. The server is private to this suite,
/// so the other suites running in parallel never see the restart.
@Suite(
    "MySQL restart", .serialized, .mysqlServer,
    .enabled(if: PrivateServer.control(.mariadb) != nil, "SESSION_STORE_MARIADB_CTL not set: use bash .ci/test")
)
struct MySQLRestartTests {
    @Test func backendRecoversAfterServerRestart() async throws {
        let server = try PrivateServer.start(.mariadb)
        defer { server.stop() }
        var url = try StoreURL(server.url + "?pool=3&pool_timeout=10s&connect_timeout=2s&health_check=1h")
        let backend = try await MySQLBackend(configuration: try MySQLConfiguration(url: &url))
        let key = SessionKey(value: "survivor")
        let record = SessionRecord(data: Array("kept".utf8), version: 1, createdAt: 1_000, expiresAt: 1_000_000)
        #expect(try await backend.insert(key, record))
        let openedBefore = backend.connectionsOpened

        // An operation in flight when the server dies fails with .connection; it does not hang.
        let inFlight = Task {
            try await backend.call("insert", retry: .never) { connection, _ in try connection.run("DO SLEEP(30)") }
        }
        try await Task.sleep(for: .milliseconds(300))
        try server.kill()
        let failure = await expectStorageError(.connection) { try await inFlight.value }
        #expect(failure?.message.contains("may or may not have been committed") == true)

        // While the server is down, calls fail with .connection rather than hang.
        await expectStorageError(.connection) { try await backend.load(key, now: 2_000) }

        try server.startAgain()
        // The same backend works again without being recreated: a load on a pooled
        // connection that died is retried on a new one, and the committed row survived.
        #expect(try await backend.load(key, now: 2_000) == record)
        #expect(try await backend.update(key, data: Array("after".utf8), expectedVersion: 1, expiresAt: 1_000_000, now: 2_000))
        #expect(try await backend.load(key, now: 2_000)?.version == 2)
        #expect(backend.connectionsOpened > openedBefore)
        #expect(backend.connectionsLost >= 1)

        // A second restart with several idle pooled connections: every one is replaced.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 { group.addTask { _ = try await backend.load(key, now: 2_000) } }
            try await group.waitForAll()
        }
        try server.kill()
        try server.startAgain()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 { group.addTask {
                    let loaded = try await backend.load(key, now: 2_000)
                    #expect(loaded != nil)
                } }
            try await group.waitForAll()
        }
        #expect(try await backend.touch(key, expiresAt: 2_000_000, now: 2_000))
        try await backend.close()
    }

    @Test func writeOnAConnectionThatDiedWhileIdleSucceedsAfterHealthCheck() async throws {
        let server = try PrivateServer.start(.mariadb)
        defer { server.stop() }
        var url = try StoreURL(server.url + "?pool=1&health_check=100ms")
        let backend = try await MySQLBackend(configuration: try MySQLConfiguration(url: &url))
        try server.kill()
        try server.startAgain()
        try await Task.sleep(for: .milliseconds(150))
        // The idle connection is pinged, found dead and replaced before the insert runs.
        let record = SessionRecord(data: [1], version: 1, createdAt: 1, expiresAt: 1_000_000)
        #expect(try await backend.insert(SessionKey(value: "fresh"), record))
        #expect(try await backend.load(SessionKey(value: "fresh"), now: 2) == record)
        try await backend.close()
    }
}
