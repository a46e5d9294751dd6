public import SessionStore
import Synchronization

/// A clock that moves only when told, so tests decide expiry without sleeping.
public final class ManualClock: SessionClock {
    private let milliseconds: Atomic<Int64>

    /// A clock reading `start` milliseconds since the Unix epoch.
    public init(start: Int64 = 1_800_000_000_000) {
        milliseconds = Atomic(start)
    }

    public func now() -> Int64 { milliseconds.load(ordering: .relaxed) }

    /// Moves the clock forward.
    public func advance(by duration: Duration) {
        milliseconds.add(duration.milliseconds, ordering: .relaxed)
    }
}
