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

    /// One stored value as it lies in a row or a session: its tag byte and its payload,
    /// not copied (format-1 values read as JSON-tagged).
    struct Stored: Sendable {
        var tag: UInt8
        var payload: ArraySlice<UInt8>

        /// The view of a value in its own array, tag byte first; `nil` for an empty array.
        init?(_ raw: [UInt8]) {
            guard let first = raw.first else { return nil }
            self.init(tag: first, payload: raw[1...])
        }

        init(tag: UInt8, payload: ArraySlice<UInt8>) {
            self.tag = tag
            self.payload = payload
        }

        /// The value in its own array, tag byte first (what a save encodes).
        var raw: [UInt8] {
            var bytes = [UInt8]()
            bytes.reserveCapacity(payload.count + 1)
            bytes.append(tag)
            bytes.append(contentsOf: payload)
            return bytes
        }

        /// Whether this is the value `raw` (tag byte first).
        func equals(_ raw: [UInt8]) -> Bool {
            raw.first == tag && raw.count == payload.count + 1 && raw[1...].elementsEqual(payload)
        }
    }

    /// Reads a stored value as `T`. A compact value read as its own type costs no
    /// `JSONDecoder`; read as another type it converts as JSON would (an integer read as a
    /// `Double`, `Data` read as its base64 `String`), so format-1 rows and format-2 rows
    /// read alike.
    /// - Throws: `DecodingError` or ``AttributeValue/Malformed`` when the value is not a `T`.
    static func decode<T: Decodable>(_ raw: [UInt8], as type: T.Type) throws -> T {
        guard let value = Stored(raw) else { throw Malformed(reason: "unknown value tag") }
        return try decode(value, as: T.self)
    }

    /// Reads a stored value as `T` (see ``decode(_:as:)-([UInt8],_)``).
    /// - Throws: `DecodingError` or ``AttributeValue/Malformed`` when the value is not a `T`.
    static func decode<T: Decodable>(_ value: Stored, as type: T.Type) throws -> T {
        guard let tag = Tag(rawValue: value.tag) else { throw Malformed(reason: "unknown value tag") }
        let payload = value.payload
        switch tag {
        case .string where T.self == String.self:
            return try cast(text(payload))
        case .int where T.self == Int.self:
            return try cast(try decodeInteger(payload))
        case .double where T.self == Double.self:
            return try cast(Double(bitPattern: try fixedWidth(payload)))
        case .bool where T.self == Bool.self:
            return try cast(try decodeBool(payload))
        case .date where T.self == Date.self:
            return try cast(Date(timeIntervalSinceReferenceDate: Double(bitPattern: try fixedWidth(payload))))
        case .data where T.self == Data.self:
            return try cast(Data(payload))
        case .uuid where T.self == UUID.self:
            return try cast(try decodeUUID(payload))
        default:
            break
        }
        return try JSONDecoder().decode(T.self, from: Data(try json(value)))
    }

    /// `value` as `T`, which the caller checked is its type.
    ///
    /// A bit cast once the types are known equal: `as? T` in this unspecialised generic
    /// code instantiates `Optional<T>` metadata on every call, which cost more than
    /// reading the value.
    @inline(__always)
    private static func cast<Value, T>(_ value: Value) throws -> T {
        guard T.self == Value.self else { throw Malformed(reason: "value is not a \(T.self)") }
        return unsafeBitCast(value, to: T.self)
    }

    /// An integer value, as ``Session/increment(_:by:)`` reads it; `nil` when the value is
    /// not an integer.
    static func integer(_ raw: [UInt8]) -> Int? {
        Stored(raw).flatMap(integer)
    }

    /// An integer value, as ``Session/increment(_:by:)`` reads it; `nil` when the value is
    /// not an integer.
    static func integer(_ value: Stored) -> Int? {
        guard let tag = Tag(rawValue: value.tag) else { return nil }
        switch tag {
        case .int:
            do { return try decodeInteger(value.payload) } catch { return nil }
        case .json:
            do { return try JSONDecoder().decode(Int.self, from: Data(value.payload)) } catch { return nil }
        default:
            return nil
        }
    }

    /// Whether `raw` is a well-formed stored value: a known tag and a payload of the
    /// right shape. Checked when a row is decoded, so damage shows at load.
    static func isWellFormed(_ raw: ArraySlice<UInt8>) -> Bool {
        raw.withUnsafeBufferPointer { isWellFormed($0) }
    }

    /// Whether `raw` (tag byte first) is a well-formed stored value.
    static func isWellFormed(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = raw.first, let tag = Tag(rawValue: first) else { return false }
        let payload = UnsafeBufferPointer(rebasing: raw.dropFirst())
        switch tag {
        case .json, .data: return true
        case .string: return UTF8Validation.isValid(payload)
        case .int: return decodeInteger(buffer: payload) != nil
        case .double, .date: return payload.count == 8
        case .bool: return payload.count == 1 && payload[0] <= 1
        case .uuid: return payload.count == 16
        }
    }

    /// The value as JSON text, as format 1 stored it and as `JSONEncoder` would write it.
    static func json(_ raw: [UInt8]) throws -> [UInt8] {
        guard let value = Stored(raw) else { throw Malformed(reason: "unknown value tag") }
        return try json(value)
    }

    /// The value as JSON text (see ``json(_:)-([UInt8])``).
    static func json(_ value: Stored) throws -> [UInt8] {
        guard let tag = Tag(rawValue: value.tag) else { throw Malformed(reason: "unknown value tag") }
        let payload = value.payload
        switch tag {
        case .json: return Array(payload)
        case .string:
            return Array(try jsonEncoder.encode(text(payload)))
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

    /// A string payload as text. Every stored value that reaches a read was checked: a
    /// row's when it was loaded (``AttributeRow/init(validating:)``), a new value's when
    /// ``encode(_:)`` wrote it from a `String`; so this does not check again (the
    /// standard library's conversion still never produces invalid text).
    private static func text(_ payload: ArraySlice<UInt8>) -> String {
        payload.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
    }

    private static func fixedWidth(_ payload: ArraySlice<UInt8>) throws -> UInt64 {
        guard payload.count == 8 else { throw Malformed(reason: "8-byte value has \(payload.count) bytes") }
        var value: UInt64 = 0
        for (shift, byte) in payload.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    private static func decodeInteger(_ payload: ArraySlice<UInt8>) throws -> Int {
        guard let value = payload.withUnsafeBufferPointer({ decodeInteger(buffer: $0) }) else {
            throw Malformed(reason: "integer value is malformed")
        }
        return value
    }

    /// A zigzag LEB128 integer that fills `payload` exactly; `nil` when malformed.
    private static func decodeInteger(buffer payload: UnsafeBufferPointer<UInt8>) -> Int? {
        var zigzag: UInt64 = 0
        var shift: UInt64 = 0
        for (index, byte) in payload.enumerated() {
            guard shift < 64 else { return nil }
            zigzag |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                guard index == payload.count - 1 else { return nil }
                let value = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
                return Int(exactly: value)
            }
            shift += 7
        }
        return nil
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
