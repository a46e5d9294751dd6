import Foundation
import SessionStoreCore
import SessionStoreSQLite
import Testing

/// Every row of a SQLite session table, by key.
func allRows(_ fixture: SQLiteFixture) async throws -> [String: SessionRecord] {
    try await fixture.withBackend { backend async throws in
        var rows: [String: SessionRecord] = [:]
        var cursor: SessionKey?
        while true {
            let page = try await backend.storedRows(after: cursor, limit: 100, liveAt: nil)
            for row in page { rows[row.key.value] = try row.record.get() }
            guard page.count == 100, let last = page.last else { return rows }
            cursor = last.key
        }
    }
}

@Suite("session-store copy (SQLite to SQLite)")
struct CopyCLITests {
    @Test func copyKeepsKeysVersionsCreatedAndExpiryTimesOfLiveSessionsOnly() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db", options: "key=crc32")
            let target = SQLiteFixture(directory, name: "new.db", options: "key=crc32&table=moved")
            _ = try await writeKnownTraffic(source, expired: 4, live: 9)
            let now = nowMilliseconds()
            try await source.withBackend { backend async throws in
                let key = SessionKey(value: "live-2-2")
                let current = try #require(try await backend.load(key, now: now))
                #expect(try await backend.update(key, data: current.data, expectedVersion: 1, expiresAt: 0, now: now))
            }
            let run = try await CLI.run(["copy", "--json", "--batch", "7", "--from", source.url, "--to", target.url], in: directory)
            #expect(run.status == 0, "\(run)")
            let report = try run.json()
            #expect(report["live"] as? Int == 36)
            #expect(report["copied"] as? Int == 36)
            #expect(report["skipped"] as? Int == 0)
            #expect(report["failed"] as? Int == 0)
            var expected = try await allRows(source)
            expected = expected.filter { $0.value.expiresAt > now }
            #expect(try await allRows(target) == expected)
            #expect(expected["live-2-2"]?.version == 2)
            #expect(expected["live-0-0"]?.version == 0, "retired ids stay retired")
        }
    }

    @Test func copiedSessionsLoadThroughAStoreWithTheirData() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db")
            let target = SQLiteFixture(directory, name: "new.db")
            let store = try await SessionStore.open(source.url, backends: [.sqlite], logger: quietLogger)
            var ids: [SessionID] = []
            for index in 0..<25 {
                var session = store.newSession()
                try session.set("user", "user-\(index)")
                _ = try await store.save(&session)
                ids.append(session.id)
            }
            try await store.shutdown()
            let run = try await CLI.run(["copy", "--from", source.url, "--to", target.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("copied 25, skipped 0"))
            let moved = try await SessionStore.open(target.url, backends: [.sqlite], logger: quietLogger)
            for (index, id) in ids.enumerated() {
                #expect(try await moved.load(id).get("user", as: String.self) == "user-\(index)")
            }
            try await moved.shutdown()
        }
    }

    @Test func copyRerunSkipsRowsAlreadyThereAndCopiesSessionsChangedSince() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db")
            let target = SQLiteFixture(directory, name: "new.db")
            _ = try await writeKnownTraffic(source, expired: 0, live: 5)
            let first = try await CLI.run(["copy", "--json", "--from", source.url, "--to", target.url], in: directory)
            #expect(try first.json()["copied"] as? Int == 20)
            let now = nowMilliseconds()
            let changed = SessionKey(value: "live-3-1")
            try await source.withBackend { backend async throws in
                #expect(try await backend.update(changed, data: [1], expectedVersion: 1, expiresAt: now + 900 * hour, now: now))
            }
            let second = try await CLI.run(["copy", "--json", "--from", source.url, "--to", target.url], in: directory)
            #expect(second.status == 0, "\(second)")
            let report = try second.json()
            #expect(report["copied"] as? Int == 1)
            #expect(report["skipped"] as? Int == 19)
            let copied = try await allRows(target)[changed.value]
            #expect(copied?.version == 2)
            #expect(copied?.data == [1])
            #expect(copied?.expiresAt == now + 900 * hour)
        }
    }

    @Test func copyNeverOverwritesANewerVersionInTheTarget() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db")
            let target = SQLiteFixture(directory, name: "new.db")
            let now = nowMilliseconds()
            let key = SessionKey(value: "both-sides")
            try await source.withBackend { backend async throws in
                #expect(try await backend.insert(key, sessionRecord("old", version: 2, createdAt: now, expiresAt: now + hour)))
            }
            try await target.withBackend { backend async throws in
                #expect(try await backend.insert(key, sessionRecord("new", version: 5, createdAt: now, expiresAt: now + hour)))
            }
            let run = try await CLI.run(["copy", "--json", "--from", source.url, "--to", target.url], in: directory)
            #expect(try run.json()["skipped"] as? Int == 1)
            #expect(try await allRows(target)[key.value] == sessionRecord("new", version: 5, createdAt: now, expiresAt: now + hour))
        }
    }

    @Test func copyRefusesDifferentIDHashingAsAUsageError() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db", options: "id_hash=none")
            let target = SQLiteFixture(directory, name: "new.db")
            let run = try await CLI.run(["copy", "--from", source.url, "--to", target.url], in: directory)
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("id hashing differs"))
            #expect(!FileManager.default.fileExists(atPath: target.path))
        }
    }

    @Test func copyRefusesDifferentKeyLayoutsAsAUsageError() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db", options: "key=crc32")
            let target = SQLiteFixture(directory, name: "new.db", options: "key=id")
            let run = try await CLI.run(["copy", "--from", source.url, "--to", target.url], in: directory)
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("key layouts differ"))
        }
    }

    @Test func copyBetweenTwoTablesOfOneFile() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory)
            let target = SQLiteFixture(directory, options: "table=archive")
            _ = try await writeKnownTraffic(source, expired: 3, live: 4)
            let run = try await CLI.run(["copy", "--json", "--from", source.url, "--to", target.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(try run.json()["copied"] as? Int == 16)
            #expect(try rawSQL(source.path, "SELECT count(*) FROM archive") == ["16"])
            #expect(try rawSQL(source.path, "SELECT count(*) FROM sessions") == ["19"], "the source is left as it was")
        }
    }

    @Test func copyWhileTheSourceIsBeingWrittenCatchesUpOnARerun() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory)
            let target = SQLiteFixture(directory, name: "new.db")
            let ids = try await saveSessions(2_000, at: source.url)
            let store = try await SessionStore.open(source.url, backends: [.sqlite], logger: quietLogger)
            let child = try CLI.Child(
                ["copy", "--batch", "20", "--progress-every", "0", "--from", source.url, "--to", target.url], directory: directory)
            // Change sessions while the copy reads the file from its own process.
            var changes = 0
            while child.process.isRunning || changes == 0 {
                var session = try await store.load(ids[changes * 7919 % ids.count])
                _ = try await store.modify(&session) { session in
                    _ = try session.increment("visits")
                }
                changes += 1
            }
            let first = try await child.wait()
            #expect(first.status == 0, "\(first)")
            try await store.shutdown()
            let rerun = try await CLI.run(["copy", "--json", "--from", source.url, "--to", target.url], in: directory)
            #expect(rerun.status == 0, "\(rerun)")
            let now = nowMilliseconds()
            let expected = try await allRows(source).filter { $0.value.expiresAt > now }
            #expect(expected.count == 2_000)
            #expect(try await allRows(target) == expected, "after \(changes) changes during the copy")
        }
    }
}
