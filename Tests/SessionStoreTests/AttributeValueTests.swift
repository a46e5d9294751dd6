import Foundation
@testable import SessionStoreCore
import Testing

/// The compact value format (format 2): what each common type stores, that it reads back
/// without loss, and that reading it as another type behaves as format 1's JSON did.
@Suite("Attribute values")
struct AttributeValueTests {
    struct Profile: Codable, Equatable {
        var name: String
        var tags: [String]
    }

    func roundTrip<T: Codable & Equatable>(_ value: T) throws -> T {
        try AttributeValue.decode(try AttributeValue.encode(value), as: T.self)
    }

    @Test func commonTypesRoundTripThroughTheirCompactForms() throws {
        #expect(try roundTrip("alice ✓") == "alice ✓")
        #expect(try roundTrip("") == "")
        for number in [0, 1, -1, 42, Int.max, Int.min] { #expect(try roundTrip(number) == number) }
        for number in [0.0, -2.5, 1e300, Double.infinity] { #expect(try roundTrip(number) == number) }
        #expect(try roundTrip(true) == true)
        #expect(try roundTrip(false) == false)
        let date = Date(timeIntervalSince1970: 1_700_000_000.25)
        #expect(try roundTrip(date) == date)
        #expect(try roundTrip(Data([0, 255, 7])) == Data([0, 255, 7]))
        let uuid = UUID()
        #expect(try roundTrip(uuid) == uuid)
    }

    @Test func compactFormsAreTaggedAndSmall() throws {
        #expect(try AttributeValue.encode("ab") == [AttributeValue.Tag.string.rawValue, 0x61, 0x62])
        #expect(try AttributeValue.encode(-1) == [AttributeValue.Tag.int.rawValue, 1])
        #expect(try AttributeValue.encode(true) == [AttributeValue.Tag.bool.rawValue, 1])
        #expect(try AttributeValue.encode(UUID()).count == 17)
    }

    @Test func otherCodableValuesAreJSONWithSortedKeys() throws {
        let profile = Profile(name: "bob", tags: ["admin"])
        let raw = try AttributeValue.encode(profile)
        #expect(raw.first == AttributeValue.Tag.json.rawValue)
        #expect(try roundTrip(profile) == profile)
        let first = try AttributeValue.encode(["b": 2, "a": 1, "c": 3])
        for _ in 0..<20 { #expect(try AttributeValue.encode(["c": 3, "a": 1, "b": 2]) == first, "equal dictionaries, equal bytes") }
        #expect(try roundTrip(["x", "y"]) == ["x", "y"])
        #expect(try roundTrip(Optional<String>.none) == nil)
    }

    @Test func readingAsAnotherTypeConvertsAsJSONDid() throws {
        #expect(try AttributeValue.decode(try AttributeValue.encode(42), as: Double.self) == 42)
        #expect(try AttributeValue.decode(try AttributeValue.encode("x"), as: String?.self) == "x")
        let data = Data([1, 2, 3])
        #expect(try AttributeValue.decode(try AttributeValue.encode(data), as: String.self) == data.base64EncodedString())
        #expect(throws: (any Error).self) { try AttributeValue.decode(try AttributeValue.encode("x"), as: Int.self) }
    }

    @Test func formatOneValuesReadAsBefore() throws {
        let stored = AttributeCodec.encode(["user": Array("\"alice\"".utf8), "n": Array("42".utf8)])
        let values = try AttributeCodec.decodeStored(stored)
        #expect(try AttributeValue.decode(values["user"] ?? [], as: String.self) == "alice")
        #expect(AttributeValue.integer(values["n"] ?? []) == 42)
        var formatOne: [UInt8] = [1]
        for (key, value) in [("n", "7"), ("user", "\"bob\"")] {
            formatOne += [UInt8(key.utf8.count)] + Array(key.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        }
        let old = try AttributeCodec.decodeStored(formatOne)
        #expect(try AttributeValue.decode(old["user"] ?? [], as: String.self) == "bob")
        #expect(try AttributeValue.decode(old["n"] ?? [], as: Int.self) == 7)
        #expect(try AttributeCodec.decode(formatOne) == ["n": Array("7".utf8), "user": Array("\"bob\"".utf8)])
    }

    @Test(arguments: [
        [UInt8]([2, 1, 0x61, 2, 9, 0]),  // unknown tag 9
        [2, 1, 0x61, 2, 5, 2],  // bool 2
        [2, 1, 0x61, 3, 4, 0, 0],  // short double
        [2, 1, 0x61, 3, 2, 0xC3, 0x28],  // string not UTF-8
        [2, 1, 0x61, 2, 3, 0x80],  // integer without its last byte
        [2, 1, 0x61, 0],  // empty value
    ])
    func malformedValuesMakeTheRowCorrupt(_ row: [UInt8]) {
        #expect {
            _ = try AttributeCodec.decodeStored(row)
        } throws: { error in
            (error as? SessionStoreError)?.code == .corruptData
        }
    }
}
