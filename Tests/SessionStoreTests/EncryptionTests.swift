import Crypto
import Foundation
import MetricsTestKit
@testable import SessionStore
import SessionStoreTestSupport
import SessionStoreTesting
import Testing

/// A key file in a directory of its own, removed afterwards.
private func withKeyFile(_ text: String, mode: mode_t = 0o600, _ body: (String) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }  // Cleanup of a temp dir; the test's result stands.
    let path = directory.appendingPathComponent("session-keys").path
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    #expect(chmod(path, mode) == 0)
    try body(path)
}

private let keyA = Data(repeating: 0xA1, count: 32).base64EncodedString()
private let keyB = Data(repeating: 0xB2, count: 32).base64EncodedString()

private func configurationError(_ body: () throws -> Void) -> SessionStoreError? {
    do {
        try body()
        return nil
    } catch let error as SessionStoreError {
        return error.code == .invalidConfiguration ? error : nil
    } catch {
        return nil
    }
}

@Suite("Encryption key ring")
struct EncryptionKeyRingTests {
    @Test("a key file names one active key with '*' and any number of decrypt-only keys")
    func parsesKeyFile() throws {
        let ring = try EncryptionKeyRing(parsing: "# keys\n\n*2026-12:\(keyB)\r\n  2026-06 : \(keyA)  \n")
        #expect(ring.active?.id == "2026-12")
        #expect(ring.keyIDs == ["2026-06", "2026-12"])
        #expect(ring.readsPlaintext)
    }

    @Test("'*plaintext' writes plaintext while the listed keys still decrypt")
    func plaintextMarker() throws {
        let ring = try EncryptionKeyRing(parsing: "*plaintext\nold:\(keyA)\n")
        #expect(ring.active == nil)
        #expect(ring.keyIDs == ["old"])
    }

    @Test(
        "a malformed key file is a configuration error naming the line",
        arguments: [
            ("a:\(keyA)\n", "no active key"),
            ("*a:\(keyA)\n*b:\(keyB)\n", "line 2"),
            ("*a:\(keyA)\n*plaintext\n", "line 2"),
            ("*a\n", "line 1"),
            ("*a:not base64!\n", "line 1"),
            ("*a:\(Data(repeating: 1, count: 16).base64EncodedString())\n", "16 bytes"),
            ("*a:\(keyA)\na:\(keyB)\n", "twice"),
            ("*bad id:\(keyA)\n", "line 1"),
            ("*\(String(repeating: "k", count: 33)):\(keyA)\n", "line 1"),
            ("*plaintext:\(keyA)\n", "line 1"),
            ("", "no active key"),
        ])
    func rejectsMalformedFile(text: String, mention: String) {
        let error = configurationError { _ = try EncryptionKeyRing(parsing: text) }
        #expect(error?.message.contains(mention) == true, "\(String(describing: error))")
        #expect(error?.message.contains(keyA) == false)
        #expect(error?.message.contains(keyB) == false)
    }

    @Test("descriptions, debug descriptions and dumps show key ids, never key material")
    func neverPrintsKeys() throws {
        let ring = try EncryptionKeyRing(parsing: "*a:\(keyA)\nb:\(keyB)\n")
        var dumped = ""
        dump(ring, to: &dumped)
        var dumpedKey = ""
        dump(ring.active, to: &dumpedKey)
        let texts = ["\(ring)", String(reflecting: ring), dumped, dumpedKey, "\(ring.active!)", String(reflecting: ring.active!)]
        for text in texts {
            #expect(text.contains("a"))
            #expect(!text.contains(keyA) && !text.contains(keyB), "\(text)")
            #expect(!text.contains("161, 161") && !text.contains("0xa1") && !text.lowercased().contains("a1a1"), "\(text)")
        }
    }

    @Test("a key file with mode 0600 is read")
    func readsPrivateFile() throws {
        try withKeyFile("*a:\(keyA)\n") { path in
            let ring = try EncryptionKeyRing(contentsOfFile: path)
            #expect(ring.active?.id == "a")
        }
    }

    @Test("a key file other users may read is refused, not warned about", arguments: [0o644, 0o604, 0o606, 0o660] as [mode_t])
    func refusesOpenFile(mode: mode_t) throws {
        try withKeyFile("*a:\(keyA)\n", mode: mode) { path in
            let error = configurationError { _ = try EncryptionKeyRing(contentsOfFile: path) }
            #expect(error?.message.contains("chmod 600") == true, "\(String(describing: error))")
        }
    }

    @Test("group read is allowed only on a root-owned file (0640 root:app), as PostgreSQL allows its key")
    func groupReadRule() {
        #expect(EncryptionKeyRing.permissionsAllowed(owner: 1000, mode: 0o600))
        #expect(EncryptionKeyRing.permissionsAllowed(owner: 1000, mode: 0o400))
        #expect(!EncryptionKeyRing.permissionsAllowed(owner: 1000, mode: 0o640))
        #expect(EncryptionKeyRing.permissionsAllowed(owner: 0, mode: 0o640))
        #expect(!EncryptionKeyRing.permissionsAllowed(owner: 0, mode: 0o660))
        #expect(!EncryptionKeyRing.permissionsAllowed(owner: 0, mode: 0o644))
    }

    @Test("a missing key file or a directory is a configuration error")
    func missingFile() {
        #expect(configurationError { _ = try EncryptionKeyRing(contentsOfFile: "/nonexistent/keys") } != nil)
        #expect(configurationError { _ = try EncryptionKeyRing(contentsOfFile: "/") } != nil)
    }

    @Test("encryption_keys and encryption_plaintext are read from the URL; encryption_plaintext alone is an error")
    func openByURL() async throws {
        try withKeyFile("*a:\(keyA)\n") { path in
            var url = try StoreURL("memory://?encryption_keys=\(path)&encryption_plaintext=refuse")
            let ring = try #require(try EncryptionKeyRing.take(from: &url))
            #expect(ring.active?.id == "a" && !ring.readsPlaintext)
            try url.checkAllTaken()
        }
        var bare = try StoreURL("memory://?encryption_plaintext=read")
        #expect(configurationError { _ = try EncryptionKeyRing.take(from: &bare) } != nil)
    }
}

@Suite("Encrypted rows")
struct EncryptedRowTests {
    let key = SessionKey(value: "row-key")

    @Test("a sealed row is marker, id length, id, nonce, ciphertext and tag; each write has a fresh nonce")
    func layout() throws {
        let plaintext = AttributeCodec.encode(["user": Array("\"alice\"".utf8)])
        let first = try EncryptedRow.seal(plaintext, with: TestKeys.a, for: key)
        let second = try EncryptedRow.seal(plaintext, with: TestKeys.a, for: key)
        #expect(first.count == 2 + 6 + 12 + plaintext.count + 16)
        #expect(first[0] == 0xE1 && first[1] == 6 && Array(first[2..<8]) == Array("test-a".utf8))
        #expect(first != second)
        #expect(EncryptedRow.kind(of: first) == .encrypted(keyID: "test-a"))
        #expect(EncryptedRow.kind(of: plaintext) == .plaintext)
        #expect(try EncryptedRow.open(first, with: TestKeys.standard, for: key) == plaintext)
    }

    @Test("every readable attribute format byte is below the encryption marker range")
    func rangesDoNotOverlap() {
        #expect(AttributeCodec.formatVersion < 0x20)
        #expect(!EncryptedRow.reserved.contains(AttributeCodec.formatVersion))
    }

    @Test("a row sealed by swift-crypto's AES.GCM (how earlier releases sealed) opens")
    func opensRowsSealedBySwiftCrypto() throws {
        let plaintext = AttributeCodec.encode(["cart": Array("[1,2,3]".utf8)])
        let header: [UInt8] = [0xE1, 6] + Array("test-a".utf8)
        let box = try AES.GCM.seal(
            plaintext, using: SymmetricKey(data: [UInt8](repeating: 0xA1, count: 32)), nonce: AES.GCM.Nonce(),
            authenticating: header + Array(key.value.utf8))
        let row = header + [UInt8](try #require(box.combined))
        #expect(try EncryptedRow.open(row, with: TestKeys.standard, for: key) == plaintext)
    }

    @Test("a sealed row is standard AES-256-GCM: swift-crypto's AES.GCM opens it with the header and storage key as associated data")
    func sealsWhatSwiftCryptoOpens() throws {
        let plaintext = AttributeCodec.encode(["cart": Array("[1,2,3]".utf8)])
        let row = try EncryptedRow.seal(plaintext, with: TestKeys.a, for: key)
        let headerEnd = 2 + 6
        let box = try AES.GCM.SealedBox(combined: row[headerEnd...])
        let opened = try AES.GCM.open(
            box, using: SymmetricKey(data: [UInt8](repeating: 0xA1, count: 32)),
            authenticating: Array(row[..<headerEnd]) + Array(key.value.utf8))
        #expect([UInt8](opened) == plaintext)
    }

    @Test("an empty ciphertext (a tag alone) opens as empty bytes, and a changed tag fails")
    func tagOnlyRow() throws {
        let header: [UInt8] = [0xE1, 6] + Array("test-a".utf8)
        let box = try AES.GCM.seal(
            [UInt8](), using: SymmetricKey(data: [UInt8](repeating: 0xA1, count: 32)), nonce: AES.GCM.Nonce(),
            authenticating: header + Array(key.value.utf8))
        var row = header + [UInt8](try #require(box.combined))
        #expect(try EncryptedRow.open(row, with: TestKeys.standard, for: key) == [])
        row[row.count - 1] ^= 1
        #expect(throws: SessionStoreError.self) { try EncryptedRow.open(row, with: TestKeys.standard, for: key) }
    }

    @Test("a row moved under another storage key fails to open")
    func associatedData() throws {
        let sealed = try EncryptedRow.seal([2], with: TestKeys.a, for: key)
        #expect(throws: SessionStoreError.self) { try EncryptedRow.open(sealed, with: TestKeys.standard, for: SessionKey(value: "other")) }
    }
}

@Suite("Encryption and on_corrupt")
struct EncryptionPolicyTests {
    @Test("on_corrupt=new: an undecryptable row gives a new session, a warning and the undecryptable load counter")
    func lenientPolicyCounts() async throws {
        let metrics = TestMetrics()
        let label = "e\(UInt32.random(in: 0...UInt32.max))"
        let log = CapturedLog()
        let shared = InMemoryBackend()
        let writer = try SessionStore(backend: EncryptingBackend(wrapping: shared, keys: TestKeys.standard))
        var session = writer.newSession()
        try session.set("user", "alice")
        try await writer.save(&session)
        var configuration = SessionStoreConfiguration()
        configuration.corruptDataPolicy = .startNewSession
        let reader = try SessionStore(
            backend: EncryptingBackend(wrapping: shared, keys: TestKeys.ring(TestKeys.b)), configuration: configuration,
            logger: log.logger, metricsLabel: label, metricsFactory: metrics)
        let fresh = try await reader.load(session.id)
        #expect(!fresh.isStored && fresh.id != session.id)
        #expect(try metrics.expectCounter("\(label)_loads_total", [("result", "undecryptable")]).totalValue == 1)
        #expect(try metrics.expectCounter("\(label)_errors_total").totalValue == 0)
        let warnings = log.lines(at: .warning)
        #expect(warnings.count == 1 && warnings[0].contains("test-a") && !warnings[0].contains(session.id.text))
        try await writer.shutdown()
        try await reader.shutdown()
    }

    @Test("on_corrupt=error: saves, merges and regeneration of an undecryptable row throw undecryptable with the redacted id")
    func strictPolicyEverywhere() async throws {
        let shared = InMemoryBackend()
        let writer = try SessionStore(backend: EncryptingBackend(wrapping: shared, keys: TestKeys.standard))
        var session = writer.newSession()
        try session.set("user", "alice")
        try await writer.save(&session)
        var loaded = try await writer.load(session.id)
        let other = try SessionStore(backend: EncryptingBackend(wrapping: shared, keys: TestKeys.ring(TestKeys.b)))
        let error = await #expect(throws: SessionStoreError.self) { try await other.load(session.id) }
        #expect(error?.code == .undecryptable && error?.keyID == "test-a" && error?.session == session.id.redacted)
        try loaded.set("user", "bob")
        let merged = await #expect(throws: SessionStoreError.self) { try await other.modify(&loaded) { try $0.set("n", 1) } }
        #expect(merged?.code == .undecryptable && merged?.session == session.id.redacted)
        let regenerated = await #expect(throws: SessionStoreError.self) { try await other.regenerateID(&loaded) }
        #expect(regenerated?.code == .undecryptable)
        #expect(try await writer.load(session.id).get("user", as: String.self) == "alice")
        try await writer.shutdown()
        try await other.shutdown()
    }

    @Test("the fallback backend under encryption: legacy plaintext rows read and are sealed when copied over")
    func fallbackBackend() async throws {
        let legacy = InMemoryBackend()
        let plain = try SessionStore(backend: legacy)
        var session = plain.newSession()
        try session.set("user", "alice")
        try await plain.save(&session)
        let primary = InMemoryBackend()
        let store = try SessionStore(backend: EncryptingBackend(wrapping: FallbackBackend(primary: primary, legacy: legacy), keys: TestKeys.standard))
        var loaded = try await store.load(session.id)
        #expect(try loaded.get("user", as: String.self) == "alice")
        try loaded.set("user", "bob")
        try await store.save(&loaded)
        let copied = try #require(try await primary.load(store.storageKey(for: session.id), now: Int64.min))
        #expect(EncryptedRow.kind(of: copied.data) == .encrypted(keyID: "test-a"))
        #expect(try await store.load(session.id).get("user", as: String.self) == "bob")
        try await plain.shutdown()
        try await store.shutdown()
    }
}
