/// How a backend keys its rows. Every backend honours both layouts.
public enum KeyLayout: String, Sendable, CaseIterable {
    /// Primary key `(crc32, id)`: a cheap integer first column with high cardinality.
    case checksumAndID = "crc32"
    /// Primary key on the id column alone.
    case idOnly = "id"
}

/// What a backend stores and looks up for one session: the key derived from its id.
///
/// The core computes keys; a backend never derives them itself, so every backend
/// stores the same thing for the same id.
public struct SessionKey: Hashable, Sendable {
    /// CRC-32 of ``value``, the first key column in ``KeyLayout/checksumAndID``.
    public let checksum: UInt32
    /// The text stored in the id column. Compare it byte-for-byte (case-sensitively).
    public let value: String

    /// The key of a session id.
    public init(_ id: SessionID) {
        self.init(value: id.text)
    }

    /// A key for an arbitrary stored value; for backends, tests and migrations.
    public init(value: String) {
        self.value = value
        self.checksum = CRC32.checksum(value)
    }
}
