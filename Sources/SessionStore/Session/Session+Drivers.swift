import Foundation

// What the framework drivers read on every request, without building errors or
// dictionaries they do not need.

extension Session {
    /// Whether this session was read from a row that ``SessionStore/regenerateID(_:)``
    /// retired: the client presented the old id during the grace period. Such a session is
    /// readable and never written again; its client holds (or is about to hold) the new id,
    /// so a driver must not send the old id back.
    package var isRetired: Bool { stored?.version == SessionStore.retiredVersion }

    /// The attribute as text when it holds a string; `nil` when absent or of another type.
    ///
    /// Unlike `get(key, as: String.self)`, a value of another type is no error (no error
    /// description is built) and is never converted: Vapor's `[String: String]` view of a
    /// session shows exactly the attributes that hold strings.
    package func string(_ key: String) -> String? {
        values.value(key).flatMap(Self.text)
    }

    /// Every attribute holding a string (see ``string(_:)``), read in one pass.
    package var strings: [String: String] {
        var strings: [String: String] = [:]
        values.forEach { key, value in
            if let text = Self.text(value) { strings[key] = text }
        }
        return strings
    }

    /// A stored value's text: a string value, or (in rows of format 1, whose values are
    /// JSON) a JSON string.
    private static func text(_ value: AttributeValue.Stored) -> String? {
        switch AttributeValue.Tag(rawValue: value.tag) {
        case .string:
            return value.payload.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        case .json where value.payload.first == UInt8(ascii: "\""):
            // Deliberately no error: a JSON value that does not decode as a string is not a
            // string attribute, so Vapor's string view leaves it out (the typed view, and a
            // load's validation, still read and check the row).
            return try? JSONDecoder().decode(String.self, from: Data(value.payload))
        default:
            return nil
        }
    }
}
