import SessionStoreCore

/// The backend contract, called directly: what ``StorageBackend`` promises per method.
enum ContractChecks {
    static func record(_ text: String, now: Int64, ttl: Int64 = 60_000, version: Int64 = 1) -> SessionRecord {
        SessionRecord(data: Array(text.utf8), version: version, createdAt: now, expiresAt: now + ttl)
    }

    static func withBackend(_ database: TestDatabase, _ body: (any StorageBackend) async throws -> Void) async throws {
        let backend = try await database.open()
        do {
            try await body(backend)
        } catch {
            try await backend.close()
            throw error
        }
        try await backend.close()
    }

    static let all: [ConformanceCheck] = [
        check("insert refuses a live duplicate and replaces an expired one") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                let now: Int64 = 1_000_000
                try await expect(try await backend.insert(key, record("one", now: now)), "first insert")
                try await expect(!(try await backend.insert(key, record("two", now: now + 1))), "live duplicate refused")
                try await expect(try await backend.load(key, now: now + 1)?.data == Array("one".utf8), "original kept")
                try await expect(try await backend.insert(key, record("three", now: now + 60_000)), "expired row replaced")
                try await expect(try await backend.load(key, now: now + 60_001)?.data == Array("three".utf8), "replacement stored")
            }
        },
        check("load returns nothing for a row at or past its expiry") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                _ = try await backend.insert(key, record("x", now: 0, ttl: 100))
                try await expect(try await backend.load(key, now: 99) != nil, "live at 99")
                try await expect(try await backend.load(key, now: 100) == nil, "expired at 100")
            }
        },
        check("update applies only at the expected version and never shortens expiry") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                _ = try await backend.insert(key, record("v1", now: 0, ttl: 1000))
                try await expect(!(try await backend.update(key, data: Array("x".utf8), expectedVersion: 2, expiresAt: 5000, now: 10)),
                           "wrong version refused")
                try await expect(try await backend.update(key, data: Array("v2".utf8), expectedVersion: 1, expiresAt: 500, now: 10),
                           "right version applied")
                let stored = try await backend.load(key, now: 10)
                try await expect(stored?.version == 2 && stored?.data == Array("v2".utf8), "data and version written")
                try await expect(stored?.expiresAt == 1000, "expiry kept at the later value")
                try await expect(!(try await backend.update(key, data: [], expectedVersion: 2, expiresAt: 5000, now: 1000)),
                           "an expired row is not updated")
            }
        },
        check("retire marks a row version 0 and only ever moves expiry back") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                _ = try await backend.insert(key, record("x", now: 0, ttl: 1000))
                try await expect(try await backend.retire(key, expiresAt: 500), "retired")
                var stored = try await backend.load(key, now: 10)
                try await expect(stored?.version == 0 && stored?.expiresAt == 500, "version 0, expiry 500: \(String(describing: stored))")
                _ = try await backend.retire(key, expiresAt: 900)
                stored = try await backend.load(key, now: 10)
                try await expect(stored?.expiresAt == 500, "retire never extends")
            }
        },
        check("delete honours the expected version") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                _ = try await backend.insert(key, record("x", now: 0))
                try await expect(!(try await backend.delete(key, expectedVersion: 7)), "wrong version not deleted")
                try await expect(try await backend.delete(key, expectedVersion: 1), "right version deleted")
                try await expect(!(try await backend.delete(key, expectedVersion: nil)), "nothing left to delete")
            }
        },
        check("deleteExpired deletes at most the limit, strictly before the cut-off") { database in
            try await withBackend(database) { backend in
                for index in 0..<10 {
                    _ = try await backend.insert(SessionKey(value: SessionID.generate().text), record("x", now: 0, ttl: 100 + Int64(index)))
                }
                let keep = SessionKey(value: SessionID.generate().text)
                _ = try await backend.insert(keep, record("keep", now: 0, ttl: 110))
                try await expect(try await backend.deleteExpired(before: 110, limit: 4) == 4, "limited to 4")
                try await expect(try await backend.deleteExpired(before: 110, limit: 100) == 6, "the other 6")
                try await expect(try await backend.load(keep, now: 109) != nil, "a row expiring at the cut-off is kept")
            }
        },
        check("keys differing only in letter case are different rows") { database in
            try await withBackend(database) { backend in
                let lower = SessionKey(value: "abcdefghijklmnopqrstuv")
                let upper = SessionKey(value: "ABCDEFGHIJKLMNOPQRSTUV")
                try await expect(try await backend.insert(lower, record("lower", now: 0)), "first row")
                try await expect(try await backend.insert(upper, record("upper", now: 0)), "case-differing key is a separate row")
                try await expect(try await backend.load(lower, now: 1)?.data == Array("lower".utf8), "lower row intact")
                try await expect(try await backend.load(upper, now: 1)?.data == Array("upper".utf8), "upper row intact")
                try await expect(try await backend.load(SessionKey(value: "AbCdEfGhIjKlMnOpQrStUv"), now: 1) == nil, "mixed case finds nothing")
            }
        },
        check("retire reports a matched row: true again when already retired, false when missing") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                try await expect(!(try await backend.retire(key, expiresAt: 500)), "nothing to retire")
                _ = try await backend.insert(key, record("x", now: 0, ttl: 1000))
                try await expect(try await backend.retire(key, expiresAt: 500), "retired")
                try await expect(try await backend.retire(key, expiresAt: 500), "retiring again changes nothing and still reports the row")
                try await expect(try await backend.retire(key, expiresAt: 900), "a later expiry is ignored, the row still reported")
            }
        },
        check("touch reports a change: false when the stored expiry is already later") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                try await expect(!(try await backend.touch(key, expiresAt: 5000, now: 10)), "nothing to touch")
                _ = try await backend.insert(key, record("x", now: 0, ttl: 1000))
                try await expect(try await backend.touch(key, expiresAt: 2000, now: 10), "moved forward")
                try await expect(!(try await backend.touch(key, expiresAt: 2000, now: 10)), "same expiry: no change")
                try await expect(!(try await backend.touch(key, expiresAt: 1500, now: 10)), "never backwards")
                try await expect(try await backend.load(key, now: 10)?.expiresAt == 2000, "expiry at 2000")
            }
        },
        check("merge hands decide the live row and applies its write atomically") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                let missing: Bool = try await backend.merge(key, now: 10) { current in (.replace(data: [1], expiresAt: 99), current == nil) }
                try await expect(missing, "decide sees nil for a missing row")
                try await expect(try await backend.load(key, now: 10) == nil, "nothing is created by a merge")
                _ = try await backend.insert(key, record("v1", now: 0, ttl: 1000))
                let seen: Int64 = try await backend.merge(key, now: 10) { current in
                    (.replace(data: Array("v2".utf8), expiresAt: 500), current?.version ?? -1)
                }
                try await expect(seen == 1, "decide sees version 1, got \(seen)")
                var stored = try await backend.load(key, now: 10)
                try await expect(stored?.version == 2 && stored?.data == Array("v2".utf8), "replaced at version 2")
                try await expect(stored?.expiresAt == 1000, "expiry never moves back")
                _ = try await backend.merge(key, now: 10) { _ in (.replace(data: Array("v3".utf8), expiresAt: 4000), ()) }
                stored = try await backend.load(key, now: 10)
                try await expect(stored?.version == 3 && stored?.expiresAt == 4000, "expiry moves forward")
                _ = try await backend.merge(key, now: 10) { _ in (MergeWrite.none, ()) }
                try await expect(try await backend.load(key, now: 10)?.version == 3, "none writes nothing")
                struct Refused: Error {}
                try await expectThrows("a throwing decide", { try await backend.merge(key, now: 10) { _ -> (MergeWrite, Void) in throw Refused() } }) {
                    $0 is Refused
                }
                try await expect(try await backend.load(key, now: 10)?.version == 3, "a throwing decide writes nothing")
                _ = try await backend.merge(key, now: 10) { _ in (.delete, ()) }
                try await expect(try await backend.load(key, now: Int64.min) == nil, "delete removes the row")
            }
        },
        check("merge passes a retired row as it is and sees an expired row as missing") { database in
            try await withBackend(database) { backend in
                let key = SessionKey(value: SessionID.generate().text)
                _ = try await backend.insert(key, record("x", now: 0, ttl: 1000))
                _ = try await backend.retire(key, expiresAt: 500)
                let version: Int64? = try await backend.merge(key, now: 10) { current in (MergeWrite.none, current?.version) }
                try await expect(version == 0, "retired row passed with version 0")
                let expired: Bool = try await backend.merge(key, now: 500) { current in (.delete, current == nil) }
                try await expect(expired, "expired row passed as nil")
                try await expect(try await backend.load(key, now: 10) != nil, "a write decided on an expired row is ignored")
            }
        },
        check("a closed backend throws closed for every call; a second close does nothing") { database in
            let backend = try await database.open()
            try await backend.close()
            try await backend.close()
            let key = SessionKey(value: SessionID.generate().text)
            func isClosed(_ error: any Error) -> Bool { (error as? StorageError)?.kind == .closed }
            try await expectThrows("load after close", { try await backend.load(key, now: 0) }, where: isClosed)
            try await expectThrows("insert after close", { try await backend.insert(key, record("x", now: 0)) }, where: isClosed)
            try await expectThrows("update after close", {
                try await backend.update(key, data: [], expectedVersion: 1, expiresAt: 1, now: 0)
            }, where: isClosed)
            try await expectThrows("merge after close", { try await backend.merge(key, now: 0) { _ in (MergeWrite.none, ()) } }, where: isClosed)
            try await expectThrows("touch after close", { try await backend.touch(key, expiresAt: 1, now: 0) }, where: isClosed)
            try await expectThrows("retire after close", { try await backend.retire(key, expiresAt: 1) }, where: isClosed)
            try await expectThrows("delete after close", { try await backend.delete(key, expectedVersion: nil) }, where: isClosed)
            try await expectThrows("deleteExpired after close", { try await backend.deleteExpired(before: 1, limit: 1) }, where: isClosed)
        },
    ]
}
