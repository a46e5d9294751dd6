public import Logging
import Synchronization

/// Collects every log line (level, message and metadata) in memory, so tests can assert
/// what a store reported and at which level.
public final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    public init() {}

    /// Every line so far, one per log call.
    public var text: String { lines.withLock { $0.joined(separator: "\n") } }

    /// The lines logged at `level`.
    public func lines(at level: Logger.Level) -> [String] {
        lines.withLock { $0.filter { $0.hasPrefix("\(level) ") } }
    }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    /// A logger writing into this log, at every level.
    public var logger: Logger {
        Logger(label: "test") { _ in CapturingLogHandler(log: self) }
    }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        log.append("\(event.level) \(event.message) \(all) \(event.source) \(event.file):\(event.line)")
    }
}
