#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The key file a configuration URL names with `encryption_keys=/path`.
///
/// One key per line, `ID:BASE64` (32 bytes of key, standard base64 as
/// `openssl rand -base64 32` prints it). The active key is marked with a `*` before its id;
/// exactly one line is marked. `*plaintext` instead of a marked key makes writes plaintext
/// while every listed key still decrypts (turning encryption off). Blank lines and lines
/// starting with `#` are ignored; spaces around a line are trimmed.
///
/// ```
/// # session keys: the active one is marked with '*'
/// *2026-12:q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=
/// 2026-06:ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=
/// ```
extension EncryptionKeyRing {
    /// The largest key file read; a ring of a thousand keys is far smaller.
    static let maxFileSize = 64 * 1024

    /// The reserved name that marks "write plaintext" instead of an active key.
    static let plaintextMarker = "plaintext"

    /// Parses the text of a key file.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` naming the line, never its key.
    public init(parsing text: String, readsPlaintext: Bool = true) throws {
        var active: Key?
        var writesPlaintext = false
        var decryptOnly: [Key] = []
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = rawLine.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let marked = line.hasPrefix("*")
            let entry = marked ? line.dropFirst().trimmingSpaces : line
            if marked && entry == Self.plaintextMarker[...] {
                guard active == nil && !writesPlaintext else { throw Self.twoActive(lineNumber) }
                writesPlaintext = true
                continue
            }
            guard let colon = entry.firstIndex(of: ":") else {
                throw StoreURL.invalid("encryption key file line \(lineNumber): expected ID:BASE64 (mark the active key with '*')")
            }
            let id = String(entry[..<colon].trimmingSpaces)
            guard Key.isValidID(id.utf8), id != Self.plaintextMarker else {
                throw StoreURL.invalid(
                    "encryption key file line \(lineNumber): a key id is 1-\(Key.maxIDLength) ASCII letters, digits, '.', '_' or '-' (and not \"\(Self.plaintextMarker)\")")
            }
            let key: Key
            do {
                key = try Key(id: id, base64: String(entry[entry.index(after: colon)...].trimmingSpaces))
            } catch let error as SessionStoreError {
                throw StoreURL.invalid("encryption key file line \(lineNumber): \(error.message)")
            }
            if marked {
                guard active == nil && !writesPlaintext else { throw Self.twoActive(lineNumber) }
                active = key
            } else {
                decryptOnly.append(key)
            }
        }
        guard active != nil || writesPlaintext else {
            throw StoreURL.invalid(
                "encryption key file has no active key: mark one line with '*' (or add '*\(Self.plaintextMarker)' to write plaintext)")
        }
        try self.init(active: active, decryptOnly: decryptOnly, readsPlaintext: readsPlaintext || writesPlaintext)
    }

    private static func twoActive(_ line: Int) -> SessionStoreError {
        StoreURL.invalid("encryption key file line \(line): a second line is marked active with '*'; exactly one is")
    }

    /// Reads and parses the key file at `path`.
    ///
    /// The file is refused, not merely warned about, when users other than its owner may
    /// read or change it: a warning scrolls past in a log while the keys stay exposed.
    /// The rule is PostgreSQL's for its TLS key file: no permission for others, and none for
    /// the group unless the file is owned by root and the group may only read it (`0640`, the
    /// usual `root:app` deployment). Symbolic links are followed (as orchestrators mount
    /// secrets) and the file they reach is checked.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration`.
    public init(contentsOfFile path: String, readsPlaintext: Bool = true) throws {
        let text = try Self.readKeyFile(path)
        try self.init(parsing: text, readsPlaintext: readsPlaintext)
    }

    /// Whether a file's owner and mode keep it private enough to hold keys.
    static func permissionsAllowed(owner: UInt32, mode: UInt32) -> Bool {
        let groupAndOther = mode & 0o077
        return groupAndOther == 0 || (owner == 0 && groupAndOther & ~0o040 == 0)
    }

    private static func readKeyFile(_ path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // A FIFO must not block the open.
        guard descriptor >= 0 else {
            throw StoreURL.invalid("cannot open encryption key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw StoreURL.invalid("cannot read encryption key file \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw StoreURL.invalid("encryption key file \(path) is not a regular file")
        }
        let mode = UInt32(status.st_mode) & 0o7777
        guard permissionsAllowed(owner: UInt32(status.st_uid), mode: mode) else {
            throw StoreURL.invalid(
                "encryption key file \(path) may be read or changed by other users (mode \(String(mode, radix: 8))); "
                    + "refused: run chmod 600 on it (or 640 with owner root and the app's group)")
        }
        guard status.st_size <= maxFileSize else {
            throw StoreURL.invalid("encryption key file \(path) is larger than \(maxFileSize) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: maxFileSize + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress.map { $0 + count }, buffer.count - count)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw StoreURL.invalid("cannot read encryption key file \(path): \(String(cString: strerror(errno)))")
            }
            if got == 0 { break }
            count += got
        }
        guard count <= maxFileSize else {
            throw StoreURL.invalid("encryption key file \(path) is larger than \(maxFileSize) bytes")
        }
        guard let text = String(validating: bytes[..<count], as: UTF8.self) else {
            throw StoreURL.invalid("encryption key file \(path) is not UTF-8 text")
        }
        return text
    }

    /// Reads `encryption_keys=/path` (and `encryption_plaintext=read|refuse`) from a
    /// configuration URL: the ring they name, or `nil` when the URL has no key file.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration`.
    public static func take(from url: inout StoreURL) throws -> EncryptionKeyRing? {
        let readsPlaintext = try url.takeChoice("encryption_plaintext", ["read": true, "refuse": false])
        guard let path = url.take("encryption_keys") else {
            if readsPlaintext != nil {
                throw StoreURL.invalid("option encryption_plaintext needs encryption_keys")
            }
            return nil
        }
        guard !path.isEmpty else { throw StoreURL.invalid("option encryption_keys needs a file path") }
        return try EncryptionKeyRing(contentsOfFile: path, readsPlaintext: readsPlaintext ?? true)
    }
}

extension Substring {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    fileprivate var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
