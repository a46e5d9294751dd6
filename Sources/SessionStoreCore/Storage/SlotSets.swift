/// Set-associative placement in the fixed slot arrays of the package's small caches (the
/// SQLite load cache, the Hummingbird driver's decoded values): a key hashes to a set of
/// ``ways`` adjacent slots and may sit in any of them, so hot keys that share a hash set do
/// not evict each other on every read. With 256 sessions in 1,024 slots, one slot per hash
/// left about a fifth of them sharing a slot with another; pairs of slots still left about
/// 3% of reads missing (a pair drawn by three keys keeps two of them: `perf` counted 0.027
/// SQLite steps per read-only request); sets of eight leave none in nearly every draw. A
/// full set replaces one entry in place: moving the others along to drop the oldest cost
/// about 4,000 instructions per stored entry where most loads miss (entries hold strings
/// and arrays, each move a copy with reference counting).
///
/// It works on slot indices, not on the caches' entries: a generic function over the entry
/// type, called across modules, ran unspecialized (metadata lookups and value-witness copies
/// cost more than the lookup itself).
package enum SlotSets {
    /// Slots per set.
    package static let ways = 8

    /// The first slot of the set `hash` picks among `slotCount` slots (a multiple of ``ways``).
    @inlinable package static func set(of hash: UInt, slotCount: Int) -> Int {
        Int(hash % UInt(max(1, slotCount / ways))) * ways
    }

    /// Slots per stripe when `slots` are spread over `stripes` locks: a multiple of ``ways``,
    /// at least one set.
    @inlinable package static func slotsPerStripe(_ slots: Int, stripes: Int) -> Int {
        max(ways, slots / max(1, stripes) / ways * ways)
    }

    /// The stripe `hash` picks among `stripeCount`, and the first slot of its set there.
    @inlinable package static func locate(
        _ hash: UInt, stripeCount: Int, slotsPerStripe: Int
    ) -> (stripe: Int, first: Int) {
        (Int(hash % UInt(stripeCount)), set(of: hash / UInt(stripeCount), slotCount: slotsPerStripe))
    }

    /// The slot of the set at `first` whose entry `matches`, if any.
    @inlinable package static func find(at first: Int, _ matches: (Int) -> Bool) -> Int? {
        for slot in first..<first + ways where matches(slot) { return slot }
        return nil
    }

    /// Where a key's entry goes in the set at `first`: over the entry `matches` finds (the
    /// key's own), else in the first empty slot, else over the entry in the set's slot
    /// `victim` (taken modulo ``ways``), which then advances: a full set drops its entries in
    /// turn, with no entry moved.
    @inlinable package static func place(
        at first: Int, victim: inout Int, isEmpty: (Int) -> Bool, matches: (Int) -> Bool
    ) -> Int {
        if let own = find(at: first, matches) { return own }
        for slot in first..<first + ways where isEmpty(slot) { return slot }
        defer { victim &+= 1 }
        return first + Int(UInt(bitPattern: victim) % UInt(ways))
    }
}
