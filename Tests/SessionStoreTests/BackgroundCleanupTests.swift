@testable import SessionStore
import SessionStoreTesting
import Synchronization
import Testing

/// Background cleanup's schedule: a slow round stretches the pause after it, so cleanup
/// takes a bounded share of the time whatever the interval the app chose.
@Suite("Background cleanup")
struct BackgroundCleanupTests {
    @Test func aSlowRoundIsFollowedByAPauseAboutFiftyTimesItsLength() async throws {
        let backend = CountingBackend(InMemoryBackend())
        let rounds = Mutex<[(start: ContinuousClock.Instant, end: ContinuousClock.Instant)]>([])
        backend.beforeEachCleanup {
            let start = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(5))
            rounds.withLock { $0.append((start, .now)) }
        }
        let store = try SessionStore(backend: backend)
        store.startBackgroundCleanup(every: .milliseconds(1))
        while rounds.withLock({ $0.isEmpty }) {
            try await Task.sleep(for: .milliseconds(5))
        }
        // A 5 ms round (longer on a loaded machine) is followed by a pause of ~49x its length,
        // at least 245 ms, not the 1 ms interval: 200 ms later the second round has not begun.
        // Load only lengthens the pause. Shutdown then cancels it, so the test does not wait.
        try await Task.sleep(for: .milliseconds(200))
        let (count, first) = rounds.withLock { ($0.count, $0[0]) }
        try await store.shutdown()
        #expect(first.end - first.start >= .milliseconds(5))
        #expect(count == 1, "a second round began within 200 ms of a 5 ms one: the pause was not stretched")
    }

    @Test func thePauseIsTheIntervalAfterAQuickRoundAndNeverPastTheLongestPause() {
        #expect(SessionStore.backgroundCleanupPause(after: .milliseconds(1), interval: .seconds(60)) == .seconds(60))
        #expect(SessionStore.backgroundCleanupPause(after: .seconds(1), interval: .seconds(10)) == .seconds(49))
        #expect(SessionStore.backgroundCleanupPause(after: .seconds(3600), interval: .seconds(10)) == SessionStore.backgroundCleanupLongestPause)
        #expect(SessionStore.backgroundCleanupPause(after: .seconds(3600), interval: .seconds(900)) == .seconds(900))
    }
}
