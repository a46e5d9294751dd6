import SessionStore

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
        check("a closed backend throws instead of working") { database in
            let backend = try await database.open()
            try await backend.close()
            try await expectThrows("load after close", { try await backend.load(SessionKey(value: SessionID.generate().text), now: 0) }) { _ in true }
        },
    ]
}
