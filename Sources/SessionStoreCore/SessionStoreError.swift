/// An error raised by the store's own rules (as opposed to the engine's ``StorageError``).
///
/// Carries the redacted session id and attribute involved; never a full id or any data.
public struct SessionStoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, so callers can react without parsing messages.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A stored row could not be decoded (truncated, foreign or damaged data).
        public static let corruptData = Code(name: "corruptData")
        /// A stored row was written by a newer format version this release cannot read.
        public static let unsupportedFormat = Code(name: "unsupportedFormat")
        /// The encoded session exceeds the configured maximum size; nothing was written.
        public static let dataTooLarge = Code(name: "dataTooLarge")
        /// An attribute value could not be encoded or decoded as the requested type.
        public static let attributeCoding = Code(name: "attributeCoding")
        /// An attribute name is empty or too long; nothing was changed.
        public static let invalidAttributeName = Code(name: "invalidAttributeName")
        /// Concurrent saves kept conflicting beyond the retry limit; nothing was written.
        public static let conflictRetriesExhausted = Code(name: "conflictRetriesExhausted")
        /// A freshly minted id already existed (practically impossible; never overwritten).
        public static let idCollision = Code(name: "idCollision")
        /// A configuration value or URL is invalid.
        public static let invalidConfiguration = Code(name: "invalidConfiguration")
        /// The store was shut down.
        public static let closed = Code(name: "closed")
        /// An owner, a device fact or a session's own lifetime is empty, too long or out of
        /// bounds; nothing was written.
        public static let invalidOwner = Code(name: "invalidOwner")
        /// A session handle or listing cursor is malformed or not this store's; nothing was
        /// changed.
        public static let invalidHandle = Code(name: "invalidHandle")
        /// A stored row is encrypted and cannot be decrypted: its key id is not in the key
        /// ring, the key is wrong, or the ciphertext or its header was truncated or changed
        /// (see ``EncryptingBackend``). ``SessionStoreError/keyID`` names the key the row asks for.
        public static let undecryptable = Code(name: "undecryptable")
        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// The redacted id of the session involved, if any.
    public var session: String?
    /// The attribute involved, if any.
    public var attribute: String?
    /// The error that caused this one, if any.
    public var underlying: (any Error & Sendable)?
    /// The id of the encryption key involved, if any (an id, never key material).
    public var keyID: String?

    public init(
        _ code: Code, _ message: String, session: SessionID? = nil, attribute: String? = nil,
        underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.session = session?.redacted
        self.attribute = attribute
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let session { text += " (session \(session))" }
        if let attribute { text += " (attribute \"\(attribute)\")" }
        if let keyID { text += " (key \"\(keyID)\")" }
        if let underlying { text += " caused by: \(underlying)" }
        return text
    }
}
