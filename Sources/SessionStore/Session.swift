import Foundation

/// One visitor's session: typed attributes under string keys, with change tracking.
///
/// A value type: load it from a ``SessionStore``, read and change it during a request,
/// and hand it back to ``SessionStore/save(_:)``, which writes only what changed.
/// Attribute values are stored as JSON and decoded lazily, into the type you ask for.
public struct Session: Sendable {
    /// The state of the stored row this session was read from or last written to.
    struct Stored: Sendable, Equatable {
        var version: Int64
        var createdAt: Int64
        var expiresAt: Int64
    }

    enum Change: Sendable, Equatable {
        case set([UInt8])
        case removed
    }

    /// The session's id: send it to the client (cookie) once the session ``isStored``.
    public internal(set) var id: SessionID
    var stored: Stored?
    var values: [String: [UInt8]]
    var changes: [String: Change] = [:]
    /// Whether loading this session pushed its expiry forward (a one-column write).
    public internal(set) var touchedOnLoad = false

    init(id: SessionID, stored: Stored?, values: [String: [UInt8]]) {
        self.id = id
        self.stored = stored
        self.values = values
    }

    /// Whether a row exists for this session (it was loaded or has been saved).
    ///
    /// A new session that was never given data is not stored and needs no cookie.
    public var isStored: Bool { stored != nil }

    /// Whether attributes changed since the session was loaded or last saved.
    public var hasChanges: Bool { !changes.isEmpty }

    /// Whether the session has no attributes.
    public var isEmpty: Bool { values.isEmpty }

    /// The attribute names, sorted.
    public var keys: [String] { values.keys.sorted() }

    /// When the stored session expires (milliseconds since the Unix epoch), if stored.
    public var expiresAt: Int64? { stored?.expiresAt }

    /// When the session was first stored (milliseconds since the Unix epoch), if stored.
    public var createdAt: Int64? { stored?.createdAt }

    /// Whether an attribute is present.
    public func contains(_ key: String) -> Bool { values[key] != nil }

    /// Reads an attribute as `type`; `nil` when absent.
    /// - Throws: ``SessionStoreError`` `attributeCoding` when the stored value is not a `T`.
    public func get<T: Decodable>(_ key: String, as type: T.Type = T.self) throws -> T? {
        guard let raw = values[key] else { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(raw))
        } catch {
            throw SessionStoreError(
                .attributeCoding, "attribute cannot be read as \(T.self): \(error)", session: id, attribute: key)
        }
    }

    /// Sets an attribute. Setting the value it already has is not a change.
    /// - Throws: ``SessionStoreError`` `attributeCoding` when the value cannot be encoded.
    public mutating func set(_ key: String, _ value: some Encodable) throws {
        precondition(!key.isEmpty, "attribute names must not be empty")
        let raw: [UInt8]
        do {
            raw = Array(try JSONEncoder().encode(value))
        } catch {
            throw SessionStoreError(.attributeCoding, "attribute cannot be encoded: \(error)", session: id, attribute: key)
        }
        guard values[key] != raw else { return }
        values[key] = raw
        changes[key] = .set(raw)
    }

    /// Removes an attribute, if present.
    public mutating func remove(_ key: String) {
        guard values.removeValue(forKey: key) != nil else { return }
        changes[key] = .removed
    }

    /// Removes every attribute; saving then deletes the stored row.
    public mutating func removeAll() {
        for key in values.keys { remove(key) }
    }

    /// Re-applies this session's changes on top of attributes read from storage.
    func rebased(on base: [String: [UInt8]]) -> [String: [UInt8]] {
        var merged = base
        for (key, change) in changes {
            switch change {
            case .set(let raw): merged[key] = raw
            case .removed: merged.removeValue(forKey: key)
            }
        }
        return merged
    }
}
