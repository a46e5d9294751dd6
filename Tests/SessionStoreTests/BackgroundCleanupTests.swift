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
        let store = SessionStore(backend: backend)
        store.startBackgroundCleanup(every: .milliseconds(1))
        while rounds.withLock({ $0.count }) < 2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await store.shutdown()
        let (first, second) = rounds.withLock { ($0[0], $0[1]) }
        let round = first.end - first.start
        let pause = second.start - first.end
        #expect(round >= .milliseconds(5))
        #expect(pause >= round * 45, "a slow round is followed by ~49x its length, not the 1 ms interval: \(pause)")
    }

    @Test func thePauseIsTheIntervalAfterAQuickRoundAndNeverPastTheLongestPause() {
        #expect(SessionStore.backgroundCleanupPause(after: .milliseconds(1), interval: .seconds(60)) == .seconds(60))
        #expect(SessionStore.backgroundCleanupPause(after: .seconds(1), interval: .seconds(10)) == .seconds(49))
        #expect(SessionStore.backgroundCleanupPause(after: .seconds(3600), interval: .seconds(10)) == SessionStore.backgroundCleanupLongestPause)
        #expect(SessionStore.backgroundCleanupPause(after: .seconds(3600), interval: .seconds(900)) == .seconds(900))
    }
}
