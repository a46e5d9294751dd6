import Foundation
import SessionStoreCore
import SessionStoreSQLite
import Testing

/// Writes a private key file (mode 0600) beside the test's database.
func writeKeyFile(_ database: TemporaryDatabase, _ text: String, name: String = "session-keys") throws -> String {
    let path = database.directory.appendingPathComponent(name).path
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    guard chmod(path, 0o600) == 0 else { throw RawSQLiteError(message: "chmod failed") }
    return path
}

@Suite("SQLite encryption at rest")
struct SQLiteEncryptionTests {
    static let marker = "MARKER-e5b1-the-cart-token"
    static let key = Data(repeating: 0x42, count: 32).base64EncodedString()

    @Test("a store opened with encryption_keys stores no byte run of a marker value: not in the row, not in any file")
    func rowsAreSealedOnDisk() async throws {
        try await withTemporaryDatabase { database in
            let keys = try writeKeyFile(database, "*k1:\(Self.key)\n")
            let store = try await SessionStore.open("sqlite://\(database.path)?encryption_keys=\(keys)", backends: [.sqlite])
            var session = store.newSession()
            try session.set("token", Self.marker)
            try await store.save(&session)
            var loaded = try await store.load(session.id)
            try loaded.set("other", Self.marker + "-2")
            try await store.save(&loaded)
            #expect(try await store.load(session.id).get("token", as: String.self) == Self.marker)
            try await store.shutdown()

            // Through the engine: sqlite3 on the file, outside the backend.
            let rows = try rawSQL(database.path, "SELECT hex(data) FROM sessions")
            #expect(rows.count == 1)
            let stored = try #require(rows.first ?? nil)
            #expect(stored.hasPrefix("E1026B31"), "marker byte, id length 2, id k1: \(stored.prefix(8))")
            let needle = Array(Self.marker.utf8.prefix(8))
            #expect(!stored.contains(needle.map { String(format: "%02X", $0) }.joined()))
            // And every file of the database (main, WAL, shared memory): no 8-byte run of it.
            for name in try FileManager.default.contentsOfDirectory(atPath: database.directory.path) where name.hasPrefix("sessions.db") {
                let bytes = Array(try Data(contentsOf: database.directory.appendingPathComponent(name)))
                let found = bytes.count >= needle.count
                    && (0...(bytes.count - needle.count)).contains { bytes[$0] == needle[0] && Array(bytes[$0..<($0 + needle.count)]) == needle }
                #expect(!found, "\(name) holds the marker")
            }
        }
    }

    @Test("a key file other users may read stops the open with a configuration error")
    func refusesReadableKeyFile() async throws {
        try await withTemporaryDatabase { database in
            let keys = try writeKeyFile(database, "*k1:\(Self.key)\n")
            #expect(chmod(keys, 0o644) == 0)
            await #expect {
                _ = try await SessionStore.open("sqlite://\(database.path)?encryption_keys=\(keys)", backends: [.sqlite])
            } throws: { error in
                (error as? SessionStoreError)?.code == .invalidConfiguration && "\(error)".contains("chmod 600")
                    && !"\(error)".contains(Self.key)
            }
        }
    }
}
