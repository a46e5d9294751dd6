import SessionStore
import SessionStoreTesting
import Testing

@Suite("Fallback backend for migrations")
struct FallbackBackendTests {
    @Test("passes the conformance suite with an empty legacy store", arguments: BackendConformance.checks)
    func conformance(_ check: ConformanceCheck) async throws {
        let primary = SharedOpen(backend: InMemoryBackend())
        let legacy = InMemoryBackend()
        try await check.run(on: TestDatabase { FallbackBackend(primary: primary.next(), legacy: ClosableView(legacy)) })
    }

    /// A legacy store holding one session, and a store reading through the fallback.
    struct Migration {
        let clock = ManualClock()
        let primary = InMemoryBackend()
        let legacy = InMemoryBackend()
        let store: SessionStore
        let legacyID: SessionID

        init() async throws {
            var configuration = SessionStoreConfiguration()
            configuration.regenerationGracePeriod = .zero
            let old = try SessionStore(backend: legacy, configuration: configuration, clock: clock)
            var session = old.newSession()
            try session.set("user", "alice")
            try await old.save(&session)
            legacyID = session.id
            store = try SessionStore(
                backend: FallbackBackend(primary: primary, legacy: legacy), configuration: configuration, clock: clock)
        }
    }

    @Test("a session only in the legacy store loads")
    func legacyHit() async throws {
        let migration = try await Migration()
        let session = try await migration.store.load(migration.legacyID)
        #expect(try session.get("user", as: String.self) == "alice")
        #expect(migration.primary.rowCount == 0, "a plain read copies nothing")
    }

    @Test("the first save copies the session into the new store and never writes the legacy one")
    func copyOnSave() async throws {
        let migration = try await Migration()
        let legacyBefore = try await migration.legacy.load(migration.store.storageKey(for: migration.legacyID), now: 0)
        var session = try await migration.store.load(migration.legacyID)
        try session.set("cart", 3)
        #expect(try await migration.store.save(&session) == .updated)
        let copied = try await migration.primary.load(migration.store.storageKey(for: migration.legacyID), now: 0)
        #expect(copied != nil)
        let legacyAfter = try await migration.legacy.load(migration.store.storageKey(for: migration.legacyID), now: 0)
        #expect(legacyAfter == legacyBefore, "legacy row untouched")
        let reloaded = try await migration.store.load(migration.legacyID)
        #expect(try reloaded.get("cart", as: Int.self) == 3)
        #expect(try reloaded.get("user", as: String.self) == "alice")
    }

    @Test("a touch at load copies the session so it stays alive")
    func copyOnTouch() async throws {
        let migration = try await Migration()
        migration.clock.advance(by: .seconds(120))
        let session = try await migration.store.load(migration.legacyID)
        #expect(session.touchedOnLoad)
        #expect(migration.primary.rowCount == 1)
    }

    @Test("destroying a legacy session cannot bring it back from the legacy store")
    func destroyLeavesTombstone() async throws {
        let migration = try await Migration()
        var session = try await migration.store.load(migration.legacyID)
        try await migration.store.destroy(&session)
        #expect(!(try await migration.store.load(migration.legacyID).isStored))
        #expect(migration.legacy.rowCount == 1, "legacy store never written")
    }

    @Test("regenerating a legacy session moves it to the new store and kills the old id")
    func regenerate() async throws {
        let migration = try await Migration()
        var session = try await migration.store.load(migration.legacyID)
        try await migration.store.regenerateID(&session)
        #expect(!(try await migration.store.load(migration.legacyID).isStored))
        #expect(try await migration.store.load(session.id).get("user", as: String.self) == "alice")
    }
}
