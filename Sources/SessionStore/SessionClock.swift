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
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
