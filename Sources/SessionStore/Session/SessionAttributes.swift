/// A session's attribute values (stored form, tag byte first): the row as loaded, read in
/// place, until the first change copies it into a dictionary.
///
/// Most requests only read their session, so a load builds no dictionary and copies no
/// value (see ``AttributeRow``); a request that changes something pays for the copy once,
/// and its save encodes the dictionary.
struct SessionAttributes: Sendable {
    private enum Storage: Sendable {
        case row(AttributeRow)
        case map([String: [UInt8]])
    }

    private var storage: Storage

    init(_ row: AttributeRow) {
        storage = .row(row)
    }

    init(_ map: [String: [UInt8]]) {
        storage = .map(map)
    }

    /// No attributes.
    static var empty: SessionAttributes { SessionAttributes([String: [UInt8]]()) }

    var isEmpty: Bool {
        switch storage {
        case .row(let row): row.count == 0
        case .map(let map): map.isEmpty
        }
    }

    /// The names, unordered.
    var keys: [String] {
        switch storage {
        case .row(let row): row.keys
        case .map(let map): Array(map.keys)
        }
    }

    func contains(_ key: String) -> Bool {
        switch storage {
        case .row(let row): row.entry(named: key) != nil
        case .map(let map): map[key] != nil
        }
    }

    /// The value of `key`, not copied; `nil` when absent.
    func value(_ key: String) -> AttributeValue.Stored? {
        switch storage {
        case .row(let row): row.entry(named: key).map { row.value($0) }
        case .map(let map): map[key].flatMap { AttributeValue.Stored($0) }
        }
    }

    /// The value of `key` in its own array, tag byte first; `nil` when absent.
    subscript(raw key: String) -> [UInt8]? {
        switch storage {
        case .row(let row): row.entry(named: key).map { row.value($0).raw }
        case .map(let map): map[key]
        }
    }

    /// Every attribute, each value tag byte first.
    var dictionary: [String: [UInt8]] {
        switch storage {
        case .row(let row): row.dictionary
        case .map(let map): map
        }
    }

    /// Calls `body` with every attribute, in no particular order, without copying values.
    func forEach(_ body: (String, AttributeValue.Stored) -> Void) {
        switch storage {
        case .row(let row):
            row.forEach { entry in
                body(row.key(entry), row.value(entry))
                return true
            }
        case .map(let map):
            for (key, raw) in map {
                if let value = AttributeValue.Stored(raw) { body(key, value) }
            }
        }
    }

    /// Sets `key` to `raw` (tag byte first).
    mutating func set(_ key: String, _ raw: [UInt8]) {
        var map = takeDictionary()
        map[key] = raw
        storage = .map(map)
    }

    /// Removes `key`; returns whether it was present.
    mutating func remove(_ key: String) -> Bool {
        guard contains(key) else { return false }
        var map = takeDictionary()
        map.removeValue(forKey: key)
        storage = .map(map)
        return true
    }

    /// The attributes as a dictionary the caller owns alone (so changing it copies nothing).
    private mutating func takeDictionary() -> [String: [UInt8]] {
        switch storage {
        case .row(let row):
            return row.dictionary
        case .map(let map):
            storage = .row(.empty)
            return map
        }
    }
}
