/// The versioned binary format of a session's attributes.
///
/// Layout: one format byte, then for each attribute a LEB128 key length, the key's UTF-8,
/// a LEB128 value length and the value's bytes. Format 2 (written by this release) stores
/// each value as a tag byte and a payload, compact for String, Int, Double, Bool, Date,
/// Data and UUID and JSON for any other `Codable`; format 1 (every release before) stored
/// every value as JSON, and is still read. Decoding only splits bytes and checks bounds,
/// UTF-8 and value tags; values are converted lazily, into the type the caller asks for,
/// so nothing in a row can execute code.
public enum AttributeCodec {
    /// The format version this release writes.
    public static let formatVersion: UInt8 = 2
    /// The oldest format version this release reads.
    public static let oldestReadableVersion: UInt8 = 1

    /// Encodes attributes given as JSON text per value (what tools and tests craft rows
    /// with): each value is stored as a JSON-tagged value of the current format.
    public static func encode(_ attributes: [String: [UInt8]]) -> [UInt8] {
        encodeStored(attributes.mapValues { [AttributeValue.Tag.json.rawValue] + $0 })
    }

    /// Encodes typed attribute values exactly as a ``SessionStore`` save stores them, for
    /// tools that write rows directly (migrations, benchmarks, fixtures).
    /// - Throws: ``SessionStoreError`` `invalidAttributeName` or `attributeCoding`.
    public static func encode(typed attributes: [String: any Encodable]) throws -> [UInt8] {
        var stored: [String: [UInt8]] = [:]
        for (key, value) in attributes {
            guard !key.isEmpty, key.utf8.count <= Session.maxAttributeNameLength else {
                throw SessionStoreError(.invalidAttributeName, "attribute names must be 1-\(Session.maxAttributeNameLength) bytes")
            }
            do {
                stored[key] = try AttributeValue.encode(value)
            } catch {
                throw SessionStoreError(.attributeCoding, "attribute cannot be encoded: \(error)", attribute: key)
            }
        }
        return encodeStored(stored)
    }

    /// Splits stored bytes into attributes, each value rendered as JSON text (as format 1
    /// stored it), whatever format the row has.
    /// - Throws: ``SessionStoreError`` `corruptData` or `unsupportedFormat`.
    public static func decode(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        var rendered: [String: [UInt8]] = [:]
        for (key, value) in try decodeStored(bytes) {
            do {
                rendered[key] = try AttributeValue.json(value)
            } catch {
                throw SessionStoreError(.corruptData, "stored attribute cannot be rendered as JSON: \(error)", attribute: key)
            }
        }
        return rendered
    }

    /// Encodes stored values (tag and payload, see `AttributeValue`), keys in sorted order
    /// so equal maps give equal bytes.
    static func encodeStored(_ attributes: [String: [UInt8]]) -> [UInt8] {
        var size = 1
        for (key, value) in attributes { size += key.utf8.count + value.count + 10 }
        var output = [UInt8]()
        output.reserveCapacity(size)
        output.append(formatVersion)
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            appendLength(key.utf8.count, to: &output)
            output.append(contentsOf: key.utf8)
            appendLength(value.count, to: &output)
            output.append(contentsOf: value)
        }
        return output
    }

    /// Splits a row of any readable format into stored values (format-1 values come back
    /// tagged as JSON).
    /// - Throws: ``SessionStoreError`` `corruptData` or `unsupportedFormat`.
    static func decodeStored(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        try AttributeRow(validating: bytes).dictionary
    }

    private static func appendLength(_ length: Int, to output: inout [UInt8]) {
        var value = UInt(length)
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }
}
