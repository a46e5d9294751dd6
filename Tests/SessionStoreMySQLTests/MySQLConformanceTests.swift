import SessionStoreCore
@testable import SessionStoreMySQL
import SessionStoreTesting
import Testing

/// The backend conformance suite against MariaDB, in the configuration users get (only the
/// table is the check's own).
@Suite("MySQL backend conformance", .mysqlServer)
struct MySQLConformanceTests {
    @Test(arguments: BackendConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        let configuration = try MySQLTestServer.configuration(table: "conf")
        try await check.run(on: TestDatabase { try await MySQLBackend(configuration: configuration) })
        let cleaner = try await MySQLBackend(configuration: configuration)
        try await MySQLTestServer.drop(cleaner)
        try await cleaner.close()
    }

    @Test(arguments: BackendConformance.checks)
    func conformanceEncrypted(_ check: ConformanceCheck) async throws {
        let configuration = try MySQLTestServer.configuration(table: "conf_enc")
        try await check.run(on: TestDatabase { try await MySQLBackend(configuration: configuration) }.encrypted())
        let cleaner = try await MySQLBackend(configuration: configuration)
        try await MySQLTestServer.drop(cleaner)
        try await cleaner.close()
    }
}
