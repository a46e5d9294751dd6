#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stored row of attributes (see ``AttributeCodec``), checked whole once and then read
/// in place.
///
/// Loading a session checks everything a damaged row could hold (framing, UTF-8 names,
/// value tags and shapes, UTF-8 text values, repeated names) in one pass over the bytes,
/// so damage still shows at load, where the store's `on_corrupt` policy applies. The pass
/// copies nothing and allocates nothing: a read walks the checked framing to the name it
/// wants (a few bytes per attribute, cheaper than building an index for the handful of
/// attributes a session holds) and converts only that value. A session that changes copies
/// the attributes into a dictionary at its first change (see ``SessionAttributes``).
struct AttributeRow: Sendable {
    /// Where one attribute lies in ``bytes``.
    struct Entry {
        var keyStart: Int
        var keyEnd: Int
        /// Format 2: the tag byte; format 1: the first byte of the JSON text.
        var valueStart: Int
        var valueEnd: Int
    }

    /// The row as stored.
    let bytes: [UInt8]
    /// The row's format version (1: untagged JSON values, 2: tagged values).
    let format: UInt8
    /// The number of attributes.
    let count: Int
    /// Whether every name is ASCII. A name is compared byte for byte when it and the name
    /// asked for are both ASCII, as `String` otherwise (canonically equivalent names are
    /// the same attribute, as they were as dictionary keys).
    let keysAreASCII: Bool

    /// A row without attributes.
    static let empty = AttributeRow()

    private init() {
        bytes = [AttributeCodec.formatVersion]
        format = AttributeCodec.formatVersion
        count = 0
        keysAreASCII = true
    }

    /// Checks a row of any readable format: after this, reads trust its framing.
    /// - Throws: ``SessionStoreError`` `corruptData` or `unsupportedFormat`.
    init(validating bytes: [UInt8]) throws {
        guard let version = bytes.first else {
            throw SessionStoreError(.corruptData, "stored session data is empty")
        }
        guard version >= AttributeCodec.oldestReadableVersion, version <= AttributeCodec.formatVersion else {
            if version > AttributeCodec.formatVersion && version < 0x20 {
                throw SessionStoreError(
                    .unsupportedFormat,
                    "stored session uses format version \(version); this release reads versions \(AttributeCodec.oldestReadableVersion)-\(AttributeCodec.formatVersion)")
            }
            throw SessionStoreError(.corruptData, "stored session data has an unknown header byte \(version)")
        }
        (count, keysAreASCII) = try bytes.withUnsafeBufferPointer { try Self.check($0, format: version) }
        self.bytes = bytes
        self.format = version
    }

    /// Checks every attribute after the header byte; returns their number and whether
    /// every name is ASCII.
    private static func check(_ bytes: UnsafeBufferPointer<UInt8>, format: UInt8) throws -> (Int, Bool) {
        var count = 0
        var allASCII = true
        // The name before, while every name so far is ASCII and after the one before it in
        // byte order (rows this library writes are sorted): no name can repeat then.
        var previous: Range<Int>? = nil
        // Every name so far, once that order breaks.
        var seen: Set<String>?
        var index = 1
        while index < bytes.count {
            let entryStart = index
            let keyLength = try checkedLength(bytes, &index)
            guard keyLength > 0, keyLength <= bytes.count - index else {
                throw SessionStoreError(.corruptData, "stored session data has a bad key length at byte \(index)")
            }
            let keyRange = index..<(index + keyLength)
            let keyBytes = UnsafeBufferPointer(rebasing: bytes[keyRange])
            let keyIsASCII = UTF8Validation.isASCII(keyBytes)
            guard keyIsASCII || UTF8Validation.isValid(keyBytes) else {
                throw SessionStoreError(.corruptData, "stored session data has a key that is not UTF-8 at byte \(index)")
            }
            index += keyLength
            let valueLength = try checkedLength(bytes, &index)
            guard valueLength <= bytes.count - index else {
                let key = String(decoding: keyBytes, as: UTF8.self)
                throw SessionStoreError(.corruptData, "stored session data is truncated in attribute \"\(key)\"", attribute: key)
            }
            let value = UnsafeBufferPointer(rebasing: bytes[index..<(index + valueLength)])
            if format != 1 && !AttributeValue.isWellFormed(value) {
                let key = String(decoding: keyBytes, as: UTF8.self)
                throw SessionStoreError(.corruptData, "stored session data has a malformed value in attribute \"\(key)\"", attribute: key)
            }
            if seen == nil {
                let inOrder = keyIsASCII && (previous.map { UnsafeBufferPointer(rebasing: bytes[$0]).lexicographicallyPrecedes(keyBytes) } ?? true)
                if inOrder {
                    previous = keyRange
                } else {
                    seen = Set(names(in: UnsafeBufferPointer(rebasing: bytes[..<entryStart])))
                }
            }
            if seen != nil {
                let key = String(decoding: keyBytes, as: UTF8.self)
                guard seen?.insert(key).inserted == true else {
                    throw SessionStoreError(.corruptData, "stored session data repeats attribute \"\(key)\"", attribute: key)
                }
            }
            allASCII = allASCII && keyIsASCII
            count += 1
            index += valueLength
        }
        return (count, allASCII)
    }

    /// The names of the (checked) attributes in `bytes`, which starts with the header byte.
    private static func names(in bytes: UnsafeBufferPointer<UInt8>) -> [String] {
        var names: [String] = []
        walk(bytes) { entry in
            names.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[entry.keyStart..<entry.keyEnd]), as: UTF8.self))
            return true
        }
        return names
    }

    /// Calls `body` with each attribute of checked `bytes` in stored order, until it
    /// returns `false`.
    private static func walk(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (Entry) -> Bool) {
        var index = 1
        while index < bytes.count {
            let keyLength = length(bytes, &index)
            let keyStart = index
            index += keyLength
            let valueLength = length(bytes, &index)
            let entry = Entry(keyStart: keyStart, keyEnd: keyStart + keyLength, valueStart: index, valueEnd: index + valueLength)
            index += valueLength
            guard body(entry) else { return }
        }
    }

    /// Calls `body` with each attribute in stored order, until it returns `false`.
    func forEach(_ body: (Entry) -> Bool) {
        bytes.withUnsafeBufferPointer { Self.walk($0, body) }
    }

    /// The name of `entry`.
    func key(_ entry: Entry) -> String {
        bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[entry.keyStart..<entry.keyEnd]), as: UTF8.self) }
    }

    /// The names, in stored order.
    var keys: [String] {
        var keys: [String] = []
        keys.reserveCapacity(count)
        forEach { entry in
            keys.append(key(entry))
            return true
        }
        return keys
    }

    /// The value of `entry`, not copied.
    func value(_ entry: Entry) -> AttributeValue.Stored {
        if format == 1 {
            return AttributeValue.Stored(tag: AttributeValue.Tag.json.rawValue, payload: bytes[entry.valueStart..<entry.valueEnd])
        }
        return AttributeValue.Stored(tag: bytes[entry.valueStart], payload: bytes[(entry.valueStart + 1)..<entry.valueEnd])
    }

    /// The attribute named `key`, or `nil` when the row has none (absence, not an error:
    /// the row's framing was checked once when it was read).
    func entry(named key: String) -> Entry? {
        guard count > 0 else { return nil }
        if let found = key.utf8.withContiguousStorageIfAvailable({ entry(named: key, utf8: $0) }) { return found }
        return Array(key.utf8).withUnsafeBufferPointer { entry(named: key, utf8: $0) }
    }

    private func entry(named key: String, utf8 wanted: UnsafeBufferPointer<UInt8>) -> Entry? {
        // Bytes decide when both names are ASCII; otherwise `String` equality does.
        let bytewise = keysAreASCII && UTF8Validation.isASCII(wanted)
        return bytes.withUnsafeBufferPointer { row -> Entry? in
            guard let rowBase = row.baseAddress else { return nil }  // an empty row has no attributes
            var index = 1
            while index < row.count {
                let keyLength = Self.length(row, &index)
                let keyStart = index
                index += keyLength
                let valueLength = Self.length(row, &index)
                let valueStart = index
                index += valueLength
                if bytewise {
                    guard keyLength == wanted.count, let wantedBase = wanted.baseAddress,
                          memcmp(rowBase + keyStart, wantedBase, keyLength) == 0
                    else { continue }
                } else if String(decoding: UnsafeBufferPointer(rebasing: row[keyStart..<(keyStart + keyLength)]), as: UTF8.self) != key {
                    continue
                }
                return Entry(keyStart: keyStart, keyEnd: keyStart + keyLength, valueStart: valueStart, valueEnd: index)
            }
            return nil
        }
    }

    /// The attributes as a dictionary of stored values (tag byte first).
    var dictionary: [String: [UInt8]] {
        var result = [String: [UInt8]](minimumCapacity: count)
        forEach { entry in
            result[key(entry)] = value(entry).raw
            return true
        }
        return result
    }

    /// A LEB128 length of checked framing.
    @inline(__always)
    private static func length(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Int {
        let first = bytes[index]
        index &+= 1
        if first < 0x80 { return Int(first) }  // Names and most values: under 128 bytes.
        var value = Int(first & 0x7F)
        var shift = 7
        while true {
            let byte = bytes[index]
            index &+= 1
            value |= Int(byte & 0x7F) &<< shift
            if byte & 0x80 == 0 { return value }
            shift &+= 7
        }
    }

    /// A LEB128 length of unchecked framing.
    private static func checkedLength(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) throws -> Int {
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
