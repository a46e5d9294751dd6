public import SessionStore

/// Fixed keys for tests (never for an app: their bytes are in this file).
public enum TestKeys {
    /// A key of 32 copies of `fill`.
    public static func key(_ id: String, _ fill: UInt8) -> EncryptionKeyRing.Key {
        do {
            return try EncryptionKeyRing.Key(id: id, bytes: [UInt8](repeating: fill, count: 32))
        } catch {
            preconditionFailure("test key \(id) is invalid: \(error)")  // Fixed ids, checked by the tests that use them.
        }
    }

    /// A ring whose active key is `active`, with `decryptOnly` keys.
    public static func ring(
        _ active: EncryptionKeyRing.Key?, _ decryptOnly: [EncryptionKeyRing.Key] = [], readsPlaintext: Bool = true
    ) -> EncryptionKeyRing {
        do {
            return try EncryptionKeyRing(active: active, decryptOnly: decryptOnly, readsPlaintext: readsPlaintext)
        } catch {
            preconditionFailure("test ring is invalid: \(error)")
        }
    }

    /// Key `a`, the active key of ``standard``.
    public static let a = key("test-a", 0xA1)
    /// Key `b`, the key rotations move to.
    public static let b = key("test-b", 0xB2)
    /// The ring the encrypted conformance runs use: `a` active.
    public static let standard = ring(a)
}

extension TestDatabase {
    /// The same database with every backend opened wrapped in an `EncryptingBackend`:
    /// the conformance suite run on it checks that encryption changes no behaviour.
    public func encrypted(_ keys: EncryptionKeyRing = TestKeys.standard) -> TestDatabase {
        TestDatabase { [open] in EncryptingBackend(wrapping: try await open(), keys: keys) }
    }
}

/// A store sealing with `keys` over a backend of `database`, and that backend unwrapped,
/// to look at rows as the engine stores them.
struct EncryptedFixture: Sendable {
    let raw: any StorageBackend
    let store: SessionStore
    let clock: ManualClock

    init(
        _ database: TestDatabase, keys: EncryptionKeyRing, clock: ManualClock = ManualClock(),
        onCorrupt: SessionStoreConfiguration.CorruptDataPolicy = .throwError
    ) async throws {
        var configuration = SessionStoreConfiguration()
        configuration.regenerationGracePeriod = .zero
        configuration.clockSkewAllowance = .zero
        configuration.corruptDataPolicy = onCorrupt
        raw = try await database.open()
        self.clock = clock
        store = try SessionStore(backend: EncryptingBackend(wrapping: raw, keys: keys), configuration: configuration, clock: clock)
    }

    /// The row as the engine holds it.
    func stored(_ id: SessionID) async throws -> SessionRecord? {
        try await raw.load(store.storageKey(for: id), now: clock.now())
    }

    /// Replaces the stored bytes of `id`'s row (same key), as an attacker with write access could.
    func overwrite(_ id: SessionID, with data: [UInt8]) async throws {
        let written: Bool = try await raw.merge(store.storageKey(for: id), now: clock.now()) { current in
            (.replace(data: data, expiresAt: current?.expiresAt ?? 0), current != nil)
        }
        try await expect(written, "the row to overwrite exists")
    }

    func close() async throws {
        try await store.shutdown()
    }
}

/// Encryption at rest (`EncryptingBackend`) on every backend: what the engine stores, what
/// a changed row gives, and key rotation across two stores.
enum EncryptionChecks {
    static let marker = "MARKER-7f3a9c-secret-cart-token"

    static func isUndecryptable(_ error: any Error, keyID: String? = nil) -> Bool {
        guard let error = error as? SessionStoreError, error.code == .undecryptable else { return false }
        return keyID == nil || error.keyID == keyID
    }

    static func kind(_ record: SessionRecord?) -> EncryptedRow.Kind? {
        record.map { EncryptedRow.kind(of: $0.data) }
    }

    static let all: [ConformanceCheck] = [
        check("an encrypted row holds none of a marker value's bytes, and reads back") { database in
            let fixture = try await EncryptedFixture(database, keys: TestKeys.standard)
            var session = fixture.store.newSession()
            try session.set("token", marker)
            try await fixture.store.save(&session)
            let stored = try await fixture.stored(session.id)
            try await expect(kind(stored) == .encrypted(keyID: "test-a"), "the row is sealed under the active key")
            let data = stored?.data ?? []
            let needle = Array(marker.utf8)
            for length in [needle.count, 8] {
                let found = data.count >= length && (0...(data.count - length)).contains { Array(data[$0..<($0 + length)]) == Array(needle.prefix(length)) }
                try await expect(!found, "no \(length)-byte run of the marker is stored")
            }
            let loaded = try await fixture.store.load(session.id)
            try await expect(try loaded.get("token", as: String.self) == marker, "the value reads back")
            try await fixture.close()
        },
        check("a sealed row copied under another id does not decrypt") { database in
            let fixture = try await EncryptedFixture(database, keys: TestKeys.standard)
            var session = fixture.store.newSession()
            try session.set("user", "alice")
            try await fixture.store.save(&session)
            let stolen = try await fixture.stored(session.id)
            let other = SessionID.generate()
            guard let stolen else { throw ConformanceFailure(message: "row stored", location: #fileID) }
            try await expect(try await fixture.raw.insert(fixture.store.storageKey(for: other), stolen), "copy inserted")
            try await expectThrows("copied row", { try await fixture.store.load(other) }) { isUndecryptable($0, keyID: "test-a") }
            try await fixture.close()
        },
        check("every changed or cut byte of a sealed row is a typed error, never data") { database in
            // Plaintext refused, so a changed marker byte cannot pass as a plaintext row either.
            let fixture = try await EncryptedFixture(database, keys: TestKeys.ring(TestKeys.a, readsPlaintext: false))
            var session = fixture.store.newSession()
            try session.set("user", "alice")
            try await fixture.store.save(&session)
            guard let original = try await fixture.stored(session.id)?.data else {
                throw ConformanceFailure(message: "row stored", location: #fileID)
            }
            var variants: [[UInt8]] = []
            for index in original.indices {
                for flip: UInt8 in [0x01, 0x80, 0xFF] {
                    var changed = original
                    changed[index] ^= flip
                    variants.append(changed)
                }
            }
            for length in 1..<original.count { variants.append(Array(original.prefix(length))) }
            for data in variants {
                try await fixture.overwrite(session.id, with: data)
                try await expectThrows("changed row", { try await fixture.store.load(session.id) }) { isUndecryptable($0) }
            }
            try await fixture.overwrite(session.id, with: original)
            try await expect(try await fixture.store.load(session.id).get("user", as: String.self) == "alice", "the original still opens")
            try await fixture.close()
        },
        check("an unknown key id or a wrong key is a typed error naming the key id, or a new session under on_corrupt=new") { database in
            let clock = ManualClock()
            let writer = try await EncryptedFixture(database, keys: TestKeys.standard, clock: clock)
            var session = writer.store.newSession()
            try session.set("user", "alice")
            try await writer.store.save(&session)
            let unknown = try await EncryptedFixture(database, keys: TestKeys.ring(TestKeys.b), clock: clock)
            try await expectThrows("unknown key id", { try await unknown.store.load(session.id) }) { isUndecryptable($0, keyID: "test-a") }
            let wrong = try await EncryptedFixture(database, keys: TestKeys.ring(TestKeys.key("test-a", 0x5A)), clock: clock)
            try await expectThrows("wrong key", { try await wrong.store.load(session.id) }) { isUndecryptable($0, keyID: "test-a") }
            do {
                _ = try await wrong.store.load(session.id)
            } catch {
                let text = "\(error)"
                try await expect(!text.contains(session.id.text), "the error never shows the session id")
                try await expect(text.contains("test-a"), "the error names the key id")
            }
            let lenient = try await EncryptedFixture(database, keys: TestKeys.ring(TestKeys.b), clock: clock, onCorrupt: .startNewSession)
            let fresh = try await lenient.store.load(session.id)
            try await expect(!fresh.isStored && fresh.id != session.id, "on_corrupt=new hands out a new session")
            try await expect(try await writer.store.load(session.id).get("user", as: String.self) == "alice", "the row is left as it was")
            for fixture in [writer, unknown, wrong, lenient] { try await fixture.close() }
        },
        check("plaintext rows read as before and are sealed by their next write; a ring may refuse them") { database in
            let clock = ManualClock()
            let plainBackend = try await database.open()
            var configuration = SessionStoreConfiguration()
            configuration.clockSkewAllowance = .zero
            let plain = try SessionStore(backend: plainBackend, configuration: configuration, clock: clock)
            var session = plain.newSession()
            try session.set("cart", 3)
            try await plain.save(&session)
            let refusing = try await EncryptedFixture(database, keys: TestKeys.ring(TestKeys.a, readsPlaintext: false), clock: clock)
            try await expectThrows("plaintext refused", { try await refusing.store.load(session.id) }) { isUndecryptable($0) }
            let fixture = try await EncryptedFixture(database, keys: TestKeys.standard, clock: clock)
            try await expect(kind(try await fixture.stored(session.id)) == .plaintext, "the row starts as plaintext")
            var loaded = try await fixture.store.load(session.id)
            try await expect(try loaded.get("cart", as: Int.self) == 3, "a plaintext row reads as before")
            try loaded.set("cart", 4)
            try await fixture.store.save(&loaded)
            try await expect(kind(try await fixture.stored(session.id)) == .encrypted(keyID: "test-a"), "its next write seals it")
            // Turning encryption off: a ring that writes plaintext still opens sealed rows.
            let off = try await EncryptedFixture(database, keys: TestKeys.ring(nil, [TestKeys.a]), clock: clock)
            var again = try await off.store.load(session.id)
            try await expect(try again.get("cart", as: Int.self) == 4, "a ring writing plaintext opens sealed rows")
            try again.set("cart", 5)
            try await off.store.save(&again)
            try await expect(kind(try await off.stored(session.id)) == .plaintext, "and writes plaintext")
            try await plain.shutdown()
            for fixture in [refusing, fixture, off] { try await fixture.close() }
        },
        check("keys rotate through five steps on two stores with requests in flight, and no session is lost") { database in
            try await rotation(database)
        },
    ]

    /// Both hosts (and any being replaced) increment every session of `ids` at once; every
    /// load must find its session.
    static func requests(_ ids: [SessionID], _ hosts: [EncryptedFixture]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in ids {
                for fixture in hosts {
                    group.addTask {
                        var session = try await fixture.store.load(id)
                        try await expect(session.isStored && session.id == id, "a request finds its session")
                        try await fixture.store.modify(&session) { _ = try $0.increment("count") }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Two hosts sharing a database rotate from key `a` to key `b` in the order several
    /// hosts need, with requests from both hosts between and during the steps. Every load
    /// must find its session and every increment must count.
    static func rotation(_ database: TestDatabase) async throws {
        let clock = ManualClock()
        var open: [EncryptedFixture] = []
        func host(_ keys: EncryptionKeyRing) async throws -> EncryptedFixture {
            let fixture = try await EncryptedFixture(database, keys: keys, clock: clock)
            open.append(fixture)
            return fixture
        }
        var host1 = try await host(TestKeys.ring(TestKeys.a))
        var host2 = try await host(TestKeys.ring(TestKeys.a))
        var ids: [SessionID] = []
        for _ in 0..<24 {
            var session = host1.store.newSession()
            try session.set("count", 0)
            try await host1.store.save(&session)
            ids.append(session.id)
        }
        var expected = 0
        try await requests(ids, [host1, host2])
        expected += 2
        // 1. The new key, decrypt-only, everywhere: host 1 restarts first, host 2 is still old.
        let step1 = TestKeys.ring(TestKeys.a, [TestKeys.b])
        let restarted1 = try await host(step1)
        try await requests(ids, [host1, restarted1, host2])
        expected += 3
        host1 = restarted1
        host2 = try await host(step1)
        try await requests(ids, [host1, host2])
        expected += 2
        // A session last written under a, which no request touches until rekey.
        var idle = host2.store.newSession()
        try idle.set("count", 0)
        try await host2.store.save(&idle)
        // 2. Active on one host, then the other: host 2 reads what host 1 now seals with b.
        let step2 = TestKeys.ring(TestKeys.b, [TestKeys.a])
        host1 = try await host(step2)
        try await requests(ids, [host1, host2])
        expected += 2
        // 3. Rows move to b on their next write.
        try await requests(ids, [host1])
        expected += 1
        var moved = 0
        for id in ids where kind(try await host1.stored(id)) == .encrypted(keyID: "test-b") { moved += 1 }
        try await expect(moved == ids.count, "every row written since moved to b, \(moved) of \(ids.count)")
        try await expect(kind(try await host1.stored(idle.id)) == .encrypted(keyID: "test-a"), "an idle row stays under a")
        host2 = try await host(step2)
        // 4. Rekey every row while both hosts serve requests.
        let rekeying = EncryptingBackend(wrapping: host2.raw, keys: step2)
        let all = ids + [idle.id]
        let keys = all.map { host2.store.storageKey(for: $0) }
        let (first, second) = (host1, host2)
        let resealed = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                var count = 0
                for key in keys where try await rekeying.reseal(key, now: clock.now()) { count += 1 }
                return count
            }
            group.addTask { [ids] in
                try await requests(ids, [first, second])
                return 0
            }
            return try await group.reduce(0, +)
        }
        expected += 2
        try await expect(resealed >= 1, "rekey rewrote the idle row (and any not written since), \(resealed)")
        // 5. Counts show a unused; a host with b alone reads every session.
        var underA = 0
        for id in all where kind(try await host1.stored(id)) != .encrypted(keyID: "test-b") { underA += 1 }
        try await expect(underA == 0, "no row is left under a, \(underA) are")
        try await expect(try await rekeying.reseal(keys[0], now: clock.now()) == false, "a rerun of rekey finds nothing to do")
        let final = try await host(TestKeys.ring(TestKeys.b))
        for (index, id) in all.enumerated() {
            let count = try await final.store.load(id).get("count", as: Int.self)
            let want = id == idle.id ? 0 : expected
            try await expect(count == want, "session \(index) counted every increment: \(String(describing: count)) of \(want)")
        }
        for fixture in open { try await fixture.close() }
    }
}
