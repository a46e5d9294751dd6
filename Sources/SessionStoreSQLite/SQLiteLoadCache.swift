import Logging
import SessionStoreCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Rows loaded lately, answered again without SQLite while the database has not changed.
///
/// Whether it changed is read from the WAL index (the `-shm` file every connection to the
/// database maps, in this process or another): its header starts the file, twice (48 bytes
/// each, <https://www.sqlite.org/walformat.html>), and every commit of any connection rewrites
/// it with a new frame count and counter, second copy first. A row is kept with the header
/// read before and after its load when the two are equal (no commit landed meanwhile, so the
/// load read exactly that state), and handed back only while the header is still the same:
/// then no commit happened since, and loading again would read the same row. Any commit (a
/// save of this process, another backend's, a `sqlite3` shell's) makes every kept row miss,
/// so it answers read-only traffic, not a mix of reads and writes. A header whose two copies
/// differ (a commit writing it) counts as changed.
///
/// Bounded: a fixed number of slots (a key always maps to the same one), rows of at most
/// ``largestCachedRow`` bytes of data.
final class SQLiteLoadCache: Sendable {
    /// The WAL index header, both copies: 96 bytes.
    struct Header: Equatable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

        static func == (lhs: Header, rhs: Header) -> Bool {
            lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
                && lhs.words.3 == rhs.words.3 && lhs.words.4 == rhs.words.4 && lhs.words.5 == rhs.words.5
        }
    }

    private struct Entry {
        var key: String
        var record: SessionRecord
        var header: Header
    }

    private final class Stripe: Sendable {
        let slots: Mutex<[Entry?]>
        init(slots: Int) { self.slots = Mutex(Array(repeating: nil, count: slots)) }
    }

    /// Rows with more data than this are loaded from SQLite every time.
    static let largestCachedRow = 4096
    /// Bytes of the `-shm` file mapped: the headers lie in its first 136.
    private static let mappedBytes = 4096

    /// The mapping's address (read-only, shared); unmapped by ``close()``.
    private let base: UInt
    private let stripes: [Stripe]
    private let slotsPerStripe: Int
    /// Lookups reading the mapping now; ``close()`` waits for them before unmapping.
    private let readers = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    /// Loads answered from the cache; for tests.
    let hits = Atomic<Int>(0)
    private let logger: Logger

    /// Maps the WAL index of the database at `databasePath`, or returns `nil` (no cache) when
    /// it cannot: loads then go to SQLite as before. Call it once the database is open in WAL
    /// mode, which creates the file; while any connection of this process stays open, no other
    /// process truncates it.
    init?(databasePath: String, logger: Logger, slots: Int = 1024, stripes: Int = 16) {
        let path = databasePath + "-shm"
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            logger.debug("SQLite load cache off: the WAL index cannot be opened", metadata: ["errno": "\(errno)"])
            return nil
        }
        // The mapping outlives the descriptor.
        defer { Self.closeDescriptor(descriptor, logger: logger) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, Int(info.st_size) >= Self.mappedBytes,
              let address = mmap(nil, Self.mappedBytes, PROT_READ, MAP_SHARED, descriptor, 0), address != MAP_FAILED
        else {
            logger.debug("SQLite load cache off: the WAL index cannot be mapped", metadata: ["errno": "\(errno)"])
            return nil
        }
        self.logger = logger
        base = UInt(bitPattern: address)
        let stripeCount = max(1, stripes)
        slotsPerStripe = max(1, slots / stripeCount)
        self.stripes = (0..<stripeCount).map { _ in Stripe(slots: max(1, slots / stripeCount)) }
    }

    /// The header now, `nil` when its two copies differ (a commit is writing it). Read as
    /// SQLite's readers do: the first copy, a barrier, then the second.
    private func header() -> Header? {
        guard let pointer = UnsafeRawPointer(bitPattern: base) else { return nil }
        var first = Header(words: (0, 0, 0, 0, 0, 0))
        var second = first
        withUnsafeMutableBytes(of: &first.words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: 48)) }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        withUnsafeMutableBytes(of: &second.words) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer + 48, count: 48))
        }
        return first == second ? first : nil
    }

    /// Reads the header while the mapping is sure to stay: `nil` once closed.
    private func guardedHeader() -> Header? {
        readers.add(1, ordering: .sequentiallyConsistent)
        defer { readers.subtract(1, ordering: .sequentiallyConsistent) }
        guard !closed.load(ordering: .sequentiallyConsistent) else { return nil }
        return header()
    }

    /// The result of loading `key` at `now` when the database has not changed since it was
    /// kept: the row, or `.some(nil)` when the kept row has expired by `now`; `nil` to load
    /// from SQLite. `before` is the header read now, for ``keep(_:for:before:)``.
    func lookup(_ key: SessionKey, now: Int64) -> (result: SessionRecord??, before: Header?) {
        guard let current = guardedHeader() else { return (nil, nil) }
        let (stripe, slot) = location(of: key.value)
        let record: SessionRecord? = stripe.slots.withLock { slots in
            guard let entry = slots[slot], entry.header == current, entry.key == key.value else { return nil }
            return entry.record
        }
        guard let record else { return (nil, current) }
        hits.add(1, ordering: .relaxed)
        return (.some(record.expiresAt > now ? record : nil), current)
    }

    /// Keeps `record`, just loaded for `key` after the header read `before`, when no commit
    /// landed since that read (the header is unchanged): the load read exactly that state.
    func keep(_ record: SessionRecord, for key: SessionKey, before: Header) {
        guard record.data.count <= Self.largestCachedRow, let after = guardedHeader(), after == before else { return }
        let (stripe, slot) = location(of: key.value)
        let entry = Entry(key: key.value, record: record, header: before)
        stripe.slots.withLock { $0[slot] = entry }
    }

    /// How many slots hold a row (for tests).
    var count: Int {
        stripes.reduce(0) { total, stripe in total + stripe.slots.withLock { $0.count { $0 != nil } } }
    }

    /// Stops answering and unmaps the WAL index once no lookup reads it; before the backend's
    /// connections close (after which another process may truncate the file).
    func close() {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        while readers.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
        if let address = UnsafeMutableRawPointer(bitPattern: base), munmap(address, Self.mappedBytes) != 0 {
            logger.error("SQLite load cache could not unmap the WAL index", metadata: ["errno": "\(errno)"])
        }
    }

    private static func closeDescriptor(_ descriptor: Int32, logger: Logger) {
        #if canImport(Glibc)
        let result = Glibc.close(descriptor)
        #elseif canImport(Musl)
        let result = Musl.close(descriptor)
        #else
        let result = Darwin.close(descriptor)
        #endif
        if result != 0 { logger.error("SQLite load cache could not close the WAL index", metadata: ["errno": "\(errno)"]) }
    }

    deinit { close() }

    private func location(of key: String) -> (Stripe, Int) {
        let hash = UInt(bitPattern: key.hashValue)
        let stripe = stripes[Int(hash % UInt(stripes.count))]
        return (stripe, Int((hash / UInt(stripes.count)) % UInt(slotsPerStripe)))
    }
}
