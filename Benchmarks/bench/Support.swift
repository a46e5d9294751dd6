import SessionStoreCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure of the benchmark itself (not of the code under test).
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Monotonic time in nanoseconds.
@inline(__always)
func nanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

/// Wall-clock milliseconds since the Unix epoch, the unit of `expires_at`.
func wallMillis() -> Int64 {
    SystemSessionClock().now()
}

/// A fast, seedable generator (SplitMix64) so workloads are reproducible and cheap.
struct FastRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform integer in `0..<bound` (bound > 0); the modulo bias is irrelevant here.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

func mix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Deterministic session ids: row `i` of a table always has the same 22-character
/// base64url id (16 pseudo-random bytes, the same shape the store mints), so scenarios
/// pick existing ids by index without keeping a million strings in memory.
enum IDs {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Seeds of the id families: stored rows, and ids that are never stored (misses).
    static let storedSeed: UInt64 = 0x5E55_1011
    static let missSeed: UInt64 = 0xBAD0_0001

    static func id(_ index: Int, seed: UInt64 = storedSeed) -> String {
        let a = mix64(UInt64(index) &* 2 &+ seed &* 0x1_0000_0001)
        let b = mix64(UInt64(index) &* 2 &+ 1 &+ seed &* 0x1_0000_0001)
        return encode(a, b)
    }

    static func missID(_ index: Int) -> String { id(index, seed: missSeed) }

    private static func encode(_ a: UInt64, _ b: UInt64) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(i)))
        }
        return String(unsafeUninitializedCapacity: 22) { out in
            var o = 0
            var i = 0
            while i + 3 <= 16 {
                let chunk = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out[o] = alphabet[Int((chunk >> 18) & 0x3F)]
                out[o + 1] = alphabet[Int((chunk >> 12) & 0x3F)]
                out[o + 2] = alphabet[Int((chunk >> 6) & 0x3F)]
                out[o + 3] = alphabet[Int(chunk & 0x3F)]
                o += 4
                i += 3
            }
            let chunk = UInt32(bytes[15]) << 16
            out[o] = alphabet[Int((chunk >> 18) & 0x3F)]
            out[o + 1] = alphabet[Int((chunk >> 12) & 0x3F)]
            return 22
        }
    }
}

/// Session data of the shape a web app keeps: a user id, a CSRF token, a locale, a cart
/// and a flash message, encoded with the store's own codec (about 200 bytes).
enum Payload {
    static func attributes(_ index: Int) -> [String: [UInt8]] {
        let token = String(mix64(UInt64(index) ^ 0xC5), radix: 16) + String(mix64(UInt64(index) ^ 0xF00D), radix: 16)
        let cart = (0..<(3 + index % 4)).map { String(1000 + (index &* 7 &+ $0 &* 13) % 9000) }.joined(separator: ",")
        return [
            "user_id": Array("\(100_000 + index % 900_000)".utf8),
            "csrf": Array("\"\(token)\"".utf8),
            "locale": Array("\"en-GB\"".utf8),
            "cart": Array("[\(cart)]".utf8),
            "flash": Array("\"Your settings were saved successfully.\"".utf8),
            "last_page": Array("\"/account/orders?page=\(index % 50)\"".utf8),
        ]
    }

    /// The attributes as JSON text per value, the way the naive store keeps them.
    static func encoded(_ index: Int) -> [UInt8] {
        AttributeCodec.encode(attributes(index))
    }

    /// The same attributes as the store's own saves write them (compact values).
    static func stored(_ index: Int) -> [UInt8] {
        let token = String(mix64(UInt64(index) ^ 0xC5), radix: 16) + String(mix64(UInt64(index) ^ 0xF00D), radix: 16)
        let cart = (0..<(3 + index % 4)).map { 1000 + (index &* 7 &+ $0 &* 13) % 9000 }
        let values: [String: any Encodable] = [
            "user_id": 100_000 + index % 900_000, "csrf": token, "locale": "en-GB", "cart": cart,
            "flash": "Your settings were saved successfully.", "last_page": "/account/orders?page=\(index % 50)",
        ]
        do {
            return try AttributeCodec.encode(typed: values)
        } catch {
            fatalError("the bench's own payload cannot be encoded: \(error)")
        }
    }
}

/// A clock the benchmark drives: the request mix advances it per request, so the touch
/// interval plays out over simulated minutes in a run of a second.
final class VirtualClock: SessionClock {
    private let millis: Atomic<Int64>
    init(start: Int64) { millis = Atomic(start) }
    func now() -> Int64 { millis.load(ordering: .relaxed) }
    func advance(by delta: Int64) { millis.add(delta, ordering: .relaxed) }
}

/// One line of progress on stderr, rewritten in place on a terminal, for long phases.
final class Progress: Sendable {
    private let label: String
    private let total: Int
    private let last = Atomic<UInt64>(0)
    private let start = nanos()

    init(_ label: String, total: Int) {
        self.label = label
        self.total = total
        if Self.onTerminal { Self.write("\r\u{1B}[K\(label) ...") }
    }

    /// Redraws the line at most four times a second.
    func update(_ done: Int) {
        guard Self.onTerminal else { return }
        let now = nanos()
        let previous = last.load(ordering: .relaxed)
        guard now - previous > 250_000_000 else { return }
        last.store(now, ordering: .relaxed)
        let elapsed = Fmt.fixed(Double(now - start) / 1e9, 1)
        guard total > 0 else {
            Self.write("\r\u{1B}[K\(label) \(elapsed) s")
            return
        }
        let percent = Double(done) * 100 / Double(total)
        Self.write("\r\u{1B}[K\(label) \(done)/\(total) (\(Fmt.fixed(percent, 0))%) \(elapsed) s")
    }

    func finish(_ note: String = "") {
        Self.note("\(label) done in \(Fmt.fixed(Double(nanos() - start) / 1e9, 1)) s \(note)")
    }

    /// A status line rewritten in place; on a terminal only.
    static func status(_ text: String) {
        if onTerminal { write("\r\u{1B}[K\(text)") }
    }

    private static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in writeStandardError(bytes.baseAddress, bytes.count) }
    }

    /// A plain status line on stderr (over the progress line on a terminal).
    static func note(_ text: String) { write(onTerminal ? "\r\u{1B}[K\(text)\n" : text + "\n") }

    /// Whether stderr is a terminal: redrawn lines and escapes only there, so output
    /// redirected to a file holds plain lines.
    private static let onTerminal = isatty(2) == 1
}

/// Unbuffered write to file descriptor 2.
private func writeStandardError(_ bytes: UnsafePointer<UInt8>?, _ count: Int) {
    _ = write(2, bytes, count)
}

/// Number formatting without Foundation's locale machinery.
enum Fmt {
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (abs(value) * scale).rounded()
        let whole = Int(rounded / scale)
        let sign = value < 0 && rounded != 0 ? "-" : ""
        guard digits > 0 else { return sign + String(whole) }
        var frac = String(Int(rounded - Double(whole) * scale))
        while frac.count < digits { frac = "0" + frac }
        return "\(sign)\(whole).\(frac)"
    }

    /// A human-scaled number: 3 significant-ish digits.
    static func num(_ value: Double) -> String {
        guard value.isFinite else { return "-" }
        let magnitude = abs(value)
        if magnitude >= 100 { return fixed(value, 0) }
        if magnitude >= 10 { return fixed(value, 1) }
        return fixed(value, 2)
    }

    static func rows(_ count: Int) -> String {
        if count >= 1_000_000 && count % 1_000_000 == 0 { return "\(count / 1_000_000)M" }
        if count >= 1000 && count % 1000 == 0 { return "\(count / 1000)k" }
        return String(count)
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let count = text.count
        guard count < width else { return text }
        let padding = String(repeating: " ", count: width - count)
        return right ? padding + text : text + padding
    }
}

/// `bytes` as lowercase hex digits, for SQL literals of the fills.
func hexDigits(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Inserts the rows of `order` for a server engine's fill: multi-row INSERTs of 1000 rows
/// (`prefix` and each row's `values`), committed every 20k rows (`begin` starts a transaction).
func insertAllRows(
    begin: String, exec: (String) throws -> Void, _ order: [Int], progress: Progress, prefix: String,
    _ values: (Int) -> String
) throws {
    var statement = prefix
    var inStatement = 0
    try exec(begin)
    for (done, index) in order.enumerated() {
        if inStatement > 0 { statement += "," }
        statement += values(index)
        inStatement += 1
        if inStatement == 1000 {
            try exec(statement)
            statement = prefix
            inStatement = 0
            if done % 20_000 == 19_999 {
                try exec("COMMIT")
                try exec(begin)
                progress.update(done + 1)
            }
        }
    }
    if inStatement > 0 { try exec(statement) }
    try exec("COMMIT")
}
