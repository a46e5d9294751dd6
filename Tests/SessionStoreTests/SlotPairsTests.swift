import SessionStoreCore
import Testing

/// Two-way placement of the small caches' entries (``SlotPairs``).
@Suite("Slot pairs")
struct SlotPairsTests {
    struct Entry: Equatable {
        var key: String
        var value: Int
    }

    @Test func twoKeysOfOnePairBothStay() {
        var slots = [Entry?](repeating: nil, count: 4)
        SlotPairs.place(Entry(key: "a", value: 1), in: &slots, at: 2) { $0.key == "a" }
        SlotPairs.place(Entry(key: "b", value: 2), in: &slots, at: 2) { $0.key == "b" }
        #expect(SlotPairs.find(in: slots, at: 2) { $0.key == "a" }.map { slots[$0]?.value } == 1)
        #expect(SlotPairs.find(in: slots, at: 2) { $0.key == "b" }.map { slots[$0]?.value } == 2)
        #expect(slots[0] == nil && slots[1] == nil, "the other pair is untouched")
    }

    @Test func aKeyStoredAgainReplacesItsOwnEntry() {
        var slots = [Entry?](repeating: nil, count: 2)
        SlotPairs.place(Entry(key: "a", value: 1), in: &slots, at: 0) { $0.key == "a" }
        SlotPairs.place(Entry(key: "b", value: 2), in: &slots, at: 0) { $0.key == "b" }
        SlotPairs.place(Entry(key: "b", value: 3), in: &slots, at: 0) { $0.key == "b" }
        #expect(slots.compactMap { $0 }.sorted { $0.key < $1.key } == [Entry(key: "a", value: 1), Entry(key: "b", value: 3)])
    }

    @Test func aThirdKeyDropsTheEntryStoredEarlier() {
        var slots = [Entry?](repeating: nil, count: 2)
        for (index, key) in ["a", "b", "c"].enumerated() {
            SlotPairs.place(Entry(key: key, value: index), in: &slots, at: 0) { $0.key == key }
        }
        #expect(SlotPairs.find(in: slots, at: 0) { $0.key == "a" } == nil, "the earliest entry went")
        #expect(SlotPairs.find(in: slots, at: 0) { $0.key == "b" } != nil)
        #expect(SlotPairs.find(in: slots, at: 0) { $0.key == "c" } != nil)
    }

    @Test func removeEmptiesOnlyTheMatchingSlot() {
        var slots: [Entry?] = [Entry(key: "a", value: 1), Entry(key: "b", value: 2)]
        SlotPairs.remove(from: &slots, at: 0) { $0.key == "b" }
        #expect(slots == [Entry(key: "a", value: 1), nil])
    }

    @Test func pairsStartAtEvenSlotsWithinTheArray() {
        for hash in [UInt(0), 1, 2, 7, 1_000_003, UInt.max] {
            let first = SlotPairs.pair(of: hash, slotCount: 64)
            #expect(first % 2 == 0 && first + 1 < 64)
        }
    }
}
