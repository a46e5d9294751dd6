#if Postgres
import SessionStoreCore
@testable import SessionStorePostgres
import SessionStoreTesting
import Testing

/// The backend conformance suite against PostgreSQL, in the configuration users get (only
/// the table is the check's own).
@Suite("PostgreSQL backend conformance")
struct PostgresConformanceTests {
    @Test(arguments: BackendConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        let configuration = try PostgresTestServer.configuration(table: "conf")
        let outcome = await PostgresBackend.settle { try await check.run(on: TestDatabase { try await PostgresBackend(configuration: configuration) }) }
        let cleaner = try await PostgresBackend(configuration: configuration)
        try await PostgresTestServer.drop(cleaner)
        try await cleaner.close()
        try outcome.get()
    }
}
#endif
