import SessionStore
import SessionStoreTesting
import Testing

/// Session ids from clients that are not ids we minted: missed cheaply, never adopted,
/// and (when malformed) never reaching the backend.
@Suite("Hostile session ids")
struct HostileIDTests {
    static let malformed: [String] = [
        "",
        String(repeating: "A", count: 1_000_000),
        String(decoding: [0xFF, 0xFE, 0xC3, 0x28, 0xA0, 0xA1, 0xF0, 0x28, 0x8C, 0x28] + Array(repeating: 0x41, count: 12), as: UTF8.self),
        String(decoding: Array(repeating: 0x80, count: 22), as: UTF8.self),
        "AAAAAAAAAAAAAAAAAAAAA\u{0}",
        "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
        "'; DROP TABLE sessions; --",
        "AAAAAAAAAAAA' OR 1=1 --",
        "AAAAAAAAAAAAAAAAAAAA\\'",
        "AAAAAAAAAAAAAAAAAAAAA%",
        "ＡAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAA\u{301}A",
        " AAAAAAAAAAAAAAAAAAAAA",
    ]

    @Test("malformed ids, including non-UTF-8 bytes, give a new session with no backend call")
    func malformedIDsNeverReachTheBackend() async throws {
        let backend = CountingBackend(InMemoryBackend())
        let store = try SessionStore(backend: backend)
        for text in Self.malformed {
            let session = try await store.load(id: text)
            #expect(!session.isStored && session.isEmpty)
            #expect(session.id.text != text, "never adopted")
            #expect(SessionID(validating: session.id.text) != nil, "the replacement is a minted id")
        }
        #expect(backend.calls.isEmpty, "no backend call: \(backend.calls)")
        try await store.shutdown()
    }

    @Test("a well-formed unknown id costs one lookup and is never adopted, even when saved")
    func unknownIDIsNeverAdopted() async throws {
        let backend = CountingBackend(InMemoryBackend())
        let store = try SessionStore(backend: backend)
        let chosen = SessionID.generate().text
        var session = try await store.load(id: chosen)
        #expect(backend.calls == ["load": 1])
        try session.set("user", "mallory")
        try await store.save(&session)
        #expect(session.id.text != chosen, "the stored session has a server-minted id")
        #expect(!(try await store.load(id: chosen).isStored), "the client's chosen id was never stored")
        try await store.shutdown()
    }

    @Test("a stored row larger than the size limit still loads; the limit applies to saves")
    func oversizedStoredRowLoads() async throws {
        var configuration = SessionStoreConfiguration()
        configuration.maxDataSize = 1024
        let backend = InMemoryBackend()
        let store = try SessionStore(backend: backend, configuration: configuration)
        let id = SessionID.generate()
        let big = AttributeCodec.encode(["blob": Array("\"\(String(repeating: "x", count: 4000))\"".utf8)])
        let now = SystemSessionClock().now()
        #expect(try await backend.insert(store.storageKey(for: id), SessionRecord(data: big, version: 1, createdAt: now, expiresAt: now + 60_000)))
        var loaded = try await store.load(id)
        #expect(try loaded.get("blob", as: String.self)?.count == 4000)
        try loaded.set("more", 1)
        let error = await #expect(throws: SessionStoreError.self) { try await store.save(&loaded) }
        #expect(error?.code == .dataTooLarge)
        try await store.shutdown()
    }
}
