/// A stored row of attributes (see ``AttributeCodec``), checked whole once and then read
/// in place.
///
/// Loading a session checks everything a damaged row could hold (framing, UTF-8 names,
/// value tags and shapes, UTF-8 text values, repeated names) in one pass over the bytes,
/// so damage still shows at load, where the store's `on_corrupt` policy applies. The pass
/// copies no value and builds no dictionary: it records where each attribute lies, and a
/// read converts only the value asked for. A session that changes copies the attributes
/// into a dictionary at its first change (see ``SessionAttributes``).
struct AttributeRow: Sendable {
    /// Where one attribute lies in ``bytes``.
    struct Entry: Sendable {
        var keyStart: Int
        var keyEnd: Int
        /// Format 2: the tag byte; format 1: the first byte of the JSON text.
        var valueStart: Int
        var valueEnd: Int
        /// Names are compared byte for byte when both are ASCII, as `String` otherwise
        /// (canonically equivalent names are the same attribute, as in a dictionary).
        var keyIsASCII: Bool
    }

    /// The row as stored.
    let bytes: [UInt8]
    /// The row's format version (1: untagged JSON values, 2: tagged values).
    let format: UInt8
    /// The attributes in stored order.
    let entries: [Entry]

    /// A row without attributes.
    static let empty = AttributeRow()

    private init() {
        bytes = [AttributeCodec.formatVersion]
        format = AttributeCodec.formatVersion
        entries = []
    }

    /// Checks a row of any readable format and records where its attributes lie.
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
        self.bytes = bytes
        self.format = version
        self.entries = try bytes.withUnsafeBufferPointer { try Self.scan($0, format: version) }
    }

    /// Walks the attributes after the header byte, checking each.
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, format: UInt8) throws -> [Entry] {
        var entries: [Entry] = []
        // An attribute takes at least 4 bytes; rows hold a few dozen bytes per attribute.
        // Reserving for one per 8 bytes (up to 32) saves the growth copies of small rows.
        entries.reserveCapacity(min(bytes.count / 8 + 1, 32))
        // Names seen so far, once a name is not ASCII or not after the one before it in
        // byte order (rows this library writes are sorted, so this stays `nil`).
        var seen: Set<String>?
        var index = 1
        while index < bytes.count {
            let keyLength = try readLength(bytes, &index)
            guard keyLength > 0, keyLength <= bytes.count - index else {
                throw SessionStoreError(.corruptData, "stored session data has a bad key length at byte \(index)")
            }
            let keyBytes = UnsafeBufferPointer(rebasing: bytes[index..<(index + keyLength)])
            let keyIsASCII = UTF8Validation.isASCII(keyBytes)
            guard keyIsASCII || UTF8Validation.isValid(keyBytes) else {
                throw SessionStoreError(.corruptData, "stored session data has a key that is not UTF-8 at byte \(index)")
            }
            let keyStart = index
            index += keyLength
            let valueLength = try readLength(bytes, &index)
            guard valueLength <= bytes.count - index else {
                let key = String(decoding: keyBytes, as: UTF8.self)
                throw SessionStoreError(.corruptData, "stored session data is truncated in attribute \"\(key)\"", attribute: key)
            }
            let value = UnsafeBufferPointer(rebasing: bytes[index..<(index + valueLength)])
            if format != 1 && !AttributeValue.isWellFormed(value) {
                let key = String(decoding: keyBytes, as: UTF8.self)
                throw SessionStoreError(.corruptData, "stored session data has a malformed value in attribute \"\(key)\"", attribute: key)
            }
            let entry = Entry(
                keyStart: keyStart, keyEnd: keyStart + keyLength, valueStart: index, valueEnd: index + valueLength,
                keyIsASCII: keyIsASCII)
            if seen == nil, !(keyIsASCII && (entries.last.map { isAfter(entry, $0, in: bytes) } ?? true)) {
                seen = Set(entries.map { key($0, in: bytes) })
            }
            if seen != nil {
                let key = key(entry, in: bytes)
                guard seen?.insert(key).inserted == true else {
                    throw SessionStoreError(.corruptData, "stored session data repeats attribute \"\(key)\"", attribute: key)
                }
            }
            entries.append(entry)
            index += valueLength
        }
        return entries
    }

    /// Whether `entry`'s name comes after `previous`'s in byte order (both ASCII).
    private static func isAfter(_ entry: Entry, _ previous: Entry, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard previous.keyIsASCII else { return false }
        let first = UnsafeBufferPointer(rebasing: bytes[previous.keyStart..<previous.keyEnd])
        let second = UnsafeBufferPointer(rebasing: bytes[entry.keyStart..<entry.keyEnd])
        return first.lexicographicallyPrecedes(second)
    }

    private static func key(_ entry: Entry, in bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[entry.keyStart..<entry.keyEnd]), as: UTF8.self)
    }

    /// The number of attributes.
    var count: Int { entries.count }

    /// The name of attribute `position`.
    func key(at position: Int) -> String {
        bytes.withUnsafeBufferPointer { Self.key(entries[position], in: $0) }
    }

    /// The value of attribute `position`, not copied.
    func value(at position: Int) -> AttributeValue.Stored {
        let entry = entries[position]
        if format == 1 {
            return AttributeValue.Stored(tag: AttributeValue.Tag.json.rawValue, payload: bytes[entry.valueStart..<entry.valueEnd])
        }
        return AttributeValue.Stored(tag: bytes[entry.valueStart], payload: bytes[(entry.valueStart + 1)..<entry.valueEnd])
    }

    /// The position of the attribute named `key`, if present.
    func position(of key: String) -> Int? {
        guard !entries.isEmpty else { return nil }
        if let found = key.utf8.withContiguousStorageIfAvailable({ position(of: key, utf8: $0) }) { return found }
        return Array(key.utf8).withUnsafeBufferPointer { position(of: key, utf8: $0) }
    }

    private func position(of key: String, utf8 wanted: UnsafeBufferPointer<UInt8>) -> Int? {
        let wantedIsASCII = UTF8Validation.isASCII(wanted)
        return bytes.withUnsafeBufferPointer { row -> Int? in
            for (position, entry) in entries.enumerated() {
                if entry.keyIsASCII && wantedIsASCII {
                    guard entry.keyEnd - entry.keyStart == wanted.count else { continue }
                    if UnsafeBufferPointer(rebasing: row[entry.keyStart..<entry.keyEnd]).elementsEqual(wanted) { return position }
                } else if Self.key(entry, in: row) == key {
                    return position
                }
            }
            return nil
        }
    }

    /// The attributes as a dictionary of stored values (tag byte first).
    var dictionary: [String: [UInt8]] {
        var result = [String: [UInt8]](minimumCapacity: entries.count)
        for position in entries.indices { result[key(at: position)] = value(at: position).raw }
        return result
    }

    private static func readLength(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) throws -> Int {
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
