import SessionStoreCore
import Testing

@Suite("CRC32")
struct CRC32Tests {
    @Test("matches the standard check value for 123456789")
    func checkValue() {
        #expect(CRC32.checksum("123456789") == 0xCBF4_3926)
    }

    @Test("matches known vectors of several lengths", arguments: [
        ("", UInt32(0)),
        ("a", UInt32(0xE8B7_BE43)),
        ("abc", UInt32(0x3524_41C2)),
        ("The quick brown fox jumps over the lazy dog", UInt32(0x414F_A339)),
    ])
    func vectors(input: String, expected: UInt32) {
        #expect(CRC32.checksum(input) == expected)
    }

    @Test("the slice-by-8 path agrees with a bytewise reference on every length up to 64")
    func agreesWithReference() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...64 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var reference: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                reference ^= UInt32(byte)
                for _ in 0..<8 { reference = reference & 1 == 1 ? (reference >> 1) ^ 0xEDB8_8320 : reference >> 1 }
            }
            #expect(CRC32.checksum(bytes) == reference ^ 0xFFFF_FFFF, "length \(length)")
        }
    }
}
