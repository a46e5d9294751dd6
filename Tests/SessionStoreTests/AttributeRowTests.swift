import Foundation
@testable import SessionStoreCore
import Testing

/// Loads read a stored row in place (``AttributeRow``): one checking pass at load, values
/// converted on first read. These pin that it answers exactly as the dictionary it
/// replaced, and still rejects at load everything that was rejected at load.
@Suite("Attribute rows read in place")
struct AttributeRowTests {
    struct Profile: Codable, Equatable {
        var name: String
        var tags: [String]
    }

    nonisolated(unsafe) static let typed: [String: any Encodable] = [  // unsafe: immutable values, read only
        "string": "alice ✓", "empty": "", "int": -42, "double": 2.5, "bool": true,
        "date": Date(timeIntervalSince1970: 1_700_000_000.5), "data": Data([0, 1, 255]),
        "uuid": UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F") ?? UUID(),
        "profile": Profile(name: "bob", tags: ["admin"]), "long": String(repeating: "é", count: 300),
    ]

    /// A session whose attributes are read from `row` in place.
    func session(_ row: [UInt8]) throws -> Session {
        Session(id: SessionID.generate(), stored: .init(version: 1, createdAt: 0, expiresAt: 1), row: try AttributeRow(validating: row))
    }

    /// A session holding the same attributes in the dictionary form a change produces.
    func eager(_ row: [UInt8]) throws -> Session {
        Session(id: SessionID.generate(), stored: nil, values: try AttributeCodec.decodeStored(row))
    }

    @Test func readingInPlaceGivesWhatTheDecodedDictionaryGives() throws {
        let row = try AttributeCodec.encode(typed: Self.typed)
        let lazy = try session(row)
        let eager = try eager(row)
        #expect(lazy.keys == eager.keys)
        #expect(lazy.keys.count == Self.typed.count)
        #expect(try lazy.get("string", as: String.self) == "alice ✓")
        #expect(try lazy.get("empty", as: String.self) == "")
        #expect(try lazy.get("int", as: Int.self) == -42)
        #expect(try lazy.get("int", as: Double.self) == -42, "an integer converts to Double as JSON would")
        #expect(try lazy.get("double", as: Double.self) == 2.5)
        #expect(try lazy.get("bool", as: Bool.self) == true)
        #expect(try lazy.get("date", as: Date.self) == Date(timeIntervalSince1970: 1_700_000_000.5))
        #expect(try lazy.get("data", as: Data.self) == Data([0, 1, 255]))
        #expect(try lazy.get("uuid", as: UUID.self) == UUID(uuidString: "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"))
        #expect(try lazy.get("profile", as: Profile.self) == Profile(name: "bob", tags: ["admin"]))
        #expect(try lazy.get("long", as: String.self) == String(repeating: "é", count: 300))
        for key in Self.typed.keys {
            let inPlace = try lazy.values.value(key).map { try AttributeValue.json($0) }
            let decoded = try eager.values.value(key).map { try AttributeValue.json($0) }
            #expect(inPlace != nil && inPlace == decoded, "\(key) reads the same in place and decoded")
            #expect(lazy.contains(key) && eager.contains(key))
        }
        #expect(try lazy.get("absent", as: String.self) == nil)
        #expect(!lazy.contains("absent"))
        #expect(!lazy.isEmpty)
    }

    @Test func aTypeMismatchOnARowReadIsTheSameTypedError() throws {
        let lazy = try session(try AttributeCodec.encode(typed: ["user": "alice"]))
        #expect {
            _ = try lazy.get("user", as: Int.self)
        } throws: { error in
            (error as? SessionStoreError)?.code == .attributeCoding && (error as? SessionStoreError)?.attribute == "user"
        }
    }

    @Test func formatOneRowsReadInPlaceAsBefore() throws {
        var formatOne: [UInt8] = [1]
        for (key, value) in [("n", "7"), ("user", "\"bob\""), ("list", "[1,2]")] {
            formatOne += [UInt8(key.utf8.count)] + Array(key.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        }
        let lazy = try session(formatOne)
        #expect(try lazy.get("n", as: Int.self) == 7)
        #expect(try lazy.get("user", as: String.self) == "bob")
        #expect(try lazy.get("list", as: [Int].self) == [1, 2])
        #expect(lazy.keys == ["list", "n", "user"])
    }

    @Test func rowsWhoseNamesAreNotSortedReadAsWell() throws {
        // Tools may write rows in any order; only this library's own writer sorts.
        let row: [UInt8] = [2, 1, 0x62, 2, 2, 0x42, 1, 0x61, 2, 2, 0x41, 2, 0xC3, 0xA9, 2, 2, 0x45]
        let lazy = try session(row)
        #expect(try lazy.get("a", as: String.self) == "A")
        #expect(try lazy.get("b", as: String.self) == "B")
        #expect(try lazy.get("é", as: String.self) == "E")
        #expect(lazy.keys == ["a", "b", "é"])
    }

    @Test func namesMatchUpToCanonicalEquivalenceAsInADictionary() throws {
        // U+212A KELVIN SIGN is canonically equivalent to "K"; "é" precomposed to "e" + U+0301.
        let lazy = try session(try AttributeCodec.encode(typed: ["\u{212A}": 1, "caf\u{E9}": 2]))
        #expect(try lazy.get("K", as: Int.self) == 1)
        #expect(try lazy.get("cafe\u{301}", as: Int.self) == 2)
        #expect(lazy.contains("K"))
        let ascii = try session(try AttributeCodec.encode(typed: ["K": 3]))
        #expect(try ascii.get("\u{212A}", as: Int.self) == 3)
    }

    @Test(arguments: [
        ("the same name twice", [UInt8]([2, 1, 0x61, 2, 2, 0x41, 1, 0x61, 2, 2, 0x42])),
        ("a name again after a later one", [2, 1, 0x61, 2, 5, 1, 1, 0x62, 2, 5, 1, 1, 0x61, 2, 5, 0]),
        ("canonically equivalent names", [2, 1, 0x4B, 2, 5, 1, 3, 0xE2, 0x84, 0xAA, 2, 5, 0]),
        ("a string value that is not UTF-8", [2, 1, 0x61, 3, 2, 0xC3, 0x28]),
        ("a surrogate encoded in a string value", [2, 1, 0x61, 4, 2, 0xED, 0xA0, 0x80]),
        ("an overlong encoding in a name", [2, 2, 0xC0, 0xAF, 2, 5, 1]),
    ])
    func damagedRowsAreStillRejectedAtLoad(_ name: String, _ row: [UInt8]) {
        #expect {
            _ = try AttributeRow(validating: row)
        } throws: { error in
            (error as? SessionStoreError)?.code == .corruptData
        }
    }

    @Test func aRowRepeatingANameNamesIt() {
        #expect {
            _ = try AttributeRow(validating: [2, 1, 0x61, 2, 2, 0x41, 1, 0x61, 2, 2, 0x42])
        } throws: { error in
            (error as? SessionStoreError)?.attribute == "a"
        }
    }

    @Test func changingARowReadSessionKeepsEveryOtherAttribute() throws {
        var lazy = try session(try AttributeCodec.encode(typed: ["a": "x", "b": 2, "c": true]))
        try lazy.set("a", "x")
        #expect(!lazy.hasChanges, "setting the value a row holds is no change")
        try lazy.set("a", "y")
        lazy.remove("c")
        #expect(try lazy.increment("b") == 3)
        #expect(lazy.hasChanges)
        #expect(try lazy.get("a", as: String.self) == "y")
        #expect(try lazy.get("b", as: Int.self) == 3)
        #expect(try lazy.get("c", as: Bool.self) == nil)
        #expect(lazy.keys == ["a", "b"])
        #expect(lazy.base[raw: "a"] == (try AttributeValue.encode("x")), "the row as loaded stays the merge base")
        lazy.removeAll()
        #expect(lazy.isEmpty)
    }

    @Test func removingAnAbsentNameFromARowIsNoChange() throws {
        var lazy = try session(try AttributeCodec.encode(typed: ["a": "x"]))
        lazy.remove("b")
        #expect(!lazy.hasChanges)
    }

    @Test func anEmptyRowReadsAsAnEmptySession() throws {
        let lazy = try session([AttributeCodec.formatVersion])
        #expect(lazy.isEmpty)
        #expect(lazy.keys.isEmpty)
        #expect(try lazy.get("a", as: String.self) == nil)
    }

    @Test func utf8CheckAgreesWithTheStandardLibrary() {
        func agrees(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBufferPointer { UTF8Validation.isValid($0) } == (String(validating: bytes, as: UTF8.self) != nil)
        }
        var disagreements: [[UInt8]] = []
        // Every lead byte with every second byte, alone, before continuations, after ASCII.
        for lead in 0...255 {
            for second in 0...255 {
                let pair = [UInt8(lead), UInt8(second)]
                for bytes in [pair, pair + [0x80, 0x80], [0x61] + pair + [0xBF]] where !agrees(bytes) {
                    disagreements.append(bytes)
                }
            }
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]
        for _ in 0..<50_000 {
            let count = Int.random(in: 0...24, using: &generator)
            let bytes = (0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
            if !agrees(bytes) { disagreements.append(bytes) }
        }
        let long = Array(String(repeating: "ascii then é then 🚀 ", count: 20).utf8)
        if !agrees(long) { disagreements.append(long) }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5))")
    }
}
