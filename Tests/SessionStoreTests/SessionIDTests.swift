import SessionStoreCore
import Testing

@Suite("Session ids")
struct SessionIDTests {
    @Test("generated ids are 22 URL-safe characters and validate")
    func generatedShape() throws {
        for _ in 0..<1000 {
            let id = SessionID.generate()
            #expect(id.text.utf8.count == 22)
            #expect(id.text.utf8.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            })
            #expect(SessionID(validating: id.text) == id)
        }
    }

    @Test("100,000 generated ids are all distinct")
    func unique() {
        var seen = Set<String>()
        for _ in 0..<100_000 { seen.insert(SessionID.generate().text) }
        #expect(seen.count == 100_000)
    }

    @Test("every bit position varies across generated ids")
    func bitsVary() {
        var ones = [Int](repeating: 0, count: 22)
        for _ in 0..<2000 {
            for (index, byte) in SessionID.generate().text.utf8.enumerated() where byte & 1 == 1 { ones[index] += 1 }
        }
        // Each of the first 21 characters carries 6 random bits: its low bit is set about half the time.
        for index in 0..<21 { #expect((700...1300).contains(ones[index]), "position \(index): \(ones[index])") }
    }

    @Test("malformed text is rejected", arguments: [
        "", "A", String(repeating: "A", count: 21), String(repeating: "A", count: 23),
        "AAAAAAAAAAAAAAAAAAAAA+", "AAAAAAAAAAAAAAAAAAAA A", "AAAAAAAAAAAAAAAAAAAAAB",
        "AAAAAAAAAAAAAAAAAAAA\u{0}A", "ÄAAAAAAAAAAAAAAAAAAAA", "'; DROP TABLE s; --AAAA",
    ])
    func rejects(text: String) {
        #expect(SessionID(validating: text) == nil)
    }

    @Test("the description never shows the whole id")
    func redacted() {
        let id = SessionID.generate()
        #expect(!"\(id)".contains(id.text))
        #expect(id.redacted.hasPrefix(String(id.text.prefix(4))))
    }
}
