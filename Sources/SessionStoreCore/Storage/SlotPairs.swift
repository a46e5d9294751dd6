/// Two-way placement in the fixed slot arrays of the package's small caches (the SQLite load
/// cache, the Hummingbird driver's decoded values): a key hashes to a pair of slots and may
/// sit in either, so two hot keys that share a hash pair do not evict each other on every
/// read, as they did with one slot per hash (256 sessions in 1,024 direct slots: about a fifth
/// of them shared a slot with another and missed on most reads).
///
/// It works on slot indices, not on the caches' entries: a generic function over the entry
/// type, called across modules, ran unspecialized (metadata lookups and value-witness copies
/// cost more than the lookup itself).
package enum SlotPairs {
    /// The first slot of the pair `hash` picks among `slotCount` slots (an even count).
    @inlinable package static func pair(of hash: UInt, slotCount: Int) -> Int {
        Int(hash % UInt(max(1, slotCount / 2))) * 2
    }

    /// Slots per stripe when `slots` are spread over `stripes` locks: an even count, at
    /// least one pair.
    @inlinable package static func slotsPerStripe(_ slots: Int, stripes: Int) -> Int {
        max(2, slots / max(1, stripes) / 2 * 2)
    }

    /// The stripe `hash` picks among `stripeCount`, and the first slot of its pair there.
    @inlinable package static func locate(
        _ hash: UInt, stripeCount: Int, slotsPerStripe: Int
    ) -> (stripe: Int, first: Int) {
        (Int(hash % UInt(stripeCount)), pair(of: hash / UInt(stripeCount), slotCount: slotsPerStripe))
    }

    /// The slot of the pair at `first` whose entry `matches`, if either.
    @inlinable package static func find(at first: Int, _ matches: (Int) -> Bool) -> Int? {
        if matches(first) { return first }
        if matches(first + 1) { return first + 1 }
        return nil
    }

    /// Where a key's entry goes in the pair at `first`: over the entry `matches` finds (the
    /// key's own), else in the first slot, whose entry (if any) moves to the second first
    /// (`moveFirst`), dropping the second's: a pair keeps the two keys stored last.
    @inlinable package static func destination(
        at first: Int, firstIsEmpty: Bool, _ matches: (Int) -> Bool
    ) -> (slot: Int, moveFirst: Bool) {
        if let own = find(at: first, matches) { return (own, false) }
        return (first, !firstIsEmpty)
    }
}
