#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An opaque session identifier: 128 bits from the system CSPRNG in URL-safe base64 text.
///
/// Ids that arrive from clients are validated (length and alphabet) before any database
/// work. The store always mints ids itself; a client-chosen id is never adopted.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    /// Number of random bytes behind each id.
    public static let byteCount = 16
    /// Length of the text form: 22 base64url characters, no padding.
    public static let length = 22

    /// The id's text, as sent in a cookie.
    public let text: String

    private init(unchecked text: String) {
        self.text = text
    }

    /// Validates text received from a client; `nil` when it cannot be an id we minted.
    ///
    /// Costs one pass over at most ``length`` bytes and never allocates for bad input.
    public init?(validating text: some StringProtocol) {
        let utf8 = text.utf8
        guard utf8.count == Self.length else { return nil }
        let valid = utf8.withContiguousStorageIfAvailable { Self.isValid($0) }
            ?? Self.isValid(Array(utf8))
        guard valid else { return nil }
        self.init(unchecked: String(text))
    }

    private static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        Base64URL.values.withUnsafeBufferPointer { values in
            var last: UInt8 = 0
            for byte in bytes {
                last = values[Int(byte)]
                guard last != Base64URL.invalid else { return false }
            }
            // 16 bytes fill 21 characters and 2 bits of the last: the rest must be zero.
            return last & 0x0F == 0
        }
    }

    /// Mints a new id from the system's cryptographically secure random source
    /// (the kernel's, fetched in blocks; see `SecureRandomPool`).
    public static func generate() -> SessionID {
        withUnsafeTemporaryAllocation(byteCount: byteCount, alignment: 1) { bytes in
            SecureRandomPool.fill(bytes)
            defer { bytes.initializeMemory(as: UInt8.self, repeating: 0) }
            return SessionID(unchecked: Base64URL.encode(UnsafeRawBufferPointer(bytes)))
        }
    }

    /// A short, non-secret prefix for logs and errors; the full id is a credential.
    public var redacted: String {
        String(text.prefix(4)) + "…"
    }

    public var description: String { redacted }
}

/// URL-safe base64 without padding (RFC 4648 §5).
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Marks a byte outside the alphabet in ``values``.
    static let invalid: UInt8 = 0xFF
    /// Each byte's value in the alphabet, or ``invalid``: one load per byte when validating.
    static let values: [UInt8] = (0...255).map { value(of: UInt8($0)) ?? invalid }

    static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }

    static func encode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { encode($0) }
    }

    /// Encodes straight into the string's storage: one allocation, no intermediate array.
    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let length = (bytes.count * 4 + 2) / 3
        return alphabet.withUnsafeBufferPointer { alphabet in
            String(unsafeUninitializedCapacity: length) { output in
                var written = 0
                var index = 0
                while index + 3 <= bytes.count {
                    let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                    output[written] = alphabet[Int(chunk >> 18)]
                    output[written + 1] = alphabet[Int((chunk >> 12) & 0x3F)]
                    output[written + 2] = alphabet[Int((chunk >> 6) & 0x3F)]
                    output[written + 3] = alphabet[Int(chunk & 0x3F)]
                    written += 4
                    index += 3
                }
                let rest = bytes.count - index
                if rest > 0 {
                    var chunk = UInt32(bytes[index]) << 16
                    if rest == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
                    for step in 0...rest {
                        output[written] = alphabet[Int((chunk >> UInt32(18 - 6 * step)) & 0x3F)]
                        written += 1
                    }
                }
                return written
            }
        }
    }
}
