import Foundation
import SessionStoreCore
import SessionStoreSQLite
import Testing

/// Writes known traffic: `expired` rows expired two hours ago, then live rows expiring in
/// 30 minutes, 5 hours, 3 days and 30 days (`live` of each), one of the first retired.
func writeKnownTraffic(_ fixture: SQLiteFixture, expired: Int, live: Int) async throws -> Int64 {
    let now = nowMilliseconds()
    try await fixture.withBackend { backend async throws in
        for index in 0..<expired {
            let record = sessionRecord("old\(index)", createdAt: now - 5 * hour, expiresAt: now - 2 * hour)
            #expect(try await backend.insert(SessionKey(value: "expired-\(index)"), record))
        }
        for (bucket, lifetime) in [hour / 2, 5 * hour, 72 * hour, 720 * hour].enumerated() {
            for index in 0..<live {
                let record = sessionRecord("u\(index)", createdAt: now - Int64(bucket), expiresAt: now + lifetime)
                #expect(try await backend.insert(SessionKey(value: "live-\(bucket)-\(index)"), record))
            }
        }
        #expect(try await backend.retire(SessionKey(value: "live-0-0"), expiresAt: now + hour / 2))
    }
    return now
}

@Suite("session-store stats and cleanup (SQLite)")
struct StatsCleanupCLITests {
    @Test func statsReportsCountsHistogramAndCreationTimesAfterKnownTraffic() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let now = try await writeKnownTraffic(fixture, expired: 7, live: 3)
            let run = try await CLI.run(["stats", "--json", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            let stats = try run.json()
            #expect(stats["rows"] as? Int == 19)
            #expect(stats["live"] as? Int == 12)
            #expect(stats["retired"] as? Int == 1)
            #expect(stats["expiredNotCleaned"] as? Int == 7)
            let expiring = try #require(stats["expiring"] as? [String: Int])
            #expect(expiring == ["nextHour": 3, "nextDay": 3, "nextWeek": 3, "later": 3])
            #expect(stats["oldestCreated"] as? Int64 == now - 5 * hour)
            #expect(stats["newestCreated"] as? Int64 == now)
            #expect(stats["schemaVersion"] as? Int == 3)
            #expect(stats["keyLayout"] as? String == "id")
            #expect((stats["tableBytes"] as? Int ?? 0) > 0)
            #expect(stats["indexBytes"] as? Int == 0, "no index beside the key since the key-order cleanup")
            #expect(stats["walBytes"] as? Int != nil)
            #expect(stats["cleanupLease"] == nil)
        }
    }

    @Test func statsShowsTheCleanupLeaseHolder() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let now = nowMilliseconds()
            try await fixture.withBackend { backend async throws in
                #expect(try await backend.acquireCleanupLease(holder: "app-host-1", now: now, duration: hour))
            }
            let run = try await CLI.run(["stats", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("cleanup lease  app-host-1 until "))
            let json = try await CLI.run(["stats", "--json", fixture.url], in: directory).json()
            let lease = try #require(json["cleanupLease"] as? [String: Any])
            #expect(lease["holder"] as? String == "app-host-1")
            #expect(lease["expiresAt"] as? Int64 == now + hour)
            #expect(lease["lapsed"] as? Bool == false)
        }
    }

    @Test func aFallbackStoreInTheURLIsNamedAsNotFollowed() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory, options: "fallback=mysql%3A%2F%2Fu%3AHidd3nPass%40db%2Fapp")
            _ = try await writeKnownTraffic(SQLiteFixture(directory), expired: 1, live: 1)
            let run = try await CLI.run(["stats", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stderr.contains("is not followed"))
            #expect(!run.stderr.contains("Hidd3nPass") && !run.stdout.contains("Hidd3nPass"))
        }
    }

    @Test func statsOnAMissingFileFailsWithoutCreatingIt() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory, name: "absent.db")
            let run = try await CLI.run(["stats", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("no database file"))
            #expect(!FileManager.default.fileExists(atPath: fixture.path))
        }
    }

    @Test func cleanupDeletesTheExpiredRowsAndReportsTheCount() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeKnownTraffic(fixture, expired: 45, live: 2)
            let run = try await CLI.run(["cleanup", "--json", "--batch", "10", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(try run.json()["deleted"] as? Int == 45)
            #expect(try rawSQL(fixture.path, "SELECT count(*) FROM sessions") == ["8"])
            #expect(try rawSQL(fixture.path, "SELECT count(*) FROM session_store_lease") == ["0"], "lease released")
        }
    }

    @Test func cleanupDryRunCountsWithoutDeleting() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeKnownTraffic(fixture, expired: 12, live: 1)
            let run = try await CLI.run(["cleanup", "--dry-run", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("would delete 12 sessions expired before"))
            #expect(try rawSQL(fixture.path, "SELECT count(*) FROM sessions") == ["16"])
        }
    }

    @Test func cleanupLeavesRowsExpiredWithinTheClockSkewAllowance() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory, options: "clock_skew=3h")
            _ = try await writeKnownTraffic(fixture, expired: 5, live: 1)
            let run = try await CLI.run(["cleanup", "--json", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(try run.json()["deleted"] as? Int == 0, "expired 2 h ago is within a 3 h allowance")
        }
    }

    @Test func cleanupDoesNotRunWhileAnotherStoreHoldsTheLease() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeKnownTraffic(fixture, expired: 5, live: 1)
            try await fixture.withBackend { backend async throws in
                #expect(try await backend.acquireCleanupLease(holder: "app-host-2", now: nowMilliseconds(), duration: hour))
            }
            let run = try await CLI.run(["cleanup", fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("held by app-host-2"))
            #expect(try rawSQL(fixture.path, "SELECT count(*) FROM sessions") == ["9"], "nothing deleted")
        }
    }

    @Test func cleanupProgressIsPlainLinesWhenNotOnATerminal() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeKnownTraffic(fixture, expired: 30, live: 1)
            let run = try await CLI.run(["cleanup", "--batch", "10", "--progress-every", "0", fixture.url], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(!run.stderr.contains("\r"), "no bar redrawing in a log")
            let lines = run.stderr.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("deleted 10/30 (33%)") }, "\(run)")
            #expect(lines.contains { $0.hasPrefix("deleted 30/30 (100%)") }, "\(run)")
            #expect(run.stdout.contains("deleted 30 expired sessions"))
        }
    }
}
