import Crypto

#if canImport(CCryptoBoringSSL)
import CCryptoBoringSSL
#endif

/// One AES-256-GCM key, set up once and then used to seal and open any number of rows, from
/// any number of threads at once.
///
/// swift-crypto's `AES.GCM` takes a `SymmetricKey` and sets up the AES key schedule and the
/// GHASH table again on every call, with `Data` values around it: about 9,000 instructions
/// per row, more than the rest of a load. Where swift-crypto runs on its BoringSSL copy
/// (Linux, Windows, Android: every platform but Apple's), this keeps one BoringSSL
/// `EVP_AEAD_CTX` per key instead, initialised here; BoringSSL documents seal and open on one
/// context as safe to call concurrently. On Apple platforms, where swift-crypto is CryptoKit
/// and BoringSSL is not built, each call goes through `AES.GCM` as before.
///
/// The BoringSSL module is swift-crypto's own (the `Crypto` product depends on it on those
/// platforms), imported where it exists: nothing else is linked and SQLite-only users need
/// no other library.
final class AESGCMKey: @unchecked Sendable {  // @unchecked: immutable after init; BoringSSL's context is safe to share
    /// Bytes of a GCM nonce.
    static let nonceSize = 12
    /// Bytes of a GCM tag.
    static let tagSize = 16

    #if canImport(CCryptoBoringSSL)
    private let context: OpaquePointer

    /// - Throws: ``SessionStoreError`` `invalidConfiguration` when the key is not 32 bytes or
    ///   BoringSSL cannot set it up (out of memory).
    init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw StoreURL.invalid("AES-256 needs a 32-byte key") }
        let context = bytes.withUnsafeBufferPointer { key in
            CCryptoBoringSSL_EVP_AEAD_CTX_new(CCryptoBoringSSL_EVP_aead_aes_256_gcm(), key.baseAddress, key.count, Self.tagSize)
        }
        guard let context else {
            CCryptoBoringSSL_ERR_clear_error()
            throw StoreURL.invalid("the encryption key could not be set up (BoringSSL EVP_AEAD_CTX_new failed)")
        }
        self.context = OpaquePointer(context)
    }

    deinit {
        CCryptoBoringSSL_EVP_AEAD_CTX_free(UnsafeMutablePointer(context))
    }

    /// Encrypts `plaintext` into `output`, which must be exactly its size plus ``tagSize``:
    /// the ciphertext, then the tag.
    /// - Throws: ``AESGCMKey/Failure`` when BoringSSL refuses (it does not for these sizes).
    func seal(
        _ plaintext: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        guard nonce.count == Self.nonceSize, output.count == plaintext.count + Self.tagSize else { throw Failure.size }
        var written = 0
        let result = CCryptoBoringSSL_EVP_AEAD_CTX_seal(
            UnsafePointer(context), output.bindMemory(to: UInt8.self).baseAddress, &written, output.count,
            nonce.bindMemory(to: UInt8.self).baseAddress, nonce.count,
            plaintext.bindMemory(to: UInt8.self).baseAddress, plaintext.count,
            associatedData.bindMemory(to: UInt8.self).baseAddress, associatedData.count)
        guard result == 1, written == output.count else {
            CCryptoBoringSSL_ERR_clear_error()
            throw Failure.boringSSL("EVP_AEAD_CTX_seal")
        }
    }

    /// The plaintext of `ciphertextAndTag`: the ciphertext followed by its ``tagSize``-byte tag.
    /// - Throws: ``AESGCMKey/Failure`` when it fails authentication (a wrong key, changed
    ///   bytes, other associated data) or is shorter than a tag.
    func open(
        _ ciphertextAndTag: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer
    ) throws -> [UInt8] {
        guard nonce.count == Self.nonceSize, ciphertextAndTag.count >= Self.tagSize else { throw Failure.size }
        let count = ciphertextAndTag.count - Self.tagSize
        var opened = false
        // At least one byte, so BoringSSL always gets a buffer to write to (and to zero on failure).
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(count, 1)) { buffer, initialized in
            var written = 0
            let result = CCryptoBoringSSL_EVP_AEAD_CTX_open(
                UnsafePointer(context), buffer.baseAddress, &written, buffer.count,
                nonce.bindMemory(to: UInt8.self).baseAddress, nonce.count,
                ciphertextAndTag.bindMemory(to: UInt8.self).baseAddress, ciphertextAndTag.count,
                associatedData.bindMemory(to: UInt8.self).baseAddress, associatedData.count)
            opened = result == 1 && written == count
            initialized = opened ? count : 0
        }
        guard opened else {
            CCryptoBoringSSL_ERR_clear_error()
            throw Failure.boringSSL("EVP_AEAD_CTX_open")
        }
        return plaintext
    }
    #else
    private let key: SymmetricKey

    /// - Throws: ``SessionStoreError`` `invalidConfiguration` when the key is not 32 bytes.
    init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw StoreURL.invalid("AES-256 needs a 32-byte key") }
        key = SymmetricKey(data: bytes)
    }

    /// Encrypts `plaintext` into `output`, which must be exactly its size plus ``tagSize``:
    /// the ciphertext, then the tag.
    /// - Throws: ``AESGCMKey/Failure``, or what swift-crypto throws.
    func seal(
        _ plaintext: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        guard output.count == plaintext.count + Self.tagSize else { throw Failure.size }
        let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: associatedData)
        box.ciphertext.withUnsafeBytes { output.copyMemory(from: $0) }
        box.tag.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: output[plaintext.count...]).copyMemory(from: $0) }
    }

    /// The plaintext of `ciphertextAndTag`: the ciphertext followed by its ``tagSize``-byte tag.
    /// - Throws: ``AESGCMKey/Failure``, or what swift-crypto throws when it fails authentication.
    func open(
        _ ciphertextAndTag: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, associatedData: UnsafeRawBufferPointer
    ) throws -> [UInt8] {
        guard ciphertextAndTag.count >= Self.tagSize else { throw Failure.size }
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: nonce),
            ciphertext: UnsafeRawBufferPointer(rebasing: ciphertextAndTag.dropLast(Self.tagSize)),
            tag: UnsafeRawBufferPointer(rebasing: ciphertextAndTag.suffix(Self.tagSize)))
        return try AES.GCM.open(box, using: key, authenticating: associatedData).withUnsafeBytes { [UInt8]($0) }
    }
    #endif

    /// Why a seal or an open failed; the callers turn it into ``SessionStoreError`` `undecryptable`.
    enum Failure: Error, CustomStringConvertible {
        /// A nonce, tag or output buffer of the wrong size.
        case size
        /// The BoringSSL call that returned failure: for an open, failed authentication.
        case boringSSL(String)

        var description: String {
            switch self {
            case .size: "wrong nonce, tag or buffer size"
            case .boringSSL(let call): "\(call) failed"
            }
        }
    }
}
