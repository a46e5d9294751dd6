import Foundation

/// The keys session data is encrypted with: one active key that seals every write, and any
/// number of decrypt-only keys that still open rows written before a rotation.
///
/// Keys rotate without signing anyone out: a new key is first added as decrypt-only on
/// every host, then made active, and rows move to it on their next write (or with
/// `session-store rekey`). Key material never appears in a description, a log line, an
/// error or a `dump`; only key ids do.
public struct EncryptionKeyRing: Sendable, CustomStringConvertible, CustomReflectable {
    /// One AES-256 key and the id rows name it by.
    public struct Key: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        /// The key's name, stored in each row it seals: 1-32 ASCII letters, digits, `.`, `_` or `-`.
        public let id: String
        /// The key, set up once for every row it seals or opens.
        let cipher: AESGCMKey
        /// The id's bytes as stored in a row's header.
        let idBytes: [UInt8]

        /// A key from its 32 raw bytes.
        /// - Throws: ``SessionStoreError`` `invalidConfiguration` for a bad id or a key that
        ///   is not 32 bytes (the message never shows the key).
        public init(id: String, bytes: [UInt8]) throws {
            try Self.validate(id: id)
            guard bytes.count == 32 else {
                throw StoreURL.invalid("encryption key \"\(id)\" is \(bytes.count) bytes; AES-256 needs exactly 32")
            }
            self.id = id
            self.idBytes = Array(id.utf8)
            self.cipher = try AESGCMKey(bytes: bytes)
        }

        /// A key from standard base64 text, as `openssl rand -base64 32` prints it.
        /// - Throws: ``SessionStoreError`` `invalidConfiguration`.
        public init(id: String, base64: String) throws {
            guard let data = Data(base64Encoded: base64) else {
                throw StoreURL.invalid("encryption key \"\(id)\" is not valid base64")
            }
            try self.init(id: id, bytes: Array(data))
        }

        /// The longest key id, so a row's header stays small.
        public static let maxIDLength = 32

        /// Whether `bytes` form a valid key id (shared by the file parser and the row header).
        package static func isValidID<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
            !bytes.isEmpty && bytes.count <= maxIDLength && bytes.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
        }

        static func validate(id: String) throws {
            guard isValidID(id.utf8) else {
                throw StoreURL.invalid(
                    "encryption key id must be 1-\(maxIDLength) ASCII letters, digits, '.', '_' or '-'")
            }
        }

        /// The id only: key material is never printed.
        public var description: String { "EncryptionKeyRing.Key(id: \(id))" }
        public var debugDescription: String { description }
        /// Mirrors the id only, so `dump` cannot show the key either.
        public var customMirror: Mirror { Mirror(self, children: ["id": id]) }
    }

    /// The key that seals every write; `nil` writes plaintext (turning encryption off while
    /// encrypted rows still open).
    public let active: Key?
    /// Every key by id, the active one included.
    let keys: [String: Key]
    /// The same keys, the active one first: what ``key(_:)`` searches by the id's bytes (a
    /// ring has a handful of keys, so comparing bytes beats hashing a `String` per read).
    private let searchOrder: [Key]
    /// Whether a row without an encryption header is read as plaintext. `true` while a table
    /// still has rows written before encryption was turned on; `false` once `check` counts
    /// none, so nobody with write access to the database can plant session data.
    public let readsPlaintext: Bool

    /// A ring with `active` sealing writes and `decryptOnly` opening older rows.
    /// - Parameters:
    ///   - active: The key new writes use; `nil` writes plaintext.
    ///   - decryptOnly: Keys rows may still name; they never seal anything.
    ///   - readsPlaintext: Whether rows without an encryption header are read. The default is `true`.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` when two keys share an id, or the
    ///   ring has no key at all.
    public init(active: Key?, decryptOnly: [Key] = [], readsPlaintext: Bool = true) throws {
        var keys: [String: Key] = [:]
        for key in (active.map { [$0] } ?? []) + decryptOnly {
            guard keys.updateValue(key, forKey: key.id) == nil else {
                throw StoreURL.invalid("encryption key id \"\(key.id)\" is given twice")
            }
        }
        guard !keys.isEmpty else {
            throw StoreURL.invalid("an encryption key ring needs at least one key")
        }
        guard active != nil || readsPlaintext else {
            throw StoreURL.invalid("a key ring that writes plaintext must also read it")
        }
        self.active = active
        self.keys = keys
        self.searchOrder = (active.map { [$0] } ?? []) + decryptOnly
        self.readsPlaintext = readsPlaintext
    }

    /// The ids of every key, sorted; the active one is ``active``.
    public var keyIDs: [String] { keys.keys.sorted() }

    /// The key whose id has these bytes, if the ring has it; no `String` is built.
    package func key(_ id: some Collection<UInt8>) -> Key? {
        for key in searchOrder where key.idBytes.elementsEqual(id) { return key }
        return nil
    }

    /// Ids only.
    public var description: String {
        "EncryptionKeyRing(active: \(active?.id ?? "none (plaintext)"), keys: \(keyIDs), readsPlaintext: \(readsPlaintext))"
    }

    /// Mirrors the ids only, so `dump` cannot show a key.
    public var customMirror: Mirror {
        Mirror(self, children: ["active": active?.id ?? "none", "keys": keyIDs, "readsPlaintext": readsPlaintext])
    }
}
