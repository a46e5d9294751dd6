import Foundation
import SessionStoreCore

/// Writes to standard output and standard error.
enum Console {
    /// Prints a line to standard output.
    static func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Prints a line to standard error.
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Writes raw text (no newline) to standard error, for progress bars.
    static func errorRaw(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Whether standard error is a terminal, so progress is drawn as a bar.
    static var errorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Prints `value` as pretty, key-sorted JSON on standard output.
    static func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        out(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

/// Keeps passwords out of everything printed, including parser errors that echo an argument.
enum Redaction {
    /// `text` with every argument that is a URL with a password replaced by its redacted form,
    /// and every such password (4 characters or longer) replaced by `***`.
    static func redact(_ text: String, arguments: [String]) -> String {
        var result = text
        for argument in arguments {
            var candidate = Substring(argument)
            if candidate.hasPrefix("-"), let equals = candidate.firstIndex(of: "=") {
                candidate = candidate[candidate.index(after: equals)...]
            }
            guard candidate.contains("@") else { continue }
            let url: StoreURL
            do {
                url = try StoreURL(String(candidate))
            } catch {
                continue  // Deliberate: an argument that is not a URL carries no password to hide.
            }
            guard let password = url.password, !password.isEmpty else { continue }
            result = result.replacingOccurrences(of: String(candidate), with: url.description)
            if password.count >= 4 {
                result = result.replacingOccurrences(of: password, with: "***")
            }
        }
        return result
    }
}

/// Human-readable figures.
enum Format {
    /// `1234567` as `1,234,567`.
    static func count(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { grouped += "," }
            grouped.append(digit)
        }
        return (value < 0 ? "-" : "") + grouped
    }

    static func count(_ value: Int) -> String { count(Int64(value)) }

    /// Bytes in B, KiB, MiB or GiB with one decimal.
    static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit])
    }

    /// Milliseconds since the epoch as an ISO 8601 UTC time.
    static func time(_ milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// Seconds with one decimal.
    static func seconds(_ value: Double) -> String { String(format: "%.1f s", value) }

    /// A rate per second, rounded.
    static func rate(_ done: Int64, _ elapsed: Double) -> String {
        elapsed > 0 ? count(Int64((Double(done) / elapsed).rounded())) + "/s" : "-"
    }
}
