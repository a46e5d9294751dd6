import SessionStoreCore
import Testing

/// Set-associative placement of the small caches' entries (``SlotSets``).
@Suite("Slot sets")
struct SlotSetsTests {
    /// One set of slots holding keys, stored as the caches store them.
    struct OneSet {
        var slots = [String?](repeating: nil, count: SlotSets.ways)
        var victim = 0

        mutating func store(_ key: String) {
            let slot = SlotSets.place(at: 0, victim: &victim, isEmpty: { slots[$0] == nil }, matches: { slots[$0] == key })
            slots[slot] = key
        }

        mutating func remove(_ key: String) {
            if let slot = SlotSets.find(at: 0, { slots[$0] == key }) { slots[slot] = nil }
        }

        func holds(_ key: String) -> Bool { SlotSets.find(at: 0) { slots[$0] == key } != nil }
    }

    static let keys = (0..<SlotSets.ways).map { "key\($0)" }

    @Test func asManyKeysAsTheSetHasSlotsAllStay() {
        var set = OneSet()
        for key in Self.keys { set.store(key) }
        #expect(Self.keys.allSatisfy(set.holds))
    }

    @Test func aKeyStoredAgainTakesItsOwnSlot() {
        var set = OneSet()
        for key in Self.keys { set.store(key) }
        set.store("key0")
        #expect(set.slots.compactMap { $0 }.sorted() == Self.keys.sorted())
    }

    @Test func oneKeyTooManyReplacesOneKeyInPlace() {
        var set = OneSet()
        for key in Self.keys { set.store(key) }
        set.store("late")
        #expect(set.holds("late"))
        #expect(Self.keys.count(where: set.holds) == SlotSets.ways - 1)
        #expect(set.slots.compactMap { $0 }.count == SlotSets.ways)
    }

    @Test func aFullSetReplacesItsKeysInTurn() {
        var set = OneSet()
        for key in Self.keys { set.store(key) }
        let late = (0..<SlotSets.ways).map { "late\($0)" }
        for key in late { set.store(key) }
        #expect(late.allSatisfy(set.holds), "each replacement took another slot")
        #expect(!Self.keys.contains(where: set.holds))
    }

    @Test func aRemovedKeysSlotIsReusedWithoutDroppingAnother() {
        var set = OneSet()
        for key in Self.keys { set.store(key) }
        set.remove("key3")
        set.store("new")
        #expect(set.holds("new") && !set.holds("key3"))
        #expect(Self.keys.filter { $0 != "key3" }.allSatisfy(set.holds))
    }

    @Test func stripesHoldWholeSetsAndLocateStaysWithinThem() {
        for (slots, stripes) in [(1_024, 16), (1, 16), (7, 2), (100, 0), (200, 3)] {
            let perStripe = SlotSets.slotsPerStripe(slots, stripes: stripes)
            #expect(perStripe >= SlotSets.ways && perStripe % SlotSets.ways == 0, "\(slots) slots over \(stripes) stripes: \(perStripe)")
            let stripeCount = max(1, stripes)
            for hash in [UInt(0), 5, 1_000_003, UInt.max] {
                let (stripe, first) = SlotSets.locate(hash, stripeCount: stripeCount, slotsPerStripe: perStripe)
                #expect(stripe < stripeCount && first % SlotSets.ways == 0 && first + SlotSets.ways <= perStripe)
            }
        }
    }

    @Test func setsStartAtMultiplesOfTheirSizeWithinTheArray() {
        for hash in [UInt(0), 1, 2, 7, 1_000_003, UInt.max] {
            let first = SlotSets.set(of: hash, slotCount: 64)
            #expect(first % SlotSets.ways == 0 && first + SlotSets.ways <= 64)
        }
    }

    /// The benchmark's case: 256 random keys in 1,024 slots over 16 stripes. Pairs of slots
    /// dropped a few of them in most draws; sets of eight keep every one in almost all.
    @Test func randomKeysFillingAQuarterOfTheSlotsAllStayInNearlyEveryDraw() {
        var generator = SystemRandomNumberGenerator()
        let perStripe = SlotSets.slotsPerStripe(1_024, stripes: 16)
        var draws = 0
        var keptAll = 0
        while draws < 50 {
            draws += 1
            var counts = [Int: Int]()
            for _ in 0..<256 {
                let (stripe, first) = SlotSets.locate(UInt(generator.next()), stripeCount: 16, slotsPerStripe: perStripe)
                counts[stripe * perStripe + first, default: 0] += 1
            }
            if counts.values.allSatisfy({ $0 <= SlotSets.ways }) { keptAll += 1 }
        }
        #expect(keptAll >= 40, "\(keptAll) of \(draws) draws kept every key")
    }
}
