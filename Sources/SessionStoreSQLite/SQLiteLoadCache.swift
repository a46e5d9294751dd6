import CSessionStoreSQLite
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
/// The header is read through SQLite's own mapping of the WAL index (the connection's
/// `xShmMap`), never a descriptor of this cache's: closing a descriptor of the file would drop
/// every POSIX lock this process holds on it, SQLite's included, and let another process
/// truncate the file under the mappings.
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
    /// Bytes of the first WAL-index region SQLite maps (`WALINDEX_PGSZ`): the headers lie in
    /// its first 136.
    private static let regionBytes: Int32 = 32768

    /// The address of SQLite's mapping of the WAL index (shared, written by SQLite); valid
    /// while the connection it came from stays open, which outlives ``close()``.
    private let base: UInt
    private let stripes: [Stripe]
    private let slotsPerStripe: Int
    /// Lookups reading the mapping now; ``close()`` waits for them before the connections close.
    private let readers = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    /// Loads answered from the cache; for tests.
    let hits = Atomic<Int>(0)

    /// Reads the WAL index through `connection`'s mapping, or returns `nil` (no cache) when it
    /// cannot: loads then go to SQLite as before. Call it once the database is open in WAL
    /// mode and `connection` has read it, before any other thread uses `connection`; the
    /// connection must stay open until after ``close()``.
    init?(connection: SQLiteConnection, logger: Logger, slots: Int = 1024, stripes: Int = 16) {
        var filePointer: UnsafeMutablePointer<sqlite3_file>?
        let code = sqlite3_file_control(connection.database, "main", SQLITE_FCNTL_FILE_POINTER, &filePointer)
        guard code == SQLITE_OK, let file = filePointer, let methods = file.pointee.pMethods,
              methods.pointee.iVersion >= 2, let shmMap = methods.pointee.xShmMap
        else {
            logger.debug("SQLite load cache off: the database file has no WAL index methods", metadata: ["code": "\(code)"])
            return nil
        }
        var region: UnsafeMutableRawPointer?
        let mapped = shmMap(file, 0, Self.regionBytes, 0, &region)
        guard mapped == SQLITE_OK, let region else {
            logger.debug("SQLite load cache off: the WAL index is not mapped", metadata: ["code": "\(mapped)"])
            return nil
        }
        base = UInt(bitPattern: region)
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

    /// Stops answering once no lookup reads the mapping; before the backend's connections
    /// close (SQLite unmaps the WAL index with the last of them).
    func close() {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        while readers.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
    }

    private func location(of key: String) -> (Stripe, Int) {
        let hash = UInt(bitPattern: key.hashValue)
        let stripe = stripes[Int(hash % UInt(stripes.count))]
        return (stripe, Int((hash / UInt(stripes.count)) % UInt(slotsPerStripe)))
    }
}
