/// The stored form of an encrypted session row, and how it is told apart from a plaintext one.
///
/// Layout: the marker byte `0xE1` (envelope version 1), the key id's length (1-32), the key
/// id (ASCII), a 12-byte random nonce, the AES-256-GCM ciphertext of the encoded attributes
/// (as long as they are) and the 16-byte tag: 30 bytes plus the key id over plaintext.
/// The associated data is the header (marker, length, id) followed by the row's storage key
/// (``SessionKey/value``), so a row copied under another id, or relabelled with another key
/// id, fails to open.
///
/// A plaintext row starts with the attribute codec's format byte, which is below `0x20`
/// (`AttributeRow` treats `0x03-0x1F` as future formats and anything higher as damage), so
/// the byte ranges never overlap: `0xE1` is an encrypted row, `0xE2-0xEF` an encrypted row of
/// a newer envelope version, anything else plaintext (checked by the codec as before).
/// An empty row (a fallback tombstone) is passed through.
package enum EncryptedRow {
    /// The first byte of an envelope-version-1 row.
    package static let marker: UInt8 = 0xE1
    /// First bytes reserved for encrypted rows of this and later envelope versions.
    static let reserved: ClosedRange<UInt8> = 0xE0...0xEF
    static let nonceSize = AESGCMKey.nonceSize
    static let tagSize = AESGCMKey.tagSize

    /// What a stored row's first bytes say it is; read without any key.
    package enum Kind: Hashable, Sendable {
        /// No encryption header: the attribute codec's own format.
        case plaintext
        /// Sealed under the key with this id.
        case encrypted(keyID: String)
        /// Starts like an encrypted row but its header cannot be read (truncated, an unknown
        /// envelope version, a malformed key id).
        case malformed
    }

    /// Classifies a stored row by its header.
    package static func kind(of data: [UInt8]) -> Kind {
        guard let first = data.first, reserved.contains(first) else { return .plaintext }
        switch header(data) {
        case .success(let header): return .encrypted(keyID: String(decoding: data[2..<header], as: UTF8.self))
        case .failure: return .malformed
        }
    }

    /// The end of a version-1 header (the index of the nonce), or why there is none.
    private static func header(_ data: [UInt8]) -> Result<Int, SessionStoreError> {
        guard data[0] == marker else {
            return .failure(
                undecryptable("stored session is encrypted with envelope version \(data[0] & 0x0F); this release reads version 1"))
        }
        guard data.count >= 2 else { return .failure(undecryptable("encrypted session is truncated inside its header")) }
        let length = Int(data[1])
        guard length >= 1, length <= EncryptionKeyRing.Key.maxIDLength, data.count >= 2 + length else {
            return .failure(undecryptable("encrypted session has a malformed or truncated key id"))
        }
        guard EncryptionKeyRing.Key.isValidID(data[2..<(2 + length)]) else {
            return .failure(undecryptable("encrypted session has a malformed key id"))
        }
        return .success(2 + length)
    }

    /// Seals encoded attributes under `key` for the row stored under `storageKey`, straight
    /// into the row's bytes (one allocation: the row), with a nonce from the process's
    /// random pool.
    /// - Throws: ``SessionStoreError`` `undecryptable` if the crypto library fails (it does
    ///   not for valid keys; never ignored).
    package static func seal(_ plaintext: [UInt8], with key: EncryptionKeyRing.Key, for storageKey: SessionKey) throws -> [UInt8] {
        let headerEnd = 2 + key.idBytes.count
        let bodyStart = headerEnd + nonceSize
        let count = bodyStart + plaintext.count + tagSize
        do {
            return try [UInt8](unsafeUninitializedCapacity: count) { output, initialized in
                let row = UnsafeMutableRawBufferPointer(output)
                row[0] = marker
                row[1] = UInt8(key.idBytes.count)
                key.idBytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: row[2..<headerEnd]).copyMemory(from: $0) }
                let nonce = UnsafeMutableRawBufferPointer(rebasing: row[headerEnd..<bodyStart])
                SecureRandomPool.fill(nonce)
                try withAssociatedData(UnsafeRawBufferPointer(rebasing: row[..<headerEnd]), storageKey) { associatedData in
                    try plaintext.withUnsafeBytes { input in
                        try key.cipher.seal(
                            input, nonce: UnsafeRawBufferPointer(nonce), associatedData: associatedData,
                            into: UnsafeMutableRawBufferPointer(rebasing: row[bodyStart...]))
                    }
                }
                initialized = count
            }
        } catch {
            throw SessionStoreError(.undecryptable, "session data could not be encrypted: \(error)", underlying: error)
        }
    }

    /// Opens a stored row: the attributes of an encrypted row, a plaintext row as it is (when
    /// the ring reads plaintext).
    ///
    /// The common case goes straight through: a version-1 header whose key id is the bytes of
    /// a key in the ring (valid by construction, so the id needs no other check). The nonce,
    /// ciphertext and tag are read in place, the associated data is put together on the
    /// stack and the key's context is set up already (``AESGCMKey``); the one allocation is
    /// the opened attributes.
    /// - Throws: ``SessionStoreError`` `undecryptable`, with the key id when the header names
    ///   one (also for a newer envelope version this release cannot read).
    package static func open(_ data: [UInt8], with ring: EncryptionKeyRing, for storageKey: SessionKey) throws -> [UInt8] {
        guard let first = data.first else { return data }
        guard reserved.contains(first) else {
            guard ring.readsPlaintext else {
                throw undecryptable("stored session is not encrypted and this store refuses plaintext rows (encryption_plaintext=refuse)")
            }
            return data
        }
        let headerEnd = data.count >= 2 ? 2 + Int(data[1]) : data.count + 1
        guard first == marker, data.count >= headerEnd, let key = ring.key(data[2..<headerEnd]) else {
            throw unopenable(data)
        }
        guard data.count >= headerEnd + nonceSize + tagSize else {
            throw undecryptable("encrypted session is truncated", keyID: key.id)
        }
        do {
            return try data.withUnsafeBytes { row in
                let bodyStart = headerEnd + nonceSize
                return try withAssociatedData(UnsafeRawBufferPointer(rebasing: row[..<headerEnd]), storageKey) { associatedData in
                    try key.cipher.open(
                        UnsafeRawBufferPointer(rebasing: row[bodyStart...]),
                        nonce: UnsafeRawBufferPointer(rebasing: row[headerEnd..<bodyStart]), associatedData: associatedData)
                }
            }
        } catch {
            // One message for a wrong key, a changed byte or a row moved to another id: GCM
            // cannot tell them apart, and nobody should be told which.
            throw undecryptable(
                "encrypted session fails authentication (wrong key, changed bytes, or copied from another id)", keyID: key.id)
        }
    }

    /// Why an encrypted-looking row whose header names no key of the ring cannot be opened:
    /// its header is unreadable, or it names a key the ring does not have.
    private static func unopenable(_ data: [UInt8]) -> SessionStoreError {
        switch header(data) {
        case .failure(let error):
            return error
        case .success(let headerEnd):
            return undecryptable(
                "stored session is encrypted with a key that is not in the key ring",
                keyID: String(decoding: data[2..<headerEnd], as: UTF8.self))
        }
    }

    /// Runs `body` with the associated data of a row: its header followed by the storage
    /// key's UTF-8, put together in a stack buffer (no allocation per row).
    private static func withAssociatedData<Output>(
        _ header: UnsafeRawBufferPointer, _ storageKey: SessionKey, _ body: (UnsafeRawBufferPointer) throws -> Output
    ) rethrows -> Output {
        var value = storageKey.value
        return try value.withUTF8 { key in
            try withUnsafeTemporaryAllocation(byteCount: header.count + key.count, alignment: 1) { buffer in
                buffer.copyMemory(from: header)
                UnsafeMutableRawBufferPointer(rebasing: buffer[header.count...]).copyMemory(from: UnsafeRawBufferPointer(key))
                return try body(UnsafeRawBufferPointer(buffer))
            }
        }
    }

    private static func undecryptable(_ message: String, keyID: String) -> SessionStoreError {
        var error = undecryptable(message)
        error.keyID = keyID
        return error
    }

    private static func undecryptable(_ message: String) -> SessionStoreError {
        SessionStoreError(.undecryptable, message)
    }
}
