import Foundation
import SessionStoreCore
import SessionStoreSQLite
import Testing

@Suite("session-store check (SQLite)")
struct CheckCLITests {
    @Test func checkPassesASoundStore() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeKnownTraffic(fixture, expired: 2, live: 2)
            let run = try await CLI.run(["check", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("integrity  ok"))
            #expect(run.stdout.contains("rows       10 read"))
            #expect(run.stdout.hasSuffix("OK\n"))
        }
    }

    @Test func checkCountsCorruptAndNewerFormatRowsWithRedactedIDs() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let now = try await writeKnownTraffic(fixture, expired: 1, live: 2)
            try await fixture.withBackend { backend async throws in
                let garbage = SessionRecord(data: [0xFF, 0x00, 0x13], version: 1, createdAt: now, expiresAt: now + hour)
                #expect(try await backend.insert(SessionKey(value: "garbage-row-secret-1"), garbage))
                let truncated = SessionRecord(data: [1, 4, 0x61], version: 1, createdAt: now, expiresAt: now + hour)
                #expect(try await backend.insert(SessionKey(value: "truncated-row-secret"), truncated))
                let newer = SessionRecord(
                    data: [AttributeCodec.formatVersion + 1, 1, 0x61, 1, 0x31], version: 1, createdAt: now, expiresAt: now + hour)
                #expect(try await backend.insert(SessionKey(value: "newer-format-secret"), newer))
            }
            // A column of the wrong type, as only a write from outside the store leaves it.
            try runScript(fixture.path, "UPDATE sessions SET data = 'not a blob' WHERE id = 'live-1-1'")
            let run = try await CLI.run(["check", "--json", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            let report = try run.json()
            #expect(report["ok"] as? Bool == false)
            #expect(report["rows"] as? Int == 12)
            #expect(report["corrupt"] as? Int == 3)
            #expect(report["newerFormat"] as? Int == 1)
            #expect(report["integrity"] as? [String] == ["ok"])
            let problems = try #require(report["problems"] as? [[String: String]])
            #expect(Set(problems.compactMap { $0["id"] }) == ["garb…", "live…", "newe…", "trun…"])
            #expect(!run.stdout.contains("secret"), "ids are redacted")
            let text = try await CLI.run(["check", fixture.url], in: directory)
            #expect(text.status == 1)
            #expect(text.stdout.contains("PROBLEMS FOUND"))
        }
    }

    @Test func checkFailsOnAFileThatIsNotADatabase() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: fixture.path))
            let run = try await CLI.run(["check", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(run.stdout.contains("cannot open"))
        }
    }

    @Test func checkFailsOnADamagedPage() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeKnownTraffic(fixture, expired: 200, live: 200)
            try runScript(fixture.path, "PRAGMA wal_checkpoint(TRUNCATE)")
            // Overwrite the middle of the last page (a b-tree page of the table or its index).
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: fixture.path))
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: size - 2048)
            try handle.write(contentsOf: Data(repeating: 0xA5, count: 1024))
            try handle.close()
            let run = try await CLI.run(["check", "--json", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
        }
    }
}
