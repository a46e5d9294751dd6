#if Hummingbird
import SessionStoreCore
import Synchronization

/// The values a ``SessionStorePersistDriver`` decoded last, each with the stored bytes it
/// came from, so a read of an unchanged value skips JSON decoding (the largest share of a
/// read's work after the database's own: Hummingbird's in-memory driver hands its stored
/// object back as it is).
///
/// A cached value is used only when the bytes just read from the database are exactly the
/// bytes it was decoded from and it is of the type asked for, so what a read returns is
/// what decoding those bytes returns: no entry can be stale, whatever wrote the row.
/// Bounded: a fixed number of slots (a key maps to a set of them, ``SlotSets``, and a full
/// set replaces its values in turn) holding values of at most ``largestCachedValue`` bytes.
final class DecodedValueCache: Sendable {
    /// One slot: the stored bytes and what they decoded to.
    private struct Entry {
        /// The row's key: only its own value is dropped when it is removed.
        var key: String
        var bytes: [UInt8]
        /// The type the bytes were decoded as: the same bytes may decode to another type.
        var type: ObjectIdentifier
        var value: any Sendable
        /// The row's version when this driver last read or wrote it: a write that expects it
        /// replaces the row in one conditional update while nobody else changed it.
        var version: Int64
    }

    /// Slots are spread over several locks so that event-loop threads reading different
    /// sessions rarely meet on one.
    private final class Stripe: Sendable {
        let slots: Mutex<Slots>
        init(slots: Int) { self.slots = Mutex(Slots(count: slots)) }
    }

    /// A stripe's entries, with each entry's key hash beside it: probes compare hashes and
    /// touch an entry (its key string) only when they match.
    private struct Slots {
        var entries: [Entry?]
        /// The `hashValue` of each slot's key, `nil` while empty.
        var hashes: [Int?]

        init(count: Int) {
            entries = Array(repeating: nil, count: count)
            hashes = Array(repeating: nil, count: count)
        }

        /// The slot of the set at `first` holding `key` (whose hash is `hash`), if any.
        func index(of key: String, hash: Int, inSetAt first: Int) -> Int? {
            SlotSets.find(at: first) { hashes[$0] == hash && entries[$0]?.key == key }
        }

        /// Advanced by each value that replaces another in a full set (``SlotSets``).
        var victim = 0

        mutating func store(_ entry: Entry, hash: Int, inSetAt first: Int) {
            let index = SlotSets.place(
                at: first, victim: &victim, isEmpty: { hashes[$0] == nil },
                matches: { hashes[$0] == hash && entries[$0]?.key == entry.key })
            entries[index] = entry
            hashes[index] = hash
        }

        mutating func remove(at index: Int) {
            entries[index] = nil
            hashes[index] = nil
        }
    }

    /// Stored values larger than this are decoded on every read, so the cache holds at most
    /// `slots × largestCachedValue` bytes of them.
    static let largestCachedValue = 4096

    private let stripes: [Stripe]
    private let slotsPerStripe: Int

    /// A cache of `slots` entries (at least one per stripe).
    init(slots: Int = 1024, stripes: Int = 16) {
        let stripeCount = max(1, stripes)
        self.slotsPerStripe = SlotSets.slotsPerStripe(slots, stripes: stripeCount)
        self.stripes = (0..<stripeCount).map { [slotsPerStripe] _ in Stripe(slots: slotsPerStripe) }
    }

    /// The value decoded from `bytes` for the row under `key`, when it is cached as an `Object`;
    /// the entry takes `version`, the row's version that was just read with those bytes.
    func value<Object>(for key: String, bytes: [UInt8], version: Int64, as type: Object.Type) -> Object? {
        let (stripe, slot, hash) = location(of: key)
        let cached: (any Sendable)? = stripe.slots.withLock { slots in
            guard let index = slots.index(of: key, hash: hash, inSetAt: slot),
                  slots.entries[index]?.type == ObjectIdentifier(type), slots.entries[index]?.bytes == bytes
            else { return nil }
            if slots.entries[index]?.version != version { slots.entries[index]?.version = version }
            return slots.entries[index]?.value
        }
        return cached as? Object
    }

    /// Keeps `value`, decoded from (or encoded as) `bytes` of the row under `key` at
    /// `version`, in the key's set of slots.
    func keep<Object: Sendable>(_ value: Object, for key: String, bytes: [UInt8], version: Int64) {
        guard bytes.count <= Self.largestCachedValue else {
            forget(key)  // What the slot held for the key is no longer the row.
            return
        }
        let (stripe, slot, hash) = location(of: key)
        let entry = Entry(key: key, bytes: bytes, type: ObjectIdentifier(Object.self), value: value, version: version)
        stripe.slots.withLock { slots in slots.store(entry, hash: hash, inSetAt: slot) }
    }

    /// The version of the row under `key` when this driver last read or wrote it, if its
    /// set of slots still holds it.
    func version(of key: String) -> Int64? {
        let (stripe, slot, hash) = location(of: key)
        return stripe.slots.withLock { slots in
            slots.index(of: key, hash: hash, inSetAt: slot).flatMap { slots.entries[$0]?.version }
        }
    }

    /// Whether the key's set of slots holds a value of the row under `key`: the driver read or wrote
    /// it lately (unless another key's value took the slot since).
    func holds(_ key: String) -> Bool {
        let (stripe, slot, hash) = location(of: key)
        return stripe.slots.withLock { slots in slots.index(of: key, hash: hash, inSetAt: slot) != nil }
    }

    /// Drops what the key's set of slots holds for the row under `key`.
    func forget(_ key: String) {
        let (stripe, slot, hash) = location(of: key)
        stripe.slots.withLock { slots in
            if let index = slots.index(of: key, hash: hash, inSetAt: slot) { slots.remove(at: index) }
        }
    }

    /// How many slots hold a value (for tests).
    var count: Int {
        stripes.reduce(0) { total, stripe in total + stripe.slots.withLock { $0.hashes.count { $0 != nil } } }
    }

    /// The key's stripe, the first slot of its set there, and its hash.
    private func location(of key: String) -> (Stripe, Int, Int) {
        let hash = key.hashValue
        let (stripe, first) = SlotSets.locate(UInt(bitPattern: hash), stripeCount: stripes.count, slotsPerStripe: slotsPerStripe)
        return (stripes[stripe], first, hash)
    }
}
#endif
