import Foundation
import SessionStoreCore
import SessionStoreSQLite
import Testing

/// Key files for the rotation from `old` to `new`.
private enum RotationKeys {
    static let old = Data(repeating: 0x0D, count: 32).base64EncodedString()
    static let new = Data(repeating: 0x0E, count: 32).base64EncodedString()
    /// Before the rotation: `old` active.
    static let before = "*old:\(old)\n"
    /// Steps 2-4: `new` active, `old` decrypt-only.
    static let during = "*new:\(new)\nold:\(old)\n"
    /// Step 5: `old` gone.
    static let after = "*new:\(new)\n"

    static func write(_ text: String, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        guard chmod(path, 0o600) == 0 else { throw CLIFixtureError(message: "chmod \(path)") }
        return path
    }
}

/// Stores `count` live rows, sealed with the ring `keys` (plaintext when `nil`), straight
/// into the table; returns their keys.
private func writeRows(_ fixture: SQLiteFixture, count: Int, keys: String?, prefix: String) async throws -> [SessionKey] {
    let now = nowMilliseconds()
    let sealing = try keys.map { try EncryptionKeyRing(parsing: $0) }
    return try await fixture.withBackend { backend async throws in
        let encrypting = sealing.map { EncryptingBackend(wrapping: backend, keys: $0) }
        var rows: [(key: SessionKey, record: SessionRecord)] = []
        for index in 0..<count {
            let key = SessionKey(value: "\(prefix)-\(index)")
            var record = sessionRecord("\(prefix)-user-\(index)", createdAt: now, expiresAt: now + 24 * hour)
            if let encrypting { record.data = try encrypting.seal(record.data, for: key) }
            rows.append((key, record))
        }
        let written = try await backend.importRows(rows) { _, _ in false }
        #expect(written == count)
        return rows.map(\.key)
    }
}

/// Each key's `user` attribute, read through an `EncryptingBackend` with `keys`.
private func users(_ fixture: SQLiteFixture, _ keys: [SessionKey], ring: String) async throws -> [String] {
    let opening = try EncryptionKeyRing(parsing: ring)
    return try await fixture.withBackend { backend async throws in
        let encrypting = EncryptingBackend(wrapping: backend, keys: opening)
        var users: [String] = []
        for key in keys {
            let record = try #require(try await encrypting.load(key, now: nowMilliseconds()))
            let user = try #require(try AttributeCodec.decode(record.data)["user"])
            users.append(String(decoding: user, as: UTF8.self))
        }
        return users
    }
}

@Suite("session-store rekey and encrypted rows in check and copy (SQLite)")
struct RekeyCLITests {
    @Test func checkCountsLiveRowsPerKeyAndRekeyMovesThemAllToTheActiveKey() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let sealed = try await writeRows(fixture, count: 30, keys: RotationKeys.before, prefix: "sealed")
            let plain = try await writeRows(fixture, count: 5, keys: nil, prefix: "plain")
            let during = try RotationKeys.write(RotationKeys.during, "during", in: directory)
            let after = try RotationKeys.write(RotationKeys.after, "after", in: directory)

            let before = try await CLI.run(["check", "--json", "--keys", during, fixture.url], in: directory)
            #expect(before.status == 0, "\(before)")
            #expect(try before.json()["liveByKey"] as? [String: Int] == ["old": 30, "plaintext": 5])
            #expect(try before.json()["undecryptable"] as? Int == 0)

            let rekey = try await CLI.run(["rekey", "--json", "--batch", "7", "--keys", during, fixture.url], in: directory)
            #expect(rekey.status == 0, "\(rekey)")
            let report = try rekey.json()
            #expect(report["rewritten"] as? Int == 35)
            #expect(report["current"] as? Int == 0)
            #expect(report["activeKey"] as? String == "new")

            let counted = try await CLI.run(["check", "--json", "--keys", after, fixture.url], in: directory)
            #expect(counted.status == 0, "\(counted)")
            #expect(try counted.json()["liveByKey"] as? [String: Int] == ["new": 35])
            #expect(try await users(fixture, sealed + plain, ring: RotationKeys.after)
                == (0..<30).map { "\"sealed-user-\($0)\"" } + (0..<5).map { "\"plain-user-\($0)\"" })

            let rerun = try await CLI.run(["rekey", "--json", "--keys", during, fixture.url], in: directory)
            #expect(try rerun.json()["rewritten"] as? Int == 0)
            #expect(try rerun.json()["current"] as? Int == 35)
        }
    }

    @Test func checkWithoutTheOldKeyReportsUndecryptableRowsAndFails() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeRows(fixture, count: 4, keys: RotationKeys.before, prefix: "sealed")
            let after = try RotationKeys.write(RotationKeys.after, "after", in: directory)
            let run = try await CLI.run(["check", "--json", "--keys", after, fixture.url], in: directory)
            #expect(run.status == 1, "\(run)")
            #expect(try run.json()["undecryptable"] as? Int == 4)
            let plain = try await CLI.run(["check", "--json", fixture.url], in: directory)
            #expect(plain.status == 0, "without a ring, encrypted rows are counted, not failed: \(plain)")
            #expect(try plain.json()["encryptedUnchecked"] as? Int == 4)
            let rekey = try await CLI.run(["rekey", "--json", "--keys", after, fixture.url], in: directory)
            #expect(rekey.status == 1, "\(rekey)")
            #expect(try rekey.json()["failed"] as? Int == 4)
        }
    }

    @Test func rekeyRerunAfterAKillMidwayFinishesTheJob() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            let keys = try await writeRows(fixture, count: 4000, keys: RotationKeys.before, prefix: "row")
            let during = try RotationKeys.write(RotationKeys.during, "during", in: directory)
            let child = try CLI.Child(
                // 200 batches 0.2 s apart: the kill after the fifth lands with about 39 s to spare.
                ["rekey", "--batch", "20", "--pause", "0.2", "--progress-every", "0", "--keys", during, fixture.url],
                directory: directory)
            while child.process.isRunning, try child.stderrSoFar().split(separator: "\n").count < 5 {
                try await Task.sleep(for: .milliseconds(5))
            }
            child.kill()
            _ = try await child.wait()
            let midway = try await CLI.run(["check", "--json", "--keys", during, fixture.url], in: directory)
            let counts = try #require(try midway.json()["liveByKey"] as? [String: Int])
            #expect((counts["new"] ?? 0) > 0 && (counts["old"] ?? 0) > 0, "killed midway: \(counts)")
            let rerun = try await CLI.run(["rekey", "--json", "--keys", during, fixture.url], in: directory)
            #expect(rerun.status == 0, "\(rerun)")
            #expect(try rerun.json()["rewritten"] as? Int == counts["old"])
            let done = try await CLI.run(["check", "--json", "--keys", during, fixture.url], in: directory)
            #expect(try done.json()["liveByKey"] as? [String: Int] == ["new": 4000])
            #expect(try await users(fixture, keys, ring: RotationKeys.after).count == 4000)
        }
    }

    @Test func copyMovesCiphertextAsItIsOrReencryptsWithKeys() async throws {
        try await withScratchDirectory { directory async throws in
            let source = SQLiteFixture(directory, name: "old.db")
            let asIs = SQLiteFixture(directory, name: "as-is.db")
            let resealed = SQLiteFixture(directory, name: "resealed.db")
            let keys = try await writeRows(source, count: 12, keys: RotationKeys.before, prefix: "s")
            let after = try RotationKeys.write(RotationKeys.after, "after", in: directory)
            let during = try RotationKeys.write(RotationKeys.during, "during", in: directory)
            let copied = try await CLI.run(["copy", "--json", "--from", source.url, "--to", asIs.url], in: directory)
            #expect(try copied.json()["copied"] as? Int == 12, "\(copied)")
            #expect(try await users(asIs, keys, ring: RotationKeys.before).count == 12)
            let moved = try await CLI.run(["copy", "--json", "--keys", during, "--from", source.url, "--to", resealed.url], in: directory)
            #expect(try moved.json()["copied"] as? Int == 12, "\(moved)")
            let counted = try await CLI.run(["check", "--json", "--keys", after, resealed.url], in: directory)
            #expect(try counted.json()["liveByKey"] as? [String: Int] == ["new": 12], "\(counted)")
            #expect(try await users(resealed, keys, ring: RotationKeys.after) == (0..<12).map { "\"s-user-\($0)\"" })
        }
    }

    @Test func rekeyWithoutAKeyRingOrWithAReadableKeyFileIsAUsageError() async throws {
        try await withScratchDirectory { directory async throws in
            let fixture = SQLiteFixture(directory)
            _ = try await writeRows(fixture, count: 1, keys: nil, prefix: "p")
            let missing = try await CLI.run(["rekey", fixture.url], in: directory)
            #expect(missing.status == 2, "\(missing)")
            let open = try RotationKeys.write(RotationKeys.during, "open", in: directory)
            #expect(chmod(open, 0o644) == 0)
            let refused = try await CLI.run(["rekey", "--keys", open, fixture.url], in: directory)
            #expect(refused.status == 2, "\(refused)")
            #expect(refused.stderr.contains("chmod 600") && !refused.stderr.contains(RotationKeys.new))
        }
    }
}

@Suite("session-store rekey and check against the test MariaDB", .testMariaDB)
struct MySQLRekeyCLITests {
    @Test func rekeyMovesEveryMySQLRowToTheActiveKeyAndCheckCountsThem() async throws {
        try await withScratchDirectory { directory async throws in
            try await TestMariaDB.withTable("rekey") { table async throws in
                let sealing = try EncryptionKeyRing(parsing: RotationKeys.before)
                let now = nowMilliseconds()
                let keys = try await TestMariaDB.withBackend(table) { backend async throws in
                    let encrypting = EncryptingBackend(wrapping: backend, keys: sealing)
                    var rows: [(key: SessionKey, record: SessionRecord)] = []
                    for index in 0..<50 {
                        let key = SessionKey(value: "mysql-rekey-\(index)")
                        var record = sessionRecord("m-user-\(index)", createdAt: now, expiresAt: now + 24 * hour)
                        record.data = try encrypting.seal(record.data, for: key)
                        rows.append((key, record))
                    }
                    #expect(try await backend.importRows(rows) { _, _ in false } == 50)
                    return rows.map(\.key)
                }
                let during = try RotationKeys.write(RotationKeys.during, "during", in: directory)
                let after = try RotationKeys.write(RotationKeys.after, "after", in: directory)
                let url = try TestMariaDB.url("table=\(table)")
                let before = try await CLI.run(["check", "--json", "--keys", during, url], in: directory)
                #expect(try before.json()["liveByKey"] as? [String: Int] == ["old": 50], "\(before)")
                let rekey = try await CLI.run(["rekey", "--json", "--batch", "7", "--keys", during, url], in: directory)
                #expect(rekey.status == 0, "\(rekey)")
                #expect(try rekey.json()["rewritten"] as? Int == 50)
                let counted = try await CLI.run(["check", "--json", "--keys", after, url], in: directory)
                #expect(try counted.json()["liveByKey"] as? [String: Int] == ["new": 50], "\(counted)")
                #expect(try counted.json()["undecryptable"] as? Int == 0)
                let users = try await TestMariaDB.withBackend(table) { backend async throws in
                    let encrypting = EncryptingBackend(wrapping: backend, keys: try EncryptionKeyRing(parsing: RotationKeys.after))
                    var users: [String] = []
                    for key in keys {
                        let record = try #require(try await encrypting.load(key, now: nowMilliseconds()))
                        users.append(String(decoding: try #require(try AttributeCodec.decode(record.data)["user"]), as: UTF8.self))
                    }
                    return users
                }
                #expect(users == (0..<50).map { "\"m-user-\($0)\"" })
            }
        }
    }
}
