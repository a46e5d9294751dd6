#if Vapor
import SessionStore
import SessionStoreTesting
import SessionStoreVapor
import Testing
import Vapor
import VaporTesting

/// The store runs with the Vapor application: background cleanup from boot, a flush and
/// close at shutdown, whether registered in one line or with a driver built by hand.
@Suite("SessionStoreLifecycle (Vapor)")
struct LifecycleTests {
    /// A store on memory with one session that expired, cleaning every millisecond once run.
    private func storeWithAnExpiredSession() async throws -> (SessionStore, InMemoryBackend) {
        let memory = InMemoryBackend()
        let clock = ManualClock()
        var configuration = SessionStoreConfiguration()
        configuration.backgroundCleanupInterval = .milliseconds(1)
        let store = try SessionStore(backend: memory, configuration: configuration, clock: clock)
        var session = store.newSession()
        try session.set("user", "u-1")
        try await store.save(&session)
        clock.advance(by: .seconds(3600))
        return (store, memory)
    }

    /// Boots an app that `configure` sets up with the store, waits until background cleanup
    /// deleted the expired session, shuts the app down, and expects the store closed.
    private func expectRunWithTheApp(_ configure: @escaping (Application, SessionStore) -> Void) async throws {
        let (store, memory) = try await storeWithAnExpiredSession()
        try await withApp(configure: { app in
            configure(app, store)
            app.middleware.use(app.sessions.middleware)
        }) { app in
            try await app.asyncBoot()
            // No bound on time: the background round comes when the machine lets it.
            while memory.rowCount > 0 { try await Task.sleep(for: .milliseconds(1)) }
        }
        await #expect(throws: SessionStoreError.self) { try await store.cleanup() }
        await #expect(throws: StorageError.self) { _ = try await memory.deleteExpired(before: .max, limit: 1) }
    }

    @Test("the one-line registration cleans from boot on and closes the store when the app shuts down")
    func providerRunsTheStore() async throws {
        try await expectRunWithTheApp { app, store in app.sessions.use(.sessionStore(store)) }
    }

    @Test("a driver built by hand: SessionStoreLifecycle closes its store with the app")
    func handBuiltDriverClosesThroughTheLifecycle() async throws {
        try await expectRunWithTheApp { app, store in
            app.sessions.use { _ in SessionStoreDriver(store: store) }
            app.lifecycle.use(SessionStoreLifecycle(store: store))
        }
    }

    @Test("an app shut down without booting still closes the store, and never cleaned")
    func shutdownWithoutBootCloses() async throws {
        let (store, memory) = try await storeWithAnExpiredSession()
        try await withApp(configure: { app in
            app.sessions.use(.sessionStore(store))
        }) { _ in }
        #expect(memory.rowCount == 1, "cleanup starts at boot, and there was none")
        await #expect(throws: SessionStoreError.self) { try await store.cleanup() }
    }
}
#endif
