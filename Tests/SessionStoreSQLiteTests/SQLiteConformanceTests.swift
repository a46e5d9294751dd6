import SessionStoreCore
import SessionStoreSQLite
import SessionStoreTesting
import Testing

@Suite("SQLiteBackend conformance")
struct SQLiteConformanceTests {
    @Test(arguments: BackendConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        try await withTemporaryDatabase { database in
            let configuration = database.configuration()
            try await check.run(on: TestDatabase { try SQLiteBackend(configuration: configuration) })
        }
    }

    @Test(arguments: BackendConformance.checks)
    func conformanceEncrypted(_ check: ConformanceCheck) async throws {
        try await withTemporaryDatabase { database in
            let configuration = database.configuration()
            try await check.run(on: TestDatabase { try SQLiteBackend(configuration: configuration) }.encrypted())
        }
    }

    @Test(arguments: BackendConformance.checks)
    func conformanceWithChecksumKeysAndNoGroupCommit(_ check: ConformanceCheck) async throws {
        try await withTemporaryDatabase { database in
            let configuration = database.configuration { $0.keyLayout = .checksumAndID; $0.groupCommit = false }
            try await check.run(on: TestDatabase { try SQLiteBackend(configuration: configuration) })
        }
    }
}
