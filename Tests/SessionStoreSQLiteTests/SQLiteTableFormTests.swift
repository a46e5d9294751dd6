import CSessionStoreSQLite
import Foundation
import SessionStore
@testable import SessionStoreSQLite
import Testing

/// A table this release creates (schema version 2) is a rowid table keyed by the key's
/// slot; one of version 1 (`WITHOUT ROWID`, clustered on the key) keeps working in its own
/// form until `upgradeSchema()` rebuilds it, with every row.
@Suite("SQLite table form (slotted rowid table, version 1 tables)")
struct SQLiteTableFormTests {
    func record(_ tag: UInt8, now: Int64, lifetime: Int64 = 60_000) -> SessionRecord {
        SessionRecord(data: [tag], version: 1, createdAt: now, expiresAt: now + lifetime)
    }

    /// Every row's slot and id as stored.
    func storedSlots(_ path: String) throws -> [String?] {
        try rawSQL(path, "SELECT slot || ' ' || id FROM sessions ORDER BY slot")
    }

    @Test func theSlotOfAKeyNeverChanges() {
        // Part of the file format: rows written by one release are found by the next. The
        // values were computed apart from this code, by a Python transcription of its doc.
        #expect(SQLiteSlot.of(SessionKey(value: "")) == -2_152_535_657_050_944_081)
        #expect(SQLiteSlot.of(SessionKey(value: "a")) == 6_774_081_908_283_191_102)
        #expect(SQLiteSlot.of(SessionKey(value: "kept-session-key")) == 5_797_580_800_741_764_647)
        #expect(SQLiteSlot.of(SessionKey(value: "x3B7wm0tLq1pZc9VdR2sYf8hKjN4uGe6aTbHvXoQi5M")) == -1_754_571_738_242_540_755)
        #expect(SQLiteSlot.of(SessionKey(value: "ab")) != SQLiteSlot.of(SessionKey(value: "ab\u{0}")), "the length counts")
    }

    @Test(arguments: KeyLayout.allCases)
    func aNewTableKeepsEachRowAtItsKeysSlot(layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open { $0.keyLayout = layout }
            let now: Int64 = 1_700_000_000_000
            let keys = (0..<50).map { SessionKey(value: "key-\($0)") }
            for (index, key) in keys.enumerated() {
                #expect(try await backend.insert(key, record(UInt8(index), now: now)))
            }
            for (index, key) in keys.enumerated() {
                #expect(try await backend.load(key, now: now)?.data == [UInt8(index)])
            }
            try await backend.close()
            let table = try rawSQL(database.path, "SELECT sql FROM sqlite_master WHERE name = 'sessions'").first.flatMap { $0 } ?? ""
            #expect(table.contains("slot INTEGER PRIMARY KEY") && !table.contains("WITHOUT ROWID"), "\(table)")
            let expected = keys.map { (SQLiteSlot.of($0), $0.value) }.sorted { $0.0 < $1.0 }.map { "\($0.0) \($0.1)" }
            #expect(try storedSlots(database.path) == expected)
        }
    }

    /// Writes a row for `other` into `key`'s slot from outside, as a key whose slot is the
    /// same would be stored: the closest a test can come to two ids sharing a slot.
    func occupySlot(of key: SessionKey, with other: String, expiresAt: Int64, _ database: TemporaryDatabase) throws {
        try rawScript(
            database.path,
            "INSERT INTO sessions (slot, id, data, version, created_at, expires_at) VALUES (\(SQLiteSlot.of(key)), '\(other)', x'AA', 4, 0, \(expiresAt))")
    }

    @Test func aKeyNeverSeesOrChangesTheRowOfAnotherKeyInItsSlot() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let now: Int64 = 1_700_000_000_000
            let key = SessionKey(value: "mine")
            try occupySlot(of: key, with: "theirs", expiresAt: now + 60_000, database)
            #expect(try await backend.load(key, now: now) == nil)
            #expect(try await backend.insert(key, record(1, now: now)) == false, "a live row holds the slot: nothing overwritten")
            #expect(try await backend.update(key, data: [9], expectedVersion: 4, expiresAt: now + 90_000, now: now) == false)
            #expect(try await backend.touch(key, expiresAt: now + 90_000, now: now) == false)
            #expect(try await backend.retire(key, expiresAt: now) == false)
            #expect(try await backend.delete(key, expectedVersion: nil) == false)
            let theirs = SessionKey(value: "theirs")
            let stored = try await backend.merge(theirs, now: now) { current in (MergeWrite.none, current) }
            #expect(stored == nil, "a row whose slot is not its id's own is out of every key's reach")
            try await backend.close()
            #expect(try rawSQL(database.path, "SELECT id || ' ' || hex(data) || ' ' || version FROM sessions") == ["theirs AA 4"])
        }
    }

    @Test func anInsertReplacesAnExpiredRowOfAnotherKeyInItsSlot() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let now: Int64 = 1_700_000_000_000
            let key = SessionKey(value: "mine")
            try occupySlot(of: key, with: "theirs", expiresAt: now - 1, database)
            #expect(try await backend.insert(key, record(7, now: now)))
            #expect(try await backend.load(key, now: now)?.data == [7])
            try await backend.close()
            #expect(try rawSQL(database.path, "SELECT id FROM sessions") == ["mine"])
        }
    }

    @Test func theStoreRefusesANewSessionWhoseSlotALiveRowHolds() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let store = try SessionStore(backend: backend)
            var session = store.newSession()
            try session.set("user", "ada")
            let key = store.storageKey(for: session.id)
            try occupySlot(of: key, with: "theirs", expiresAt: Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000, database)
            do {
                _ = try await store.save(&session)
                Issue.record("the save overwrote another session's row")
            } catch let error as SessionStoreError {
                #expect(error.code == .idCollision)
            }
            try await store.shutdown()
            #expect(try rawSQL(database.path, "SELECT id FROM sessions") == ["theirs"])
        }
    }

    /// A version 1 table as the release before version 2 made it, with one row per layout's key.
    func makeVersion1Table(_ database: TemporaryDatabase, layout: KeyLayout, rows: [(SessionKey, SessionRecord)]) throws {
        let old = SQLiteQueries(table: "sessions", layout: layout, version: 1)
        var script = SQLiteQueries.createSchemaTable + ";\n" + old.createTable + ";\n"
        script += "INSERT INTO \(SQLiteQueries.schemaTable) VALUES ('sessions', 1, '\(layout.rawValue)');\n"
        for (key, record) in rows {
            let hex = record.data.map { String(format: "%02X", $0) }.joined()
            let values = "'\(key.value)', x'\(hex)', \(record.version), \(record.createdAt), \(record.expiresAt)"
            script += layout == .checksumAndID
                ? "INSERT INTO sessions (crc32, id, data, version, created_at, expires_at) VALUES (\(key.checksum), \(values));\n"
                : "INSERT INTO sessions (id, data, version, created_at, expires_at) VALUES (\(values));\n"
        }
        try rawScript(database.path, script)
    }

    @Test(arguments: KeyLayout.allCases)
    func aVersion1TableIsReadAndWrittenInItsOwnFormUntilUpgraded(layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            let now: Int64 = 1_700_000_000_000
            let old = SessionKey(value: "old-row")
            try makeVersion1Table(database, layout: layout, rows: [(old, record(1, now: now))])
            let backend = try database.open { $0.keyLayout = layout }
            #expect(backend.queries.form == .clustered)
            #expect(try await backend.load(old, now: now)?.data == [1])
            let new = SessionKey(value: "new-row")
            #expect(try await backend.insert(new, record(2, now: now)))
            #expect(try await backend.update(old, data: [3], expectedVersion: 1, expiresAt: now + 60_000, now: now))
            #expect(try await backend.load(new, now: now)?.data == [2])
            try await backend.close()
            let table = try rawSQL(database.path, "SELECT sql FROM sqlite_master WHERE name = 'sessions'").first.flatMap { $0 } ?? ""
            #expect(table.contains("WITHOUT ROWID"), "the open left the table as it was: \(table)")
            #expect(try rawSQL(database.path, "SELECT version FROM session_store_schema") == ["1"])
        }
    }

    @Test(arguments: KeyLayout.allCases)
    func upgradingAVersion1TableKeepsEveryRowLiveExpiredAndRetired(layout: KeyLayout) async throws {
        try await withTemporaryDatabase { database in
            let now: Int64 = 1_700_000_000_000
            var rows: [(SessionKey, SessionRecord)] = []
            for index in 0..<300 {
                let lifetime: Int64 = index % 3 == 0 ? -1_000 : 60_000
                let record = SessionRecord(
                    data: [UInt8(index % 256), 1, 2], version: Int64(index % 5 + 1), createdAt: now - Int64(index),
                    expiresAt: now + lifetime)
                rows.append((SessionKey(value: "session-\(index)"), record))
            }
            rows.append((SessionKey(value: "retired"), SessionRecord(data: [5], version: 0, createdAt: now, expiresAt: now + 5_000)))
            try makeVersion1Table(database, layout: layout, rows: rows)
            let backend = try database.open { $0.keyLayout = layout }
            let upgrade = try await backend.upgradeSchema()
            #expect(upgrade.from == 1 && upgrade.to == SQLiteQueries.schemaVersion)
            do {
                _ = try await backend.load(rows[0].0, now: now)
                Issue.record("the backend went on with statements for the old form")
            } catch let error as StorageError {
                #expect(error.kind == .schema)
            }
            try await backend.close()

            let reopened = try database.open { $0.keyLayout = layout }
            #expect(reopened.queries.form == .slotted)
            for (key, stored) in rows {
                let loaded = try await reopened.load(key, now: now)
                #expect(loaded == (stored.expiresAt > now ? stored : nil), "\(key.value)")
            }
            #expect(try await reopened.countExpired(before: now) == Int64(rows.filter { $0.1.expiresAt < now }.count))
            #expect(try await reopened.unkeyedRowCount() == 0)
            let scanned = try await reopened.storedRows(after: nil, limit: 1_000, liveAt: nil)
            #expect(Set(scanned.map(\.key.value)) == Set(rows.map(\.0.value)))
            try await reopened.close()
            #expect(try rawSQL(database.path, "SELECT count(*) FROM sessions") == [String(rows.count)])
        }
    }

    @Test func anUpgradeThatRebuildsTheTableWaitsForOtherBackendsToClose() async throws {
        try await withTemporaryDatabase { database in
            try makeVersion1Table(database, layout: .idOnly, rows: [])
            let first = try database.open()
            let second = try database.open()
            do {
                _ = try await first.upgradeSchema()
                Issue.record("the upgrade rebuilt a table another backend uses in its old form")
            } catch let error as StorageError {
                #expect(error.kind == .busy)
                #expect(error.message.contains("another session store"))
            }
            try await second.close()
            #expect(try await first.upgradeSchema().to == SQLiteQueries.schemaVersion)
            try await first.close()
        }
    }

    static func openOnOwnThread(_ database: TemporaryDatabase) async throws -> SQLiteBackend {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try database.open { $0.busyTimeout = .seconds(60) } }) }.start()
        }
    }

    @Test func aBackendThatOpensWhileTheWriteLockIsHeldIsAnnouncedBeforeItReadsTheSchema() async throws {
        try await withTemporaryDatabase { database in
            try makeVersion1Table(database, layout: .idOnly, rows: [])
            let first = try database.open()
            #expect(first.readers?.isSharedWithAnotherBackend == false)
            // A raw connection holds the write lock: a second open stops at its schema
            // transaction, where an upgrade's own transaction would keep it.
            var raw: OpaquePointer?
            #expect(sqlite3_open(database.path, &raw) == SQLITE_OK)
            #expect(sqlite3_exec(raw, "BEGIN IMMEDIATE", nil, nil, nil) == SQLITE_OK)
            // The open blocks in SQLite's busy handler: on a thread of its own, never one of
            // Swift's cooperative pool, which every other test shares.
            let opening = Task { try await Self.openOnOwnThread(database) }
            var announced = false
            for _ in 0..<6_000 where !announced {
                announced = first.readers?.isSharedWithAnotherBackend == true
                if !announced { try await Task.sleep(for: .milliseconds(5)) }
            }
            #expect(announced, "the second backend announced itself before it could read the schema")
            #expect(sqlite3_exec(raw, "COMMIT", nil, nil, nil) == SQLITE_OK)
            #expect(sqlite3_close_v2(raw) == SQLITE_OK)
            let second = try await opening.value
            do {
                _ = try await first.upgradeSchema()
                Issue.record("the upgrade rebuilt a table the second backend uses in its old form")
            } catch let error as StorageError {
                #expect(error.kind == .busy)
            }
            try await second.close()
            try await first.close()
        }
    }

    @Test func aCleanupSliceOfRowsThatFillALeafPageEachStopsAtTwoMegabytesOfRows() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            let now: Int64 = 1_700_000_000_000
            // 3 KB rows: a leaf page of the rowid table holds one.
            let data = [UInt8](repeating: 7, count: 3_000)
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<2_500 {
                    group.addTask {
                        try await backend.insert(
                            SessionKey(value: "big-\(index)"),
                            SessionRecord(data: data, version: 1, createdAt: now - 10, expiresAt: now - 1))
                    }
                }
                for try await inserted in group { #expect(inserted) }
            }
            // Slices as large as they may grow (a fast machine's): only the delete cap holds them.
            let slicer = backend.cleanupSlicer
            while slicer.rows < SQLiteCleanupSlicer.maxRows {
                slicer.record(rows: slicer.rows, scanned: slicer.rows, deleted: 0, elapsed: .microseconds(1))
            }
            #expect(try await backend.deleteExpired(before: now, limit: 10_000) == 2_500)
            let (_, largest, _) = slicer.statistics
            try await backend.close()
            let bound = SQLiteCleanupSlicer.maxBytes / SQLiteCleanupSlicer.leafBytes(data: 3_000) + 1
            #expect(largest <= bound, "one slice deleted \(largest) rows, more than \(bound) pages' worth")
            #expect(largest >= bound - 1, "the slices were as large as the bound allows: \(largest)")
        }
    }

    @Test func theSQLFunctionGivesTheSlotOfTextAndBlobIDs() async throws {
        try await withTemporaryDatabase { database in
            let backend = try database.open()
            try await backend.close()
            let connection = try SQLiteConnection(path: database.path, uri: false, busyTimeoutMilliseconds: 0)
            defer { connection.close() }
            try SQLiteSlot.register(on: connection)
            let text = try connection.execute("SELECT session_store_slot('kept-session-key')", operation: "test")
            #expect(text == String(SQLiteSlot.of(SessionKey(value: "kept-session-key"))))
            let blob = try connection.execute("SELECT session_store_slot(CAST('kept-session-key' AS BLOB))", operation: "test")
            #expect(blob == text)
            #expect(try connection.execute("SELECT session_store_slot(NULL) IS NULL", operation: "test") == "1")
        }
    }
}
