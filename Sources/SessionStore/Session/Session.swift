import Foundation

/// One visitor's session: typed attributes under string keys, with change tracking.
///
/// A value type: load it from a ``SessionStore``, read and change it during a request,
/// and hand it back to ``SessionStore/save(_:)``, which writes only what changed.
/// Attribute values are stored compactly (JSON for types without a compact form) and
/// decoded lazily, into the type you ask for.
public struct Session: Sendable {
    /// The state of the stored row this session was read from or last written to.
    struct Stored: Sendable, Equatable {
        var version: Int64
        var createdAt: Int64
        var expiresAt: Int64
        /// The owner, device facts and own lifetime of the row.
        var binding: SessionBinding = .unbound
    }

    enum Change: Sendable, Equatable {
        case set([UInt8])
        case removed
        /// Add this to the stored integer (see ``Session/increment(_:by:)``).
        case add(Int)
    }

    /// The longest attribute name accepted, in UTF-8 bytes.
    public static let maxAttributeNameLength = 1024

    /// The session's id: send it to the client (cookie) once the session ``isStored``.
    public internal(set) var id: SessionID
    var stored: Stored?
    /// The attributes as this request sees them.
    var values: SessionAttributes
    /// The attributes as last read from or written to storage: what this request's changes
    /// are measured against when another request saved meanwhile.
    var base: SessionAttributes
    var changes: [String: Change] = [:]
    /// Whether loading this session pushed its expiry forward (a one-column write).
    public internal(set) var touchedOnLoad = false

    init(id: SessionID, stored: Stored?, values: [String: [UInt8]]) {
        self.id = id
        self.stored = stored
        self.values = SessionAttributes(values)
        self.base = self.values
    }

    /// A session read from a stored row: nothing is decoded until an attribute is read.
    init(id: SessionID, stored: Stored, row: AttributeRow, touchedOnLoad: Bool = false) {
        self.id = id
        self.stored = stored
        self.values = SessionAttributes(row)
        self.base = self.values
        self.touchedOnLoad = touchedOnLoad
    }

    /// Whether a row exists for this session (it was loaded or has been saved).
    ///
    /// A new session that was never given data is not stored and needs no cookie.
    public var isStored: Bool { stored != nil }

    /// Whether attributes changed since the session was loaded or last saved.
    public var hasChanges: Bool { !changes.isEmpty }

    /// Whether the session has no attributes.
    public var isEmpty: Bool { values.isEmpty }

    /// Whether there is nothing to keep: no attributes and no owner, device facts or own
    /// lifetime. A signed-in session without attributes is still kept.
    var holdsNothing: Bool { values.isEmpty && (stored?.binding.isEmpty ?? true) }

    /// The attribute names, sorted.
    public var keys: [String] { values.keys.sorted() }

    /// When the stored session expires (milliseconds since the Unix epoch), if stored.
    public var expiresAt: Int64? { stored?.expiresAt }

    /// When the session was first stored (milliseconds since the Unix epoch), if stored.
    public var createdAt: Int64? { stored?.createdAt }

    /// The owner (the app's user id) the stored session is bound to, if any (see
    /// ``SessionStore/logIn(_:owner:device:lifetime:)``).
    public var owner: String? { stored?.binding.owner }

    /// The device facts the session was bound with; empty when none were given.
    public var device: SessionDevice { stored?.binding.device ?? SessionDevice() }

    /// The session's own lifetime, when it has one instead of the store's.
    public var lifetime: SessionLifetime? { stored?.binding.publicLifetime }

    /// Whether an attribute is present.
    public func contains(_ key: String) -> Bool { values.contains(key) }

    /// Reads an attribute as `type`; `nil` when absent.
    /// - Throws: ``SessionStoreError`` `attributeCoding` when the stored value is not a `T`.
    public func get<T: Decodable>(_ key: String, as type: T.Type = T.self) throws -> T? {
        guard let value = values.value(key) else { return nil }
        do {
            return try AttributeValue.decode(value, as: T.self)
        } catch {
            throw SessionStoreError(
                .attributeCoding, "attribute cannot be read as \(T.self): \(error)", session: id, attribute: key)
        }
    }

    /// Sets an attribute. Setting the value it already has is not a change.
    /// - Throws: ``SessionStoreError`` `invalidAttributeName` for an empty name or one
    ///   longer than ``maxAttributeNameLength`` bytes, `attributeCoding` when the value
    ///   cannot be encoded. Nothing changes when it throws.
    public mutating func set(_ key: String, _ value: some Encodable) throws {
        try Self.validateName(key, id)
        let raw: [UInt8]
        do {
            raw = try AttributeValue.encode(value)
        } catch {
            throw SessionStoreError(.attributeCoding, "attribute cannot be encoded: \(error)", session: id, attribute: key)
        }
        if let current = values.value(key), current.equals(raw) { return }
        values.set(key, raw)
        changes[key] = .set(raw)
    }

    /// Adds `delta` to an integer attribute (absent counts as 0) and returns the new value.
    ///
    /// Unlike `set(key, get(key) + delta)`, the addition is re-applied to the stored value
    /// when other requests saved the same session meanwhile, so concurrent increments are
    /// never lost: 256 requests adding 1 end at exactly 256.
    /// - Throws: ``SessionStoreError`` `invalidAttributeName`, or `attributeCoding` when the
    ///   attribute holds something other than an integer or the sum overflows.
    @discardableResult
    public mutating func increment(_ key: String, by delta: Int = 1) throws -> Int {
        try Self.validateName(key, id)
        let sum = try Self.adding(delta, to: values.value(key), key: key, id: id)
        values.set(key, Self.encodeInteger(sum))
        switch changes[key] {
        case .add(let earlier):
            let (total, overflow) = earlier.addingReportingOverflow(delta)
            changes[key] = overflow ? .set(Self.encodeInteger(sum)) : .add(total)
        case .set, .removed:
            changes[key] = .set(Self.encodeInteger(sum))
        case nil:
            changes[key] = .add(delta)
        }
        return sum
    }

    /// Removes an attribute, if present.
    public mutating func remove(_ key: String) {
        guard values.remove(key) else { return }
        changes[key] = .removed
    }

    /// Removes every attribute; saving then deletes the stored row.
    public mutating func removeAll() {
        for key in values.keys { remove(key) }
    }

    /// Re-applies this session's changes on top of attributes read from storage, and names
    /// the attributes whose value another request changed that this one then replaced.
    /// - Throws: ``SessionStoreError`` `attributeCoding` when an increment meets a stored
    ///   value that is not an integer, or overflows.
    func rebased(on current: [String: [UInt8]]) throws -> (values: [String: [UInt8]], overwrote: [String]) {
        var merged = current
        var overwrote: [String] = []
        for (key, change) in changes {
            switch change {
            case .set(let raw):
                if current[key] != base[raw: key] && current[key] != raw { overwrote.append(key) }
                merged[key] = raw
            case .removed:
                if current[key] != base[raw: key] && current[key] != nil { overwrote.append(key) }
                merged.removeValue(forKey: key)
            case .add(let delta):
                let stored = current[key].flatMap { AttributeValue.Stored($0) }
                merged[key] = Self.encodeInteger(try Self.adding(delta, to: stored, key: key, id: id))
            }
        }
        return (merged, overwrote.sorted())
    }

    /// Marks the session as matching what storage now holds.
    mutating func markSaved(_ stored: Stored, values: [String: [UInt8]]) {
        self.stored = stored
        self.values = SessionAttributes(values)
        self.base = self.values
        self.changes = [:]
    }

    static func validateName(_ key: String, _ id: SessionID) throws {
        guard !key.isEmpty, key.utf8.count <= maxAttributeNameLength else {
            throw SessionStoreError(
                .invalidAttributeName,
                key.isEmpty
                    ? "attribute names must not be empty"
                    : "attribute name is \(key.utf8.count) bytes, over the limit of \(maxAttributeNameLength)",
                session: id, attribute: key.isEmpty ? nil : String(key.prefix(64)))
        }
    }

    static func encodeInteger(_ value: Int) -> [UInt8] {
        AttributeValue.encodeInteger(value)
    }

    static func adding(_ delta: Int, to current: AttributeValue.Stored?, key: String, id: SessionID) throws -> Int {
        var value = 0
        if let current {
            guard let stored = AttributeValue.integer(current) else {
                throw SessionStoreError(
                    .attributeCoding, "attribute cannot be incremented: it does not hold an integer", session: id,
                    attribute: key)
            }
            value = stored
        }
        let (sum, overflow) = value.addingReportingOverflow(delta)
        guard !overflow else {
            throw SessionStoreError(.attributeCoding, "incrementing the attribute overflows Int", session: id, attribute: key)
        }
        return sum
    }
}
