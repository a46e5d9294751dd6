import Foundation
import Synchronization

/// Progress of a long command on standard error: a bar redrawn in place on a terminal,
/// plain lines (at most one per `interval`) otherwise, so logs stay readable.
final class Progress: Sendable {
    private struct State {
        var done: Int64 = 0
        var detail = ""
        var lastDraw: ContinuousClock.Instant?
        var drawn = false
    }

    private let label: String
    private let total: Int64?
    private let terminal: Bool
    private let interval: Duration
    private let start = ContinuousClock.now
    private let state = Mutex(State())

    /// - Parameters:
    ///   - label: What is counted, e.g. `copied`.
    ///   - total: The expected count, when known (draws a bar and a percentage).
    ///   - interval: Least time between plain lines; `.zero` prints one per update.
    init(label: String, total: Int64?, interval: Duration, terminal: Bool = Console.errorIsTerminal) {
        self.label = label
        self.total = total
        self.interval = interval
        self.terminal = terminal
    }

    /// Seconds since the progress started.
    var elapsed: Double {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Adds `count` to what is done and shows it when due.
    func advance(by count: Int64, detail: String = "") {
        let now = ContinuousClock.now
        let line: String? = state.withLock { state in
            state.done += count
            state.detail = detail
            let minimum = terminal ? Duration.milliseconds(100) : interval
            if let last = state.lastDraw, now - last < minimum { return nil }
            state.lastDraw = now
            state.drawn = true
            return render(state.done, detail)
        }
        guard let line else { return }
        if terminal {
            Console.errorRaw("\r\u{1B}[K" + line)
        } else {
            Console.error(line)
        }
    }

    /// Draws the final state and ends the bar's line on a terminal.
    func finish() {
        guard terminal else { return }
        let line = state.withLock { state in render(state.done, state.detail) }
        Console.errorRaw("\r\u{1B}[K" + line + "\n")
    }

    private func render(_ done: Int64, _ detail: String) -> String {
        let seconds = elapsed
        var text = "\(label) \(Format.count(done))"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            if terminal {
                let width = 30
                let filled = Int((fraction * Double(width)).rounded(.down))
                text = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + text
            }
            text += "/\(Format.count(total)) (\(Int((fraction * 100).rounded(.down)))%)"
        }
        if !detail.isEmpty { text += ", " + detail }
        text += ", \(Format.rate(done, seconds)), \(Format.seconds(seconds))"
        return text
    }
}
