import Foundation
import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// TLS: a mode that asks for TLS never connects in clear text, and a certificate
/// that does not verify fails the open. The test server speaks TLS with a certificate that
/// `.ci/mariadb.sh` made at start-up (`SESSION_STORE_MYSQL_CA`, and an unrelated
/// `SESSION_STORE_MYSQL_WRONG_CA`); a private server started `plain` has no TLS at all.
@Suite("MySQL TLS", .mysqlServer)
struct MySQLTLSTests {
    private static func path(_ name: String) throws -> String {
        try #require(ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }, "\(name) not set: use bash .ci/test")
    }

    private static func open(_ url: String) async throws -> MySQLBackend {
        var storeURL = try StoreURL(url)
        var configuration = try MySQLConfiguration(url: &storeURL)
        configuration.table = MySQLTestServer.uniqueTable("tls")
        return try await MySQLBackend(configuration: configuration)
    }

    /// The cipher of the backend's connection, as the server reports it (empty: clear text).
    private static func cipher(_ backend: MySQLBackend) async throws -> String {
        let rows = try await MySQLTestServer.rows(backend, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return try #require(rows.first?[1] ?? nil)
    }

    private static func expectEncrypted(_ url: String) async throws {
        let backend = try await open(url)
        #expect(try await cipher(backend) != "", "the connection is encrypted")
        #expect(try await backend.insert(SessionKey(value: "k"), SessionRecord(data: [1], version: 1, createdAt: 1, expiresAt: 9_000)))
        try await MySQLTestServer.drop(backend)
        try await backend.close()
    }

    @Test(.enabled(if: PrivateServer.control(.mariadb) != nil || MySQLTestServer.isCI, "SESSION_STORE_MARIADB_CTL not set: use bash .ci/test"))
    func requiredAgainstAServerWithoutTLSFails() async throws {
        let server = try PrivateServer.start(.mariadb, plain: true)
        defer { server.stop() }
        let error = await expectStorageError(.connection) { try await Self.open(server.url + "?ssl_mode=required") }
        let text = "\(try #require(error))"
        #expect(text.contains("not encrypted"), "\(text)")
        var url = try StoreURL(server.url)
        #expect(!text.contains(try #require(try MySQLConfiguration(url: &url).password)), "no password in the error")
    }

    @Test func requiredWithTheCAConnectsEncrypted() async throws {
        try await Self.expectEncrypted(try #require(MySQLTestServer.url) + "?ssl_mode=required&ssl_ca=\(try Self.path("SESSION_STORE_MYSQL_CA"))")
    }

    @Test func verifyIdentityWithTheCAConnectsEncrypted() async throws {
        try await Self.expectEncrypted(
            try #require(MySQLTestServer.url) + "?ssl_mode=verify_identity&ssl_ca=\(try Self.path("SESSION_STORE_MYSQL_CA"))")
    }

    @Test func verifyIdentityWithAWrongCAFails() async throws {
        let url = try #require(MySQLTestServer.url) + "?ssl_mode=verify_identity&ssl_ca=\(try Self.path("SESSION_STORE_MYSQL_WRONG_CA"))"
        let error = await expectStorageError(.connection) { try await Self.open(url) }
        #expect("\(try #require(error))".contains("TLS"))
    }

    @Test func requiredWithAWrongCAFails() async throws {
        let url = try #require(MySQLTestServer.url) + "?ssl_mode=required&ssl_ca=\(try Self.path("SESSION_STORE_MYSQL_WRONG_CA"))"
        await expectStorageError(.connection) { try await Self.open(url) }
    }

    @Test func verifyIdentityWithAMissingCAFileFails() async throws {
        let url = try #require(MySQLTestServer.url) + "?ssl_mode=verify_identity&ssl_ca=/nonexistent/ca.pem"
        await expectStorageError(.connection) { try await Self.open(url) }
    }
}
