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

/// Rows loaded lately, answered again without SQLite while their rows have not changed.
///
/// Whether the database changed is read from the WAL index (the `-shm` file every connection
/// to the database maps, in this process or another): its header starts the file, twice (48
/// bytes each, <https://www.sqlite.org/walformat.html>), and every commit of any connection
/// rewrites it with a new frame count and counter, second copy first. A row is kept with the
/// header read before and after its load when the two are equal (no commit landed meanwhile,
/// so the load read exactly that state). A kept row is handed back
///
/// - while the header is still the one it was loaded at: no commit happened since, or
/// - while every commit since was this backend's own and none wrote its key: the writer
///   tells the cache which keys a write changes before it commits (``writeWillBegin(keys:)``),
///   and afterwards confirms that the header it reads is the trusted one with only that
///   write's commit on top (``writeDidEnd(committed:)``): SQLite's commit hook, which runs
///   under the write lock, gives the header the commit wrote over, and its WAL hook the
///   frame count the commit left; a header with that count and the same WAL salts (or the
///   first salt one up, for a commit that started the WAL over) is that commit's, since any
///   later commit adds frames or starts the WAL over again. Only then does the header
///   become the one that kept rows of the current *epoch* are valid at. Anything else
///   (another connection's or process's commit, a write of unknown rows such as a cleanup,
///   an unreadable header) starts a new epoch at the header read, which drops the older
///   rows. No statement runs for the check: the `PRAGMA data_version` it replaced took a
///   read transaction, two to four `fcntl` calls per save.
///
/// A row this backend's write wrote, as the write reports it (``rowWritten(_:for:)``: the
/// row an insert stored, or the row an update leaves, derived from the row as it stood: read
/// in the transaction, or kept here and still valid when the transaction began,
/// ``rowBeforeWrite(of:)``), is kept the same way once the write committed and that
/// confirmation held: no other connection committed meanwhile, so it is exactly the row at
/// the trusted header. A key written twice in one transaction is not kept (only the last
/// write's row would be right, and not every write reports its row).
///
/// So a mix of reads and this backend's saves keeps answering reads, the saved rows'
/// included, and any commit from elsewhere (another backend, a `sqlite3` shell, another process)
/// makes every kept row miss until it is loaded again. A load kept while one of this backend's
/// writes is under way (it may have read the row just before the write changed it), or at a
/// header no write confirmed yet, is answered at its own header only, until a write's end
/// confirms exactly that header: then it read the confirmed state and joins the epoch (a
/// load in the moment between a save's commit and its confirmation, common under a steady
/// mix, would otherwise miss again after every later save). A header whose two copies differ
/// (a commit writing it) counts as changed.
///
/// The header is read through SQLite's own mapping of the WAL index (the connection's
/// `xShmMap`), never a descriptor of this cache's: closing a descriptor of the file would drop
/// every POSIX lock this process holds on it, SQLite's included, and let another process
/// truncate the file under the mappings.
///
/// Bounded: a fixed number of slots (a key maps to a set of them, ``SlotSets``), rows of at
/// most ``largestCachedRow`` bytes of data.
final class SQLiteLoadCache: Sendable {
    /// The WAL index header, both copies: 96 bytes.
    struct Header: Equatable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

        static func == (lhs: Header, rhs: Header) -> Bool {
            lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
                && lhs.words.3 == rhs.words.3 && lhs.words.4 == rhs.words.4 && lhs.words.5 == rhs.words.5
        }

        /// The WAL's frame count (`mxFrame`, bytes 16-19, in the machine's order).
        var frames: UInt32 { UInt32(truncatingIfNeeded: words.2.littleEndian) }
        /// Both salts of the WAL file (bytes 32-39): a commit that starts the WAL over changes them.
        var salts: UInt64 { words.4 }
        /// The first salt, which each start of the WAL over increments (stored big-endian).
        var firstSalt: UInt32 { UInt32(bigEndian: UInt32(truncatingIfNeeded: words.4.littleEndian)) }

        /// Whether this header, read after a commit that left `frames` frames in the WAL, is
        /// the one that commit wrote over `before` (read when it began, under the write lock),
        /// with no commit or restart of the WAL by anything else since: a later commit adds
        /// frames or starts the WAL over, and each start increments the first salt.
        func isOnlyCommit(after before: Header, frames committed: UInt32) -> Bool {
            guard frames == committed else { return false }
            if salts == before.salts { return committed > before.frames }
            // The commit started the WAL over; a count past the old one could also be
            // another writer's after a later start, so only a smaller one is taken.
            return committed <= before.frames && firstSalt == before.firstSalt &+ 1
        }
    }

    private struct Entry {
        var key: String
        var record: SessionRecord
        /// The header the row was loaded at.
        var header: Header
        /// The epoch the row is valid in across this backend's own commits; `0` for none.
        var epoch: UInt64
    }

    /// A stripe's slots, with its copy of the header the current epoch's rows are valid at,
    /// so that a lookup reads both under one lock.
    private struct Slots {
        var entries: [Entry?]
        /// The key slot (``SQLiteSlot``) of each slot's entry, `nil` while empty; probes
        /// compare these and never copy an entry. It also places the entry: an insert of
        /// another key into an expired row of the key slot replaces that row, and removes its
        /// entry.
        var keySlots: [Int64?]
        /// `nil` while no write confirmed a header for ``epoch``.
        var trustedHeader: Header?
        var epoch: UInt64 = 1

        /// Advanced by each entry that replaces another in a full set (``SlotSets``).
        var victim = 0
        /// Slots given, since the last write ended, a row kept outside the epoch (loaded at a
        /// header no write had confirmed yet): the next write's end takes into the epoch those
        /// loaded at the header it confirms. At most ``pendingLimit``; storage kept.
        var pending: [Int]
        /// The key filter's part for this stripe's slots, and the epoch it is complete in
        /// (every row at the epoch's trusted header has its slot in it); `0` for none.
        var filter = SQLiteKeyFilter.none
        var filterEpoch: UInt64 = 0

        /// Puts `entry` (of the row in `keySlot`) in the set at `first`, over the row's own.
        mutating func store(_ entry: Entry, keySlot: Int64, inSetAt first: Int) -> Int {
            let index = SlotSets.place(
                at: first, victim: &victim, isEmpty: { keySlots[$0] == nil }, matches: { keySlots[$0] == keySlot })
            entries[index] = entry
            keySlots[index] = keySlot
            return index
        }

        /// Starts the epoch's rows at `trusted` (`nil`: none yet), taking into it the pending
        /// rows loaded at exactly that header: they read the state it stands for. The key
        /// filter complete in epoch `filterFrom` stays complete in the new one.
        mutating func trust(_ trusted: Header?, epoch: UInt64, filterFrom: UInt64? = nil) {
            if let filterFrom, filterEpoch == filterFrom { filterEpoch = epoch }
            self.epoch = epoch
            trustedHeader = trusted
            guard !pending.isEmpty else { return }
            if let trusted {
                for index in pending where entries[index]?.epoch == 0 && entries[index]?.header == trusted {
                    entries[index]?.epoch = epoch
                }
            }
            pending.removeAll(keepingCapacity: true)
        }
    }

    private final class Stripe: Sendable {
        let slots: Mutex<Slots>
        init(slots: Int, trusted: Header?) {
            var pending: [Int] = []
            pending.reserveCapacity(SQLiteLoadCache.pendingLimit)
            self.slots = Mutex(
                Slots(
                    entries: Array(repeating: nil, count: slots), keySlots: Array(repeating: nil, count: slots),
                    trustedHeader: trusted, pending: pending))
        }
    }

    /// What a lookup saw, for ``keep(_:for:after:)`` of the load that follows a miss.
    struct Ticket: Sendable {
        fileprivate let before: Header
        /// The key's slot (``SQLiteSlot``).
        fileprivate let keySlot: Int64
    }

    /// Rows with more data than this are loaded from SQLite every time.
    static let largestCachedRow = 4096
    /// Rows a stripe holds for the next write's end to take into the epoch (``Slots/pending``).
    static let pendingLimit = 16
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
    /// Loads of keys the key filter says have no row, answered without SQLite; for tests.
    let absentAnswers = Atomic<Int>(0)
    /// Set by a lookup that found the key filter not complete, or by a write once the filter
    /// holds many more slots than it was built for: a build is due (``SQLiteKeyFilterBuilder``).
    let filterWanted = Atomic<Bool>(false)
    /// Slots writes added to the filter since it was built, and the slots it was built for.
    private let filterGrowth = Atomic<Int>(0)
    private let filterCapacity = Atomic<Int>(0)
    /// Whether a key filter build collects the slots writes name (``beginFilterBuild()``);
    /// read without the lock by each write, set and cleared under it.
    private let filterCollecting = Atomic<Bool>(false)
    /// The slots writes named since the build under way began.
    private let filterLog = Mutex(FilterLog())

    private struct FilterLog {
        var building = false
        var slots: [Int64] = []
    }

    /// A build of the key filter under way (``beginFilterBuild()``): the epoch it began in.
    struct FilterBuild: Sendable {
        fileprivate let epoch: UInt64
    }

    /// Writes of this backend between ``writeWillBegin(keys:)`` and ``writeDidEnd(committed:)``.
    private let writesUnderWay = Atomic<Int>(0)
    /// Set by a write of rows the cache is not told; its end starts a new epoch.
    private let unknownRowsWritten = Atomic<Bool>(false)
    /// Set by such a write that may also have added rows; its end retires the key filter.
    private let unknownKeysAdded = Atomic<Bool>(false)
    /// The writer's: the current epoch and the header its rows are valid at (`nil`: none).
    private let writerState: Mutex<(epoch: UInt64, trusted: Header?)>
    /// The write transaction under way: the keys it was told of, their rows as kept here
    /// when it began, and the rows its writes reported. Only the writer (whoever holds the
    /// connection) touches it.
    private let transaction = Mutex(Transaction())

    private struct Transaction {
        var keys: [SessionKey] = []
        var before: [(key: SessionKey, record: SessionRecord)] = []
        var rows: [(key: SessionKey, record: SessionRecord)] = []
        /// Commits SQLite began on the writer's connection (its commit hook), and the header
        /// when the first began, under the write lock: the state the transaction wrote over.
        var commitsBegun = 0
        var headerAtCommit: Header?
        /// Commits that reached the WAL (its WAL hook), and the frame count the last left.
        var commitsLogged = 0
        var framesAfterCommit: UInt32 = 0

        /// Empties it for the next transaction, keeping the lists' storage: a save then
        /// allocates nothing here.
        mutating func clear(keys: [SessionKey] = []) {
            self.keys = keys
            before.removeAll(keepingCapacity: true)
            rows.removeAll(keepingCapacity: true)
            commitsBegun = 0
            headerAtCommit = nil
            commitsLogged = 0
            framesAfterCommit = 0
        }
    }

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
        // No row is kept yet: the state now is trusted as it is, and a first write on top of
        // it continues the epoch.
        let trusted = Self.header(at: base)
        writerState = Mutex((epoch: 1, trusted: trusted))
        let stripeCount = max(1, stripes)
        slotsPerStripe = SlotSets.slotsPerStripe(slots, stripes: stripeCount)
        self.stripes = (0..<stripeCount).map { [slotsPerStripe] _ in Stripe(slots: slotsPerStripe, trusted: trusted) }
    }

    /// The header now, `nil` when its two copies differ (a commit is writing it). Read as
    /// SQLite's readers do: the first copy, a barrier, then the second.
    private func header() -> Header? {
        Self.header(at: base)
    }

    private static func header(at base: UInt) -> Header? {
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

    /// The result of loading `key` at `now` when its row has not changed since it was kept:
    /// the row, or `.some(nil)` when the kept row has expired by `now`; `nil` to load from
    /// SQLite, with a ticket for ``keep(_:for:after:)`` when the load may be kept.
    func lookup(_ key: SessionKey, now: Int64) -> (result: SessionRecord??, ticket: Ticket?) {
        guard let current = guardedHeader() else { return (nil, nil) }
        let keySlot = SQLiteSlot.of(key)
        let (stripe, slot) = location(of: keySlot)
        let answer: Answer = stripe.slots.withLock { slots in
            let epoch = slots.trustedHeader == current ? slots.epoch : 0
            let found = SlotSets.find(at: slot) { index in
                guard slots.keySlots[index] == keySlot, slots.entries[index]?.key == key.value else { return false }
                return slots.entries[index]?.header == current || (epoch != 0 && slots.entries[index]?.epoch == epoch)
            }
            if let found, let record = slots.entries[found]?.record { return .kept(record) }
            // The database is at the epoch's trusted header: when the filter is complete in
            // the epoch, a slot it never held has no row.
            guard epoch != 0 else { return .unknown(filterStale: false) }
            guard slots.filterEpoch == epoch else { return .unknown(filterStale: true) }
            return slots.filter.mayHold(keySlot) ? .unknown(filterStale: false) : .absent
        }
        switch answer {
        case .kept(let record):
            hits.add(1, ordering: .relaxed)
            return (.some(record.expiresAt > now ? record : nil), nil)
        case .absent:
            absentAnswers.add(1, ordering: .relaxed)
            return (.some(nil), nil)
        case .unknown(let filterStale):
            if filterStale, !filterWanted.load(ordering: .relaxed) { filterWanted.store(true, ordering: .relaxed) }
            return (nil, Ticket(before: current, keySlot: keySlot))
        }
    }

    /// What a stripe knows of a key.
    private enum Answer {
        case kept(SessionRecord)
        /// No row: the key filter does not hold its slot.
        case absent
        case unknown(filterStale: Bool)
    }

    /// Keeps `record`, loaded for `key` after the lookup that gave `ticket`, when no commit
    /// landed since that lookup (the header is unchanged): the load read exactly that state.
    ///
    /// It stays valid across this backend's later writes (joins the epoch) when that state is
    /// the trusted one and no write is under way; otherwise it is answered at its header only,
    /// until the next write's end confirms that header (a load that read the state a write of
    /// this backend left before the write's end confirmed it) and takes the row into the epoch.
    /// A row read before a write under way changed it was read at the header before that
    /// write's commit, which its end never confirms.
    func keep(_ record: SessionRecord, for key: SessionKey, after ticket: Ticket) {
        guard record.data.count <= Self.largestCachedRow, let after = guardedHeader(), after == ticket.before else { return }
        let keySlot = ticket.keySlot
        let (stripe, slot) = location(of: keySlot)
        stripe.slots.withLock { slots in
            // Under the stripe's lock: a write that begins after this check removes the entry,
            // and a write's end updates this stripe before it stops counting as under way.
            let trusted = writesUnderWay.load(ordering: .sequentiallyConsistent) == 0 && slots.trustedHeader == ticket.before
            let epoch = trusted ? slots.epoch : 0
            let index = slots.store(
                Entry(key: key.value, record: record, header: ticket.before, epoch: epoch), keySlot: keySlot, inSetAt: slot)
            if !trusted, slots.pending.count < Self.pendingLimit { slots.pending.append(index) }
        }
    }

    // MARK: - This backend's writes

    /// Called by the writer before a write transaction: `keys` are the rows it may change,
    /// `nil` when unknown (a cleanup, an import, a rewrite). Their kept rows go now, before the
    /// commit, and loads under way are not kept for the epoch; their slots join the key
    /// filter before any commit can show their rows. `addsKeys: false` says a write of
    /// unknown rows adds none (it only deletes), so the filter stays complete.
    func writeWillBegin(keys: [SessionKey]?, addsKeys: Bool = true) {
        writesUnderWay.add(1, ordering: .sequentiallyConsistent)
        guard let keys else {
            transaction.withLock { $0.clear() }
            if addsKeys { unknownKeysAdded.store(true, ordering: .sequentiallyConsistent) }
            unknownRowsWritten.store(true, ordering: .sequentiallyConsistent)
            return
        }
        // After counting as under way: a build that began before sees this write and gives
        // up, one that begins after collects its slots (``beginFilterBuild()``).
        if !keys.isEmpty, filterCollecting.load(ordering: .sequentiallyConsistent) {
            filterLog.withLock { log in
                if log.building { log.slots.append(contentsOf: keys.lazy.map(SQLiteSlot.of)) }
            }
        }
        let current = guardedHeader()
        var grown = 0
        // Locks: the transaction's, then a stripe's (``writeDidEnd(committed:)`` too; no
        // other path holds both).
        transaction.withLock { transaction in
            transaction.clear(keys: keys)
            for key in keys {
                let keySlot = SQLiteSlot.of(key)
                let (stripe, slot) = location(of: keySlot)
                let valid: SessionRecord? = stripe.slots.withLock { slots in
                    if slots.filter.add(keySlot) { grown += 1 }
                    guard let index = SlotSets.find(at: slot, { slots.keySlots[$0] == keySlot }) else { return nil }
                    defer {
                        slots.entries[index] = nil
                        slots.keySlots[index] = nil
                    }
                    // Valid as a lookup would answer it: the row as stored now.
                    guard let current, slots.entries[index]?.key == key.value,
                          slots.entries[index]?.header == current
                            || (slots.trustedHeader == current && slots.entries[index]?.epoch == slots.epoch)
                    else { return nil }
                    return slots.entries[index]?.record
                }
                if let valid { transaction.before.append((key, valid)) }
            }
        }
        // A filter holding four times the slots it was built for passes a few percent of
        // absent keys: build it again, larger.
        if grown > 0, filterGrowth.add(grown, ordering: .relaxed).newValue > 4 * filterCapacity.load(ordering: .relaxed) {
            filterWanted.store(true, ordering: .relaxed)
        }
    }

    /// The row of `key` as this cache held it, valid, when the write transaction under way
    /// began; `nil` when it held none. For the writer, inside the transaction.
    func rowBeforeWrite(of key: SessionKey) -> SessionRecord? {
        // A linear search: a transaction holds one write, or a group commit's batch.
        transaction.withLock { transaction in transaction.before.first { $0.key.value == key.value }?.record }
    }

    /// Called by a write, inside its transaction, with the row it left under `key` (one of
    /// the keys ``writeWillBegin(keys:)`` was told; at most once per write and key): kept
    /// once the transaction committed.
    func rowWritten(_ record: SessionRecord, for key: SessionKey) {
        transaction.withLock { $0.rows.append((key, record)) }
    }

    /// Called from SQLite's commit hook on the writer's connection: a commit begins, under
    /// the write lock, so the header is the state the transaction writes over.
    func commitWillBegin() {
        let header = guardedHeader()
        transaction.withLock { transaction in
            if transaction.commitsBegun == 0 { transaction.headerAtCommit = header }
            transaction.commitsBegun += 1
        }
    }

    /// Called from SQLite's WAL hook on the writer's connection: a commit reached the WAL,
    /// which now holds `frames` frames.
    func commitReachedWAL(frames: Int32) {
        transaction.withLock { transaction in
            transaction.commitsLogged += 1
            transaction.framesAfterCommit = UInt32(truncatingIfNeeded: frames)
        }
    }

    /// Called by the writer after the transaction ended, with whether it committed: when the
    /// header now is the trusted one with only this transaction's commit on top, it becomes
    /// the trusted header of the same epoch (keeping the rows the transaction's writes
    /// reported); otherwise a new epoch starts at it.
    func writeDidEnd(committed: Bool) {
        defer {
            writesUnderWay.subtract(1, ordering: .sequentiallyConsistent)
        }
        let unknownRows = unknownRowsWritten.exchange(false, ordering: .sequentiallyConsistent)
        let keysAdded = unknownKeysAdded.exchange(false, ordering: .sequentiallyConsistent)
        let header = guardedHeader()
        // The state the header now stands for, if it is the transaction's start with only
        // its own commit (or nothing) on top: SQLite's hooks tell what the transaction
        // committed; anything else (another connection's commit, a second commit) leaves it
        // unknown.
        let start: Header? = transaction.withLock { transaction in
            guard let header else { return nil }
            switch (transaction.commitsBegun, transaction.commitsLogged) {
            case (0, 0):
                return header
            case (1, 0):
                return transaction.headerAtCommit == header ? header : nil
            case (1, 1):
                guard let before = transaction.headerAtCommit,
                      header.isOnlyCommit(after: before, frames: transaction.framesAfterCommit)
                else { return nil }
                return before
            default:
                return nil
            }
        }
        let (epoch, trusted, continued, filterFrom): (UInt64, Header?, Bool, UInt64?) = writerState.withLock { state in
            if !unknownRows, let start, start == state.trusted {
                state.trusted = header
                return (state.epoch, header, true, nil)
            }
            // Rows kept before are not known to be valid at this header; rows loaded at it are.
            // The key filter stays complete across this backend's deletions of unknown rows.
            let filterFrom = unknownRows && !keysAdded && start != nil && start == state.trusted ? state.epoch : nil
            state.epoch += 1
            state.trusted = header
            return (state.epoch, header, false, filterFrom)
        }
        for stripe in stripes {
            stripe.slots.withLock { slots in slots.trust(trusted, epoch: epoch, filterFrom: filterFrom) }
        }
        transaction.withLock { transaction in
            defer { transaction.clear() }
            guard committed, continued, let trusted, !transaction.rows.isEmpty else { return }
            // A key written twice in the transaction: only the database knows its last state.
            let repeated = Self.repeated(transaction.keys).union(Self.repeated(transaction.rows.lazy.map(\.key)))
            for (key, record) in transaction.rows where record.data.count <= Self.largestCachedRow && !repeated.contains(key) {
                let keySlot = SQLiteSlot.of(key)
                let (stripe, slot) = location(of: keySlot)
                let entry = Entry(key: key.value, record: record, header: trusted, epoch: epoch)
                stripe.slots.withLock { slots in _ = slots.store(entry, keySlot: keySlot, inSetAt: slot) }
            }
        }
    }

    /// The keys that appear more than once in `keys`.
    private static func repeated(_ keys: some Collection<SessionKey>) -> Set<SessionKey> {
        guard keys.count > 1 else { return [] }
        var seen = Set<SessionKey>(minimumCapacity: keys.count)
        var repeated = Set<SessionKey>()
        for key in keys where !seen.insert(key).inserted { repeated.insert(key) }
        return repeated
    }

    // MARK: - Key filter

    /// Starts a build of the key filter: from now on the slots of every write are collected
    /// until ``finishFilterBuild(_:scanned:)`` (or ``abandonFilterBuild()``). `nil` when a
    /// build is under way, one of this backend's writes is (its slots would be neither
    /// collected nor surely scanned), or the database is not at the trusted header.
    func beginFilterBuild() -> FilterBuild? {
        filterLog.withLock { log -> FilterBuild? in
            guard !log.building, !closed.load(ordering: .sequentiallyConsistent) else { return nil }
            log.building = true
            log.slots.removeAll()
            filterCollecting.store(true, ordering: .sequentiallyConsistent)
            let epoch: UInt64? =
                if writesUnderWay.load(ordering: .sequentiallyConsistent) == 0, let current = guardedHeader() {
                    writerState.withLock { state in state.trusted == current ? state.epoch : nil }
                } else {
                    nil
                }
            guard let epoch else {
                log.building = false
                filterCollecting.store(false, ordering: .sequentiallyConsistent)
                return nil
            }
            return FilterBuild(epoch: epoch)
        }
    }

    /// Installs the filter of `scanned` (every slot the table held, read in any number of
    /// transactions after ``beginFilterBuild()``) and the slots written since: complete in
    /// the build's epoch when that epoch still holds and the database is at its trusted
    /// header, so every commit since was this backend's own, of keys it named. Returns
    /// whether it did; the build ends either way.
    @discardableResult
    func finishFilterBuild(_ build: FilterBuild, scanned: [Int64]) -> Bool {
        let expected = max(1, (scanned.count + scanned.count / 2) / stripes.count)
        var parts = Array(repeating: SQLiteKeyFilter(expecting: expected), count: stripes.count)
        for slot in scanned { parts[stripeIndex(of: slot)].add(slot) }
        // Locks: the log's, the writer state's, then a stripe's. Writes that began before
        // the log was read are in it; later ones add to the installed parts.
        return filterLog.withLock { log in
            defer {
                log.building = false
                log.slots.removeAll()
                filterCollecting.store(false, ordering: .sequentiallyConsistent)
            }
            guard !closed.load(ordering: .sequentiallyConsistent) else { return false }
            for slot in log.slots { parts[stripeIndex(of: slot)].add(slot) }
            return writerState.withLock { state in
                guard state.epoch == build.epoch, let current = guardedHeader(), current == state.trusted else { return false }
                for (index, stripe) in stripes.enumerated() {
                    stripe.slots.withLock { slots in
                        slots.filter = parts[index]
                        slots.filterEpoch = build.epoch
                    }
                }
                filterCapacity.store(expected * stripes.count, ordering: .relaxed)
                filterGrowth.store(0, ordering: .relaxed)
                return true
            }
        }
    }

    /// Ends a build that failed before ``finishFilterBuild(_:scanned:)``.
    func abandonFilterBuild() {
        filterLog.withLock { log in
            log.building = false
            log.slots.removeAll()
            filterCollecting.store(false, ordering: .sequentiallyConsistent)
        }
    }

    /// Bytes the key filter holds (for tests).
    var filterBytes: Int {
        stripes.reduce(0) { total, stripe in total + stripe.slots.withLock { $0.filter.bytes } }
    }

    /// How many slots hold a row (for tests).
    var count: Int {
        stripes.reduce(0) { total, stripe in total + stripe.slots.withLock { $0.entries.count { $0 != nil } } }
    }

    /// Stops answering once no lookup reads the mapping; before the backend's connections
    /// close (SQLite unmaps the WAL index with the last of them).
    func close() {
        guard !closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        while readers.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
    }

    /// The index of the stripe of `keySlot`.
    private func stripeIndex(of keySlot: Int64) -> Int {
        SlotSets.locate(UInt(truncatingIfNeeded: keySlot), stripeCount: stripes.count, slotsPerStripe: slotsPerStripe).stripe
    }

    /// The key's stripe and the first slot of its set there (``SlotSets``).
    private func location(of keySlot: Int64) -> (Stripe, Int) {
        let (stripe, first) = SlotSets.locate(
            UInt(truncatingIfNeeded: keySlot), stripeCount: stripes.count, slotsPerStripe: slotsPerStripe)
        return (stripes[stripe], first)
    }
}
