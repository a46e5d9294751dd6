import SessionStoreCore
import Testing

/// Two-way placement of the small caches' entries (``SlotPairs``).
@Suite("Slot pairs")
struct SlotPairsTests {
    /// A pair of slots holding keys, stored as the caches store them.
    struct Pair {
        var slots: [String?] = [nil, nil]

        mutating func store(_ key: String) {
            let (slot, moveFirst) = SlotPairs.destination(at: 0, firstIsEmpty: slots[0] == nil) { slots[$0] == key }
            if moveFirst { slots[1] = slots[0] }
            slots[slot] = key
        }

        func holds(_ key: String) -> Bool { SlotPairs.find(at: 0) { slots[$0] == key } != nil }
    }

    @Test func twoKeysOfOnePairBothStay() {
        var pair = Pair()
        pair.store("a")
        pair.store("b")
        #expect(pair.holds("a") && pair.holds("b"))
    }

    @Test func aKeyStoredAgainTakesItsOwnSlot() {
        var pair = Pair()
        pair.store("a")
        pair.store("b")
        pair.store("a")
        #expect(pair.slots.compactMap { $0 }.sorted() == ["a", "b"])
    }

    @Test func aThirdKeyDropsTheKeyStoredEarliest() {
        var pair = Pair()
        for key in ["a", "b", "c"] { pair.store(key) }
        #expect(!pair.holds("a"))
        #expect(pair.holds("b") && pair.holds("c"))
    }

    @Test func stripesHoldWholePairsAndLocateStaysWithinThem() {
        for (slots, stripes) in [(1_024, 16), (1, 16), (7, 2), (100, 0)] {
            let perStripe = SlotPairs.slotsPerStripe(slots, stripes: stripes)
            #expect(perStripe >= 2 && perStripe % 2 == 0, "\(slots) slots over \(stripes) stripes: \(perStripe)")
            let stripeCount = max(1, stripes)
            for hash in [UInt(0), 5, 1_000_003, UInt.max] {
                let (stripe, first) = SlotPairs.locate(hash, stripeCount: stripeCount, slotsPerStripe: perStripe)
                #expect(stripe < stripeCount && first % 2 == 0 && first + 1 < perStripe)
            }
        }
    }

    @Test func pairsStartAtEvenSlotsWithinTheArray() {
        for hash in [UInt(0), 1, 2, 7, 1_000_003, UInt.max] {
            let first = SlotPairs.pair(of: hash, slotCount: 64)
            #expect(first % 2 == 0 && first + 1 < 64)
        }
    }
}
