/// Two-way placement in the fixed slot arrays of the package's small caches (the SQLite load
/// cache, the Hummingbird driver's decoded values): a key hashes to a pair of slots and may
/// sit in either, so two hot keys that share a hash pair do not evict each other on every
/// read, as they did with one slot per hash (256 sessions in 1,024 direct slots: about a fifth
/// of them shared a slot with another and missed on most reads).
package enum SlotPairs {
    /// The first slot of the pair `hash` picks among `slotCount` slots (an even count).
    package static func pair(of hash: UInt, slotCount: Int) -> Int {
        Int(hash % UInt(max(1, slotCount / 2))) * 2
    }

    /// The index of the entry of the pair at `first` that `matches`, if either does.
    package static func find<Entry>(in slots: [Entry?], at first: Int, _ matches: (Entry) -> Bool) -> Int? {
        for index in first...(first + 1) {
            if let entry = slots[index], matches(entry) { return index }
        }
        return nil
    }

    /// Stores `entry` in the pair at `first`: over the entry `matches` finds (the same key's),
    /// else in the first slot, whose entry moves to the second (dropping the second's): a pair
    /// keeps the two keys stored last.
    package static func place<Entry>(_ entry: Entry, in slots: inout [Entry?], at first: Int, _ matches: (Entry) -> Bool) {
        if let index = find(in: slots, at: first, matches) {
            slots[index] = entry
            return
        }
        if slots[first] != nil { slots[first + 1] = slots[first] }
        slots[first] = entry
    }

    /// Empties the slot of the pair at `first` whose entry `matches`, if any.
    package static func remove<Entry>(from slots: inout [Entry?], at first: Int, _ matches: (Entry) -> Bool) {
        if let index = find(in: slots, at: first, matches) { slots[index] = nil }
    }
}
