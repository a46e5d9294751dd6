import SessionStore
@testable import SessionStoreMySQL
import SessionStoreTesting
import Testing

/// The backend conformance suite against MariaDB; each check gets a table of its own.
@Suite("MySQL backend conformance", .mysqlServer)
struct MySQLConformanceTests {
    @Test(arguments: BackendConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        let configuration = try MySQLTestServer.configuration(table: "conf") {
            $0.poolSize = 4
            // The checks drive a manual clock and expect cleanup to delete at exactly `now`.
            $0.clockSkewAllowance = .zero
        }
        try await check.run(on: TestDatabase { try await MySQLBackend(configuration: configuration) })
        let cleaner = try await MySQLBackend(configuration: configuration)
        try await MySQLTestServer.drop(cleaner)
        try await cleaner.close()
    }
}
