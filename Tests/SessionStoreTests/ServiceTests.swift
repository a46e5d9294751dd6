import ServiceLifecycle
import ServiceLifecycleTestKit
import SessionStore
import SessionStoreTesting
import Testing

/// The store as a swift-service-lifecycle `Service`: `run()` cleans in the background until
/// graceful shutdown (or cancellation), then shuts the store and its backend down.
@Suite("SessionStore as a Service")
struct ServiceTests {
    /// A store whose backend has one session that expired an hour ago.
    private func storeWithAnExpiredSession(interval: Duration?) async throws -> (SessionStore, InMemoryBackend, CountingBackend) {
        let memory = InMemoryBackend()
        let backend = CountingBackend(memory)
        let clock = ManualClock()
        var configuration = SessionStoreConfiguration()
        configuration.backgroundCleanupInterval = interval
        let store = try SessionStore(backend: backend, configuration: configuration, clock: clock)
        var session = store.newSession()
        try session.set("user", "u-1")
        try await store.save(&session)
        clock.advance(by: .seconds(3600))
        return (store, memory, backend)
    }

    @Test func runCleansInTheBackgroundUntilGracefulShutdownThenShutsTheStoreDown() async throws {
        let (store, memory, backend) = try await storeWithAnExpiredSession(interval: .milliseconds(1))
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.run() }
                // No bound on time: the background round comes when the machine lets it.
                while memory.rowCount > 0 { try await Task.sleep(for: .milliseconds(1)) }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect((backend.calls["deleteExpired"] ?? 0) >= 1)
        await #expect(throws: SessionStoreError.self) { try await store.cleanup() }
        await #expect(throws: StorageError.self) { _ = try await memory.deleteExpired(before: .max, limit: 1) }
    }

    @Test func cancellingRunShutsTheStoreDownAsGracefulShutdownDoes() async throws {
        let (store, memory, _) = try await storeWithAnExpiredSession(interval: nil)
        try await testGracefulShutdown { _ in
            let running = Task { try await store.run() }
            running.cancel()
            try await running.value
        }
        await #expect(throws: SessionStoreError.self) { try await store.cleanup() }
        await #expect(throws: StorageError.self) { _ = try await memory.deleteExpired(before: .max, limit: 1) }
    }

    @Test func theCleanupIntervalComesFromTheURLAndZeroTurnsItOff() throws {
        var url = try StoreURL("sqlite::memory:?cleanup_interval=5m")
        #expect(try SessionStoreConfiguration(url: &url).backgroundCleanupInterval == .seconds(300))
        var off = try StoreURL("sqlite::memory:?cleanup_interval=0")
        #expect(try SessionStoreConfiguration(url: &off).backgroundCleanupInterval == nil)
        #expect(SessionStoreConfiguration().backgroundCleanupInterval == .seconds(60))
    }
}
