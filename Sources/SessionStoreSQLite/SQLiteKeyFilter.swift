/// The slots (``SQLiteSlot``) of the rows a table holds, in a Bloom filter: a key whose slot
/// is not in it has no row, so a load of a cookie nobody was issued (a bot's, a forged one,
/// one from another site) is answered without SQLite.
///
/// A filter only ever gains bits: a deleted row's stay until the next build, and cost only a
/// lookup the database then answers. One part per stripe of ``SQLiteLoadCache``, read and
/// written under that stripe's lock; the cache decides when a part may answer.
struct SQLiteKeyFilter {
    /// The filter's words; empty for no filter.
    private var words: [UInt64]
    /// `words.count * 64 - 1`: the bits are a power of two.
    private var mask: UInt64

    /// No filter: ``mayHold(_:)`` is always `true`.
    static let none = SQLiteKeyFilter(words: [], mask: 0)

    /// Bits per expected slot: with three probes about 0.1% of absent slots pass, and still
    /// about 3% once four times the expected slots were added since the build.
    static let bitsPerSlot = 32
    /// The fewest bits of a part.
    static let smallestBits = 1 << 12
    /// The most bits of a part (2^21, 256 KiB): three probes take 21 bits each of a 64-bit
    /// hash. Sixteen parts hold 4 MiB at most, however many rows the table holds; past
    /// about a million rows the filter passes more absent slots, and never misses a present one.
    static let largestBits = 1 << 21

    private init(words: [UInt64], mask: UInt64) {
        self.words = words
        self.mask = mask
    }

    /// An empty part sized for `expected` slots.
    init(expecting expected: Int) {
        let wanted = max(Self.smallestBits, min(Self.largestBits, expected.multipliedReportingOverflow(by: Self.bitsPerSlot).partialValue))
        let bits = min(Self.largestBits, 1 << (Int.bitWidth - (wanted - 1).leadingZeroBitCount))
        self.init(words: Array(repeating: 0, count: bits / 64), mask: UInt64(bits - 1))
    }

    /// Whether this part filters at all.
    var isEmpty: Bool { words.isEmpty }

    /// Bytes the part holds (for tests and the soak).
    var bytes: Int { words.count * 8 }

    /// Whether `slot` may have a row: `false` only for a slot never added.
    func mayHold(_ slot: Int64) -> Bool {
        guard !words.isEmpty else { return true }
        let hash = Self.hash(slot)
        for probe in 0..<3 {
            let bit = (hash >> (UInt64(probe) * 21)) & mask
            if words[Int(bit >> 6)] & (1 << (bit & 63)) == 0 { return false }
        }
        return true
    }

    /// Adds `slot`; returns whether that set a bit that was clear (a slot new to the filter,
    /// or one sharing its bits with no other).
    @discardableResult
    mutating func add(_ slot: Int64) -> Bool {
        guard !words.isEmpty else { return false }
        let hash = Self.hash(slot)
        var added = false
        for probe in 0..<3 {
            let bit = (hash >> (UInt64(probe) * 21)) & mask
            let word = Int(bit >> 6)
            let flag: UInt64 = 1 << (bit & 63)
            if words[word] & flag == 0 {
                words[word] |= flag
                added = true
            }
        }
        return added
    }

    /// The slot mixed again (SplitMix64's finalizer over an odd multiple), so the probes do
    /// not reuse the bits that already chose the slot's stripe and set.
    private static func hash(_ slot: Int64) -> UInt64 {
        var z = UInt64(bitPattern: slot) &* 0xD6E8_FEB8_6659_FD93
        z = (z ^ (z >> 32)) &* 0xD6E8_FEB8_6659_FD93
        return z ^ (z >> 32)
    }
}
