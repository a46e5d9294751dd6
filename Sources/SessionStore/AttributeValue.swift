import Foundation

/// The stored form of one attribute value (format 2): a tag byte, then the payload.
///
/// The types sessions hold most (String, Int, Double, Bool, Date, Data, UUID) have
/// compact payloads that read back without `JSONDecoder`; anything else `Codable` is
/// JSON (keys sorted, so equal values give equal bytes). Nothing here executes code:
/// a payload is only split, range-checked and converted.
enum AttributeValue {
    enum Tag: UInt8 {
        /// JSON text of any `Codable` value (every value of a format-1 row).
        case json = 1
        /// UTF-8 text.
        case string = 2
        /// A signed integer, zigzag LEB128.
        case int = 3
        /// An IEEE-754 double, 8 bytes little-endian.
        case double = 4
        /// One byte, 0 or 1.
        case bool = 5
        /// Seconds since 2001-01-01 (`timeIntervalSinceReferenceDate`) as a double.
        case date = 6
        /// Raw bytes.
        case data = 7
        /// 16 bytes.
        case uuid = 8
    }

    /// The stored form of `value`.
    /// - Throws: what `JSONEncoder` throws for a value without a compact form.
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        switch value {
        case let text as String:
            var bytes = [Tag.string.rawValue]
            bytes.append(contentsOf: text.utf8)
            return bytes
        case let number as Int:
            return encodeInteger(number)
        case let number as Double:
            return [Tag.double.rawValue] + littleEndianBytes(number.bitPattern)
        case let flag as Bool:
            return [Tag.bool.rawValue, flag ? 1 : 0]
        case let date as Date:
            return [Tag.date.rawValue] + littleEndianBytes(date.timeIntervalSinceReferenceDate.bitPattern)
        case let data as Data:
            return [Tag.data.rawValue] + Array(data)
        case let uuid as UUID:
            return withUnsafeBytes(of: uuid.uuid) { [Tag.uuid.rawValue] + Array($0) }
        default:
            return [Tag.json.rawValue] + Array(try jsonEncoder.encode(value))
        }
    }

    /// The stored form of an integer (see ``Session/increment(_:by:)``).
    static func encodeInteger(_ value: Int) -> [UInt8] {
        var bytes = [Tag.int.rawValue]
        var zigzag = UInt64(bitPattern: Int64(value) << 1 ^ Int64(value) >> 63)
        while zigzag >= 0x80 {
            bytes.append(UInt8(zigzag & 0x7F) | 0x80)
            zigzag >>= 7
        }
        bytes.append(UInt8(zigzag))
        return bytes
    }

    /// Reads a stored value as `T`. A compact value read as its own type costs no
    /// `JSONDecoder`; read as another type it converts as JSON would (an integer read as a
    /// `Double`, `Data` read as its base64 `String`), so format-1 rows and format-2 rows
    /// read alike.
    /// - Throws: `DecodingError` or ``AttributeValue/Malformed`` when the value is not a `T`.
    static func decode<T: Decodable>(_ raw: [UInt8], as type: T.Type) throws -> T {
        guard let first = raw.first, let tag = Tag(rawValue: first) else { throw Malformed(reason: "unknown value tag") }
        let payload = raw[1...]
        switch tag {
        case .string where T.self == String.self:
            guard let text = String(validating: payload, as: UTF8.self), let value = text as? T else {
                throw Malformed(reason: "string value is not UTF-8")
            }
            return value
        case .int where T.self == Int.self:
            if let value = try decodeInteger(payload) as? T { return value }
        case .double where T.self == Double.self:
            if let value = Double(bitPattern: try fixedWidth(payload)) as? T { return value }
        case .bool where T.self == Bool.self:
            if let value = try decodeBool(payload) as? T { return value }
        case .date where T.self == Date.self:
            if let value = Date(timeIntervalSinceReferenceDate: Double(bitPattern: try fixedWidth(payload))) as? T { return value }
        case .data where T.self == Data.self:
            if let value = Data(payload) as? T { return value }
        case .uuid where T.self == UUID.self:
            if let value = try decodeUUID(payload) as? T { return value }
        default:
            break
        }
        return try JSONDecoder().decode(T.self, from: Data(try json(raw)))
    }

    /// An integer value, as ``Session/increment(_:by:)`` reads it; `nil` when the value is
    /// not an integer.
    static func integer(_ raw: [UInt8]) -> Int? {
        guard let first = raw.first, let tag = Tag(rawValue: first) else { return nil }
        switch tag {
        case .int:
            do { return try decodeInteger(raw[1...]) } catch { return nil }
        case .json:
            do { return try JSONDecoder().decode(Int.self, from: Data(raw[1...])) } catch { return nil }
        default:
            return nil
        }
    }

    /// Whether `raw` is a well-formed stored value: a known tag and a payload of the
    /// right shape. Checked when a row is decoded, so damage shows at load.
    static func isWellFormed(_ raw: ArraySlice<UInt8>) -> Bool {
        guard let first = raw.first, let tag = Tag(rawValue: first) else { return false }
        let payload = raw.dropFirst()
        switch tag {
        case .json, .data: return true
        case .string: return String(validating: payload, as: UTF8.self) != nil
        case .int:
            do {
                _ = try decodeInteger(payload)
                return true
            } catch {
                return false
            }
        case .double, .date: return payload.count == 8
        case .bool: return payload.count == 1 && (payload.first.map { $0 <= 1 } ?? false)
        case .uuid: return payload.count == 16
        }
    }

    /// The value as JSON text, as format 1 stored it and as `JSONEncoder` would write it.
    static func json(_ raw: [UInt8]) throws -> [UInt8] {
        guard let first = raw.first, let tag = Tag(rawValue: first) else { throw Malformed(reason: "unknown value tag") }
        let payload = raw[1...]
        switch tag {
        case .json: return Array(payload)
        case .string:
            guard let text = String(validating: payload, as: UTF8.self) else { throw Malformed(reason: "string value is not UTF-8") }
            return Array(try jsonEncoder.encode(text))
        case .int: return Array(String(try decodeInteger(payload)).utf8)
        case .double: return Array(try jsonEncoder.encode(Double(bitPattern: try fixedWidth(payload))))
        case .bool: return Array((try decodeBool(payload) ? "true" : "false").utf8)
        case .date:
            return Array(try jsonEncoder.encode(Date(timeIntervalSinceReferenceDate: Double(bitPattern: try fixedWidth(payload)))))
        case .data: return Array(try jsonEncoder.encode(Data(payload)))
        case .uuid: return Array(try jsonEncoder.encode(try decodeUUID(payload)))
        }
    }

    /// A stored value that cannot be read (damaged, or from a newer format).
    struct Malformed: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    private static let jsonEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    private static func littleEndianBytes(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    private static func fixedWidth(_ payload: ArraySlice<UInt8>) throws -> UInt64 {
        guard payload.count == 8 else { throw Malformed(reason: "8-byte value has \(payload.count) bytes") }
        var value: UInt64 = 0
        for (shift, byte) in payload.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    private static func decodeInteger(_ payload: ArraySlice<UInt8>) throws -> Int {
        var zigzag: UInt64 = 0
        var shift: UInt64 = 0
        for (index, byte) in payload.enumerated() {
            guard shift < 64 else { break }
            zigzag |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                guard index == payload.count - 1 else { break }
                let value = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
                guard let result = Int(exactly: value) else { break }
                return result
            }
            shift += 7
        }
        throw Malformed(reason: "integer value is malformed")
    }

    private static func decodeBool(_ payload: ArraySlice<UInt8>) throws -> Bool {
        guard payload.count == 1, let byte = payload.first, byte <= 1 else { throw Malformed(reason: "bool value is malformed") }
        return byte == 1
    }

    private static func decodeUUID(_ payload: ArraySlice<UInt8>) throws -> UUID {
        guard payload.count == 16 else { throw Malformed(reason: "UUID value has \(payload.count) bytes") }
        let b = Array(payload)
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}
