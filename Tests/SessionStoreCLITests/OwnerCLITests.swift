import Foundation
import SessionStore
import SessionStoreSQLite
import Testing

@Suite("session-store sessions and revoke (SQLite)")
struct OwnerCLITests {
    /// Signs `owner` in on `count` devices through a store on the fixture; returns the ids.
    func signIn(_ fixture: SQLiteFixture, owner: String, count: Int) async throws -> [SessionID] {
        try await fixture.withBackend { backend async throws in
            let store = try SessionStore(backend: backend)
            var ids: [SessionID] = []
            for index in 0..<count {
                var session = store.newSession()
                try await store.logIn(&session, owner: owner, device: SessionDevice(userAgent: "agent-\(index)", label: "device \(index)"))
                ids.append(session.id)
            }
            return ids
        }
    }

    @Test func sessionsListsAnOwnersDevicesAsJSONWithHandlesButNoIds() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let ids = try await signIn(fixture, owner: "user-1", count: 3)
            _ = try await signIn(fixture, owner: "user-2", count: 2)
            let run = try await CLI.run(["sessions", "--owner", "user-1", "--json", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
            #expect(rows.count == 3)
            #expect(Set(rows.compactMap { $0["userAgent"] as? String }) == ["agent-0", "agent-1", "agent-2"])
            for id in ids { #expect(!run.stdout.contains(id.text), "no session id is printed") }
            let table = try await CLI.run(["sessions", "--owner", "user-1", fixture.url], in: directory)
            #expect(table.status == 0 && table.stdout.contains("3 live sessions") && table.stdout.contains("device 2"), "\(table)")
        }
    }

    @Test func statsReportsOwnersAndSessionsPerOwner() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await signIn(fixture, owner: "user-1", count: 3)
            _ = try await signIn(fixture, owner: "user-2", count: 1)
            let run = try await CLI.run(["stats", "--json", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            let owners = try #require(try run.json()["owners"] as? [String: Int])
            #expect(owners == ["owners": 2, "boundSessions": 4, "maxPerOwner": 3, "p99PerOwner": 3], "\(owners)")
            let text = try await CLI.run(["stats", fixture.url], in: directory)
            #expect(text.stdout.contains("2 with 4 live sessions; per owner max 3, p99 3"), "\(text)")
        }
    }

    @Test func revokeEndsAllButOneHandleThenAll() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await signIn(fixture, owner: "user-1", count: 4)
            let other = try await signIn(fixture, owner: "user-2", count: 1)
            let listed = try await CLI.run(["sessions", "--owner", "user-1", "--json", fixture.url], in: directory)
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            let keep = try #require(rows.first?["handle"] as? String)
            let except = try await CLI.run(["revoke", "--owner", "user-1", "--except", keep, "--json", fixture.url], in: directory)
            #expect(except.status == 0, "\(except)")
            #expect(try except.json()["ended"] as? Int == 3)
            let left = try await CLI.run(["sessions", "--owner", "user-1", "--json", fixture.url], in: directory)
            #expect(left.stdout.contains(keep))
            let all = try await CLI.run(["revoke", "--owner", "user-1", "--json", fixture.url], in: directory)
            #expect(try all.json()["ended"] as? Int == 1)
            let alive = try await fixture.withBackend { backend async throws in
                try await SessionStore(backend: backend).load(other[0]).isStored
            }
            #expect(alive, "another owner's session is untouched")
        }
    }

    @Test func aMalformedHandleOrEmptyOwnerFailsWithoutChangingAnything() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await signIn(fixture, owner: "user-1", count: 2)
            let bad = try await CLI.run(["revoke", "--owner", "user-1", "--handle", "not-a-handle", fixture.url], in: directory)
            #expect(bad.status == 1 && bad.stderr.contains("invalidHandle"), "\(bad)")
            let empty = try await CLI.run(["sessions", "--owner", "", fixture.url], in: directory)
            #expect(empty.status == 1 && empty.stderr.contains("invalidOwner"), "\(empty)")
            let listed = try await CLI.run(["sessions", "--owner", "user-1", "--json", fixture.url], in: directory)
            #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])?.count == 2)
        }
    }
}
