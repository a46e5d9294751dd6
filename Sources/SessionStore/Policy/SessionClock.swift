#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The source of "now" for expiry decisions, injectable so tests control time.
public protocol SessionClock: Sendable {
    /// The current wall-clock time in milliseconds since the Unix epoch.
    func now() -> Int64
}

/// The system's wall clock (`CLOCK_REALTIME`).
public struct SystemSessionClock: SessionClock {
    public init() {}

    public func now() -> Int64 {
        let (seconds, nanoseconds) = Self.realtime()
        return seconds * 1000 + nanoseconds / 1_000_000
    }

    /// `CLOCK_REALTIME` as whole seconds and nanoseconds.
    private static func realtime() -> (seconds: Int64, nanoseconds: Int64) {
        var spec = timespec()
        let result = clock_gettime(CLOCK_REALTIME, &spec)
        // Fails only for an unknown clock id or a bad address, neither possible here.
        precondition(result == 0, "clock_gettime(CLOCK_REALTIME) failed")
        return (Int64(spec.tv_sec), Int64(spec.tv_nsec))
    }

    /// Now to the nanosecond, since the Unix epoch: what `SessionClock.preciseNow()` reads.
    package func preciseNow() -> Duration {
        let (seconds, nanoseconds) = Self.realtime()
        return .seconds(seconds) + .nanoseconds(nanoseconds)
    }
}

extension SessionClock {
    /// Now as precisely as this clock knows it, since the Unix epoch: to the nanosecond for
    /// ``SystemSessionClock``, ``now()`` exactly for any other clock (a test's manual clock).
    /// For a remaining time that must never be rounded up: a millisecond clock reads up to
    /// 1 ms early.
    package func preciseNow() -> Duration {
        if let system = self as? SystemSessionClock { return system.preciseNow() }
        return .milliseconds(now())
    }
}

extension Duration {
    /// Whole milliseconds, rounded down: the unit of every time a backend stores.
    package var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
