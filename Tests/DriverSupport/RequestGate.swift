// Used by the Vapor and Hummingbird driver tests.

/// Holds a request inside its handler until the test lets it go, so the request straddles
/// whatever the test does meanwhile: the interleaving is forced, not left to timing.
package final class RequestGate: Sendable {
    private let arrivals: AsyncStream<Void>
    private let arrival: AsyncStream<Void>.Continuation
    private let releases: AsyncStream<Void>
    private let release: AsyncStream<Void>.Continuation

    package init() {
        (arrivals, arrival) = AsyncStream.makeStream()
        (releases, release) = AsyncStream.makeStream()
    }

    /// Called by the handler: reports that it arrived, then waits until ``open()``.
    package func pass() async {
        arrival.yield()
        for await _ in releases {}
    }

    /// Waits until a handler arrived at the gate.
    package func waitForArrival() async {
        for await _ in arrivals { return }
    }

    /// Lets every handler at the gate, and every later one, go on.
    package func open() {
        release.finish()
    }
}
