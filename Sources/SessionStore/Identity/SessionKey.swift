import Crypto

/// How a backend keys its rows. Every backend honours both layouts.
public enum KeyLayout: String, Sendable, CaseIterable {
    /// Primary key `(crc32, id)`: a cheap integer first column with high cardinality.
    case checksumAndID = "crc32"
    /// Primary key on the id column alone.
    case idOnly = "id"
}

/// How an id is turned into what the database stores.
public enum IDHashing: String, Sendable, CaseIterable {
    /// Store the SHA-256 of the id (base64url, 43 characters): a copy of the table does
    /// not hand out live sessions. The default.
    case sha256
    /// Store the id itself; for legacy tables and migrations.
    case none
}

/// What a backend stores and looks up for one session: the key derived from its id.
///
/// The core computes keys; a backend never derives them itself, so every backend
/// stores the same thing for the same id.
public struct SessionKey: Hashable, Sendable {
    /// CRC-32 of ``value``, the first key column in ``KeyLayout/checksumAndID``.
    ///
    /// Computed when asked: a backend on the id-only layout (the default) never needs it.
    public var checksum: UInt32 { CRC32.checksum(value) }
    /// The text stored in the id column. Compare it byte-for-byte (case-sensitively).
    public let value: String

    /// The key of a session id: the id itself or its SHA-256, per `hashing`.
    public init(_ id: SessionID, hashing: IDHashing) {
        self.init(text: id.text, hashing: hashing)
    }

    /// The key of any text, per `hashing`: the text itself, or its SHA-256 in base64url
    /// without padding. For drivers that key rows by their own strings (Hummingbird's
    /// `PersistDriver` keys), so they store what the store stores for the same text.
    package init(text: String, hashing: IDHashing) {
        switch hashing {
        case .none:
            self.init(value: text)
        case .sha256:
            self.init(sha256Of: text)
        }
    }

    /// The key of any text as the SHA-256 hashing stores it: the digest in base64url
    /// without padding.
    private init(sha256Of text: String) {
        var text = text
        let digest = text.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        self.init(value: digest.withUnsafeBytes { Base64URL.encode($0) })
    }

    /// A key for an arbitrary stored value; for backends, tests and migrations.
    public init(value: String) {
        self.value = value
    }
}
