/// The versioned binary format of a session's attributes.
///
/// Layout: one format byte (`1`), then for each attribute a LEB128 key length, the key's
/// UTF-8, a LEB128 value length and the value's bytes (the value's JSON encoding).
/// Decoding only splits bytes and checks bounds and UTF-8; values are decoded lazily, as
/// JSON into the type the caller asks for, so nothing in a row can execute code.
public enum AttributeCodec {
    /// The format version this release writes.
    public static let formatVersion: UInt8 = 1

    /// Encodes raw attribute values, keys in sorted order so equal maps give equal bytes.
    public static func encode(_ attributes: [String: [UInt8]]) -> [UInt8] {
        var size = 1
        for (key, value) in attributes { size += key.utf8.count + value.count + 10 }
        var output = [UInt8]()
        output.reserveCapacity(size)
        output.append(formatVersion)
        for key in attributes.keys.sorted() {
            let value = attributes[key]!
            appendLength(key.utf8.count, to: &output)
            output.append(contentsOf: key.utf8)
            appendLength(value.count, to: &output)
            output.append(contentsOf: value)
        }
        return output
    }

    /// Splits stored bytes into raw attribute values.
    /// - Throws: ``SessionStoreError`` `corruptData` or `unsupportedFormat`.
    public static func decode(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        guard let version = bytes.first else {
            throw SessionStoreError(.corruptData, "stored session data is empty")
        }
        guard version == formatVersion else {
            if version > formatVersion && version < 0x20 {
                throw SessionStoreError(.unsupportedFormat, "stored session uses format version \(version); this release reads version \(formatVersion)")
            }
            throw SessionStoreError(.corruptData, "stored session data has an unknown header byte \(version)")
        }
        var attributes = [String: [UInt8]]()
        var index = 1
        while index < bytes.count {
            let keyLength = try readLength(bytes, &index)
            guard keyLength > 0, keyLength <= bytes.count - index else {
                throw SessionStoreError(.corruptData, "stored session data has a bad key length at byte \(index)")
            }
            guard let key = String(validating: bytes[index..<(index + keyLength)], as: UTF8.self) else {
                throw SessionStoreError(.corruptData, "stored session data has a key that is not UTF-8 at byte \(index)")
            }
            index += keyLength
            let valueLength = try readLength(bytes, &index)
            guard valueLength <= bytes.count - index else {
                throw SessionStoreError(.corruptData, "stored session data is truncated in attribute \"\(key)\"", attribute: key)
            }
            guard attributes.updateValue(Array(bytes[index..<(index + valueLength)]), forKey: key) == nil else {
                throw SessionStoreError(.corruptData, "stored session data repeats attribute \"\(key)\"", attribute: key)
            }
            index += valueLength
        }
        return attributes
    }

    private static func appendLength(_ length: Int, to output: inout [UInt8]) {
        var value = UInt(length)
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    private static func readLength(_ bytes: [UInt8], _ index: inout Int) throws -> Int {
        var value = 0
        var shift = 0
        while true {
            guard index < bytes.count, shift <= 28 else {
                throw SessionStoreError(.corruptData, "stored session data has a bad length field at byte \(index)")
            }
            let byte = bytes[index]
            index += 1
            value |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }
}
