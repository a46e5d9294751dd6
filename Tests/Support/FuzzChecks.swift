import Foundation
import SessionStoreCore

/// The properties the fuzz targets check, one entry point per parser.
///
/// Shared by the libFuzzer targets under `Tests/Fuzz` and by the unit tests that replay
/// kept inputs, so a crash input found once stays a regression test. Each function
/// returns `nil` when the input behaved, or a description of the broken property; a
/// crash or trap inside a parser is a failure too.
public enum FuzzChecks {
    /// The body of a target's `LLVMFuzzerTestOneInput`: runs `check` on the input and
    /// stops the process, so libFuzzer keeps the input, when it reports a failure.
    public static func fuzz(
        _ target: String, _ data: UnsafePointer<UInt8>?, _ size: Int, _ check: ([UInt8]) -> String?
    ) -> CInt {
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        if let failure = check(bytes) {
            fatalError("\(target): \(failure)")
        }
        return 0
    }

    /// A target's `main` when built without libFuzzer: replays the input files named on
    /// the command line through `check`.
    public static func replay(_ target: String, _ check: ([UInt8]) -> String?) throws {
        for path in CommandLine.arguments.dropFirst() {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            _ = bytes.withUnsafeBufferPointer { fuzz(target, $0.baseAddress, $0.count, check) }
            print("ok \(path)")
        }
    }

    /// `SessionID(validating:)`: accepts exactly 22 base64url characters whose last one
    /// carries no stray bits, and an accepted id validates again to itself.
    public static func sessionID(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        let candidates: [String] = [text, String(text.prefix(SessionID.length))]
        for candidate in candidates {
            guard let id = SessionID(validating: candidate) else { continue }
            let utf8 = Array(id.text.utf8)
            guard utf8.count == SessionID.length else { return "accepted an id of \(utf8.count) bytes" }
            guard utf8.allSatisfy(isBase64URL) else { return "accepted a byte outside base64url" }
            guard SessionID(validating: id.text) == id else { return "an accepted id does not validate again" }
            guard !id.redacted.contains(id.text) else { return "the redacted form shows the whole id" }
        }
        // Raw bytes that are not UTF-8 must never be accepted as they are.
        if String(validating: bytes, as: UTF8.self) == nil, bytes.count == SessionID.length,
           SessionID(validating: text) != nil, Array(text.utf8) != bytes {
            return "non-UTF-8 bytes were accepted after repair"
        }
        return nil
    }

    /// `AttributeCodec.decode`: never crashes; what it accepts encodes and decodes back to
    /// the same attributes; what it rejects is a typed `corruptData`/`unsupportedFormat`.
    public static func attributeCodec(_ bytes: [UInt8]) -> String? {
        let decoded: [String: [UInt8]]
        do {
            decoded = try AttributeCodec.decode(bytes)
        } catch let error as SessionStoreError {
            guard error.code == .corruptData || error.code == .unsupportedFormat else {
                return "decode threw \(error.code)"
            }
            return nil
        } catch {
            return "decode threw an untyped error: \(error)"
        }
        guard !decoded.keys.contains("") else { return "decoded an empty attribute name" }
        let encoded = AttributeCodec.encode(decoded)
        do {
            guard try AttributeCodec.decode(encoded) == decoded else { return "encode/decode does not round-trip" }
        } catch {
            return "re-encoded attributes do not decode: \(error)"
        }
        return nil
    }

    /// A store for ``sessionAPI(_:)``'s sessions; never written to.
    static let fuzzStore = SessionStore(backend: InMemoryBackend(), validConfiguration: SessionStoreConfiguration())

    /// The public `Session` API with names and values from a request: a sequence of
    /// operations split by `0xFF`, each an opcode byte, a name, `0x00` and a value. Never
    /// crashes; rejects only with typed errors (an empty or overlong name with
    /// `invalidAttributeName`, a non-integer increment with `attributeCoding`); reads back
    /// what it set; and its attributes survive the stored format.
    public static func sessionAPI(_ bytes: [UInt8]) -> String? {
        var session = fuzzStore.newSession()
        var expected: [String: String] = [:]
        var counters: [String: Int] = [:]
        for operation in bytes.split(separator: 0xFF, omittingEmptySubsequences: true) {
            let opcode = operation[operation.startIndex] % 5
            let rest = operation.dropFirst()
            let separator = rest.firstIndex(of: 0) ?? rest.endIndex
            let name = String(decoding: rest[..<separator], as: UTF8.self)
            let value = String(decoding: rest[separator...].dropFirst(), as: UTF8.self)
            let validName = !name.isEmpty && name.utf8.count <= Session.maxAttributeNameLength
            do {
                switch opcode {
                case 0:
                    try session.set(name, value)
                    expected[name] = value
                    counters[name] = nil
                case 1:
                    let delta = Int(value.utf8.count) - 8
                    let sum = try session.increment(name, by: delta)
                    guard counters[name] != nil || expected[name] == nil else { return "incremented a string attribute" }
                    counters[name] = sum
                    expected[name] = nil
                case 2:
                    session.remove(name)
                    expected[name] = nil
                    counters[name] = nil
                case 3:
                    if let want = expected[name] {
                        let read = try session.get(name, as: String.self)
                        if read != want { return "get(\(name)) gave \(String(describing: read)), set \(want)" }
                    }
                    if let want = counters[name] {
                        let number = try session.get(name, as: Int.self)
                        if number != want { return "counter \(name) is \(String(describing: number)), want \(want)" }
                    }
                default:
                    session.removeAll()
                    expected = [:]
                    counters = [:]
                }
            } catch let error as SessionStoreError {
                switch error.code {
                case .invalidAttributeName where !validName: continue
                case .attributeCoding where opcode == 1 && expected[name] != nil: continue
                default: return "operation \(opcode) on \(name.utf8.count)-byte name threw \(error.code): \(error.message)"
                }
            } catch {
                return "untyped error: \(error)"
            }
            if !validName && opcode <= 1 { return "accepted an invalid attribute name of \(name.utf8.count) bytes" }
        }
        guard Set(session.keys) == Set(expected.keys).union(counters.keys) else { return "keys differ from what was set" }
        return nil
    }

    /// `StoreURL` and `SessionStoreConfiguration(url:)`: never crash, reject with
    /// `invalidConfiguration`, and never print a password in a description or error.
    public static func storeURL(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        var url: StoreURL
        do {
            url = try StoreURL(text)
        } catch let error as SessionStoreError {
            return error.code == .invalidConfiguration ? nil : "StoreURL threw \(error.code)"
        } catch {
            return "StoreURL threw an untyped error: \(error)"
        }
        // The password must not show before the options; option values holding a nested
        // URL are redacted too (checked by unit tests), option names are shown as given.
        // A password that the user also wrote elsewhere (path, host, user, options) may show there.
        let secret = url.password.flatMap { password -> String? in
            let elsewhere = [url.path, url.host ?? "", url.user ?? "", optionsText(text)]
            // Short or repetitive passwords, or ones made of URL punctuation, match the rest of
            // the URL by chance ("5:" in "a5:***@"); only distinctive ones are checked here.
            let distinctive = password.count >= 6 && Set(password).count >= 4
                && !password.contains(where: { "@:/?&=%*".contains($0) || $0.asciiValue.map { $0 < 0x20 } == true })
            return !distinctive || elsewhere.contains(where: { $0.contains(password) }) ? nil : password
        }
        let description = url.description
        let beforeOptions = description.split(separator: "?", maxSplits: 1).first.map(String.init) ?? description
        if let secret, beforeOptions.contains(secret) {
            return "the description shows the password"
        }
        do {
            _ = try SessionStoreConfiguration(url: &url)
            try url.checkAllTaken()
        } catch let error as SessionStoreError {
            guard error.code == .invalidConfiguration else { return "configuration threw \(error.code)" }
            if let secret, error.description.contains(secret) {
                return "an error shows the password"
            }
        } catch {
            return "configuration threw an untyped error: \(error)"
        }
        return nil
    }

    /// `EncryptionKeyRing(parsing:)`: never crashes; rejects with `invalidConfiguration`;
    /// neither an error nor an accepted ring's description shows what a line gave as a key;
    /// an accepted ring has an active key or writes plaintext, and ids that are valid.
    public static func keyRingFile(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        // The text after each line's first ':' (what would be key material), when distinctive.
        let secrets = text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return value.count >= 12 && Set(value).count >= 6 ? value : nil
        }
        let shown: String
        do {
            let ring = try EncryptionKeyRing(parsing: text)
            guard ring.active != nil || ring.readsPlaintext else { return "a ring that writes plaintext refuses to read it" }
            guard ring.keyIDs.allSatisfy({ EncryptionKeyRing.Key.isValidID($0.utf8) }) else { return "accepted an invalid key id" }
            var dumped = ""
            dump(ring, to: &dumped)
            shown = "\(ring) \(String(reflecting: ring)) \(dumped)"
        } catch let error as SessionStoreError {
            guard error.code == .invalidConfiguration else { return "parsing threw \(error.code)" }
            shown = error.description
        } catch {
            return "parsing threw an untyped error: \(error)"
        }
        // Messages quote a line's key id, which is not secret: a value that is part of a
        // quoted id (`"nt2Y` of another line's `nt2Y…:`) does not count as shown.
        let quotedIDs = text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            var id = line[..<colon].trimmingCharacters(in: .whitespaces)
            if id.hasPrefix("*") { id = String(id.dropFirst()).trimmingCharacters(in: .whitespaces) }
            return "\"" + id + "\""
        }
        let isQuotedID: (String) -> Bool = { value in quotedIDs.contains { $0.contains(value) } }
        if let secret = secrets.first(where: { shown.contains($0) && !$0.allSatisfy(isKeyIDCharacter) && !isQuotedID($0) }) {
            return "key material shows: \(secret.prefix(4))…"
        }
        return nil
    }

    /// The rings ``encryptedRow(_:)`` opens rows with: `k1` active, `k2` decrypt-only,
    /// reading plaintext rows or refusing them.
    static let fuzzRings: (reading: EncryptionKeyRing, refusing: EncryptionKeyRing) = {
        do {
            let k1 = try EncryptionKeyRing.Key(id: "k1", bytes: [UInt8](repeating: 1, count: 32))
            let k2 = try EncryptionKeyRing.Key(id: "k2", bytes: [UInt8](repeating: 2, count: 32))
            return (
                try EncryptionKeyRing(active: k1, decryptOnly: [k2]),
                try EncryptionKeyRing(active: k1, decryptOnly: [k2], readsPlaintext: false))
        } catch {
            preconditionFailure("fixed fuzz rings are invalid: \(error)")
        }
    }()
    static var fuzzRing: EncryptionKeyRing { fuzzRings.reading }

    /// The ciphertext header and envelope: opening any stored bytes never crashes and gives
    /// either the plaintext row unchanged or a typed `undecryptable` error; a row that opens
    /// as encrypted fails once its tag changes; `kind(of:)` agrees; and the
    /// input sealed under either key opens back to itself, under its own storage key only.
    public static func encryptedRow(_ bytes: [UInt8]) -> String? {
        let key = SessionKey(value: "fuzz-row")
        let kind = EncryptedRow.kind(of: bytes)
        for ring in [fuzzRings.reading, fuzzRings.refusing] {
            let readsPlaintext = ring.readsPlaintext
            do {
                let opened = try EncryptedRow.open(bytes, with: ring, for: key)
                if kind != .plaintext {
                    // A genuine sealed row (a seed): with its last tag byte changed it must fail.
                    var changed = bytes
                    changed[changed.count - 1] ^= 1
                    if case .success = Result(catching: { try EncryptedRow.open(changed, with: ring, for: key) }) {
                        return "a row with a changed tag opened"
                    }
                    continue
                }
                if opened != bytes { return "a plaintext row changed on open" }
                if !readsPlaintext && !bytes.isEmpty { return "a ring refusing plaintext opened a plaintext row" }
            } catch let error as SessionStoreError {
                guard error.code == .undecryptable else { return "open threw \(error.code)" }
                if kind == .plaintext && readsPlaintext { return "a plaintext row failed to open" }
                if let id = error.keyID, !EncryptionKeyRing.Key.isValidID(id.utf8) { return "an error names an invalid key id" }
            } catch {
                return "open threw an untyped error: \(error)"
            }
        }
        for sealingKey in [fuzzRing.active, fuzzRing.key("k2".utf8)].compactMap({ $0 }) {
            do {
                let sealed = try EncryptedRow.seal(bytes, with: sealingKey, for: key)
                guard EncryptedRow.kind(of: sealed) == .encrypted(keyID: sealingKey.id) else { return "a sealed row has the wrong header" }
                guard try EncryptedRow.open(sealed, with: fuzzRing, for: key) == bytes else { return "a sealed row does not open to itself" }
                let moved = Result { try EncryptedRow.open(sealed, with: fuzzRing, for: SessionKey(value: "other-row")) }
                if case .success = moved { return "a sealed row opened under another storage key" }
            } catch {
                return "sealing or opening threw \(error)"
            }
        }
        return nil
    }

    private static func isKeyIDCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    /// The query part of a configuration string, percent-decoded: an option name that
    /// repeats the password is the caller's own text, echoed in "unknown option" errors.
    private static func optionsText(_ text: String) -> String {
        guard let mark = text.firstIndex(of: "?") else { return "" }
        var bytes: [UInt8] = []
        var rest = Array(text[mark...].utf8)[...]
        while let byte = rest.popFirst() {
            if byte == UInt8(ascii: "%"), rest.count >= 2,
               let value = UInt8(String(decoding: rest.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                rest = rest.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
