import SessionStoreCore
import Testing

@Suite("Attribute codec")
struct AttributeCodecTests {
    @Test("encoding then decoding gives the same attributes")
    func roundTrip() throws {
        let attributes: [String: [UInt8]] = ["a": [1, 2, 3], "zoë": [], "long": [UInt8](repeating: 7, count: 300)]
        #expect(try AttributeCodec.decode(AttributeCodec.encode(attributes)) == attributes)
    }

    @Test("equal attributes encode to equal bytes whatever the insertion order")
    func deterministic() {
        var first = [String: [UInt8]]()
        var second = [String: [UInt8]]()
        for index in 0..<50 { first["k\(index)"] = [UInt8(index)] }
        for index in (0..<50).reversed() { second["k\(index)"] = [UInt8(index)] }
        #expect(AttributeCodec.encode(first) == AttributeCodec.encode(second))
    }

    @Test("the first byte is the format version")
    func versionByte() {
        #expect(AttributeCodec.encode([:]) == [AttributeCodec.formatVersion])
    }

    @Test("every truncation of a valid encoding is rejected or decodes to fewer attributes")
    func truncations() throws {
        let full = AttributeCodec.encode(["user": Array("\"alice\"".utf8), "n": Array("42".utf8)])
        for length in 0..<full.count {
            let prefix = Array(full[..<length])
            do {
                let decoded = try AttributeCodec.decode(prefix)
                #expect(decoded.count < 2, "a truncated row never decodes to the full map")
            } catch let error as SessionStoreError {
                #expect(error.code == .corruptData)
            }
        }
    }

    @Test("random bytes never crash the decoder")
    func randomBytes() {
        var generator = SystemRandomNumberGenerator()
        var rejected = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...40, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty, Bool.random(using: &generator) { bytes[0] = 1 }
            do {
                _ = try AttributeCodec.decode(bytes)
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > 0)
    }
}
