import Logging
import SessionStore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Tells whether another backend, in this process or another, has the same database
/// open: the reader pool lets a load's read lock linger only while none has
/// (``SQLiteReaderPool``), since a lingering lock could keep another process's checkpoint
/// waiting for a gap between loads.
///
/// Each backend holds a shared open-file-description lock (Linux `F_OFD_SETLK`) on the
/// first byte of `<database>-readers`, a file of its own beside the database; asking for an
/// exclusive lock with `F_OFD_GETLK` then finds another backend's shared lock, and never its
/// own. The file is separate from SQLite's so that closing it releases none of SQLite's
/// POSIX locks (closing any descriptor of a file drops all of a process's POSIX locks on
/// it). Where the file cannot be made or the platform has no such locks, every answer is
/// "shared": loads then never linger, as before.
final class SQLiteSharingProbe: Sendable {
    /// The file's descriptor, `-1` once closed or when it could not be opened; under a lock
    /// so that a sweep never asks through a descriptor closed (and reused) meanwhile.
    private let descriptor: Mutex<Int32>

    /// Opens (creating when missing) the probe file beside `databasePath` and announces
    /// this backend.
    init(databasePath: String, logger: Logger) {
        #if os(Linux)
        let path = databasePath + "-readers"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            logger.debug("reader lock file cannot be opened; loads do not keep a read lock between them", metadata: ["path": "\(path)", "errno": "\(errno)"])
            self.descriptor = Mutex(-1)
            return
        }
        var lock = Self.firstByte(F_RDLCK)
        guard fcntl(descriptor, Self.setLock, &lock) == 0 else {
            logger.debug("reader lock file cannot be locked; loads do not keep a read lock between them", metadata: ["path": "\(path)", "errno": "\(errno)"])
            close(descriptor)
            self.descriptor = Mutex(-1)
            return
        }
        self.descriptor = Mutex(descriptor)
        #else
        self.descriptor = Mutex(-1)
        #endif
    }

    /// Whether another backend holds the file (or the probe cannot tell).
    func isShared() -> Bool {
        #if os(Linux)
        return descriptor.withLock { descriptor in
            guard descriptor >= 0 else { return true }
            var lock = Self.firstByte(F_WRLCK)
            guard fcntl(descriptor, Self.getLock, &lock) == 0 else { return true }
            return lock.l_type != F_UNLCK
        }
        #else
        return true
        #endif
    }

    deinit {
        closeFile()
    }

    /// Closes the file (releasing this backend's lock); once, when the backend's readers
    /// are all closed (or the backend's open failed). Later calls do nothing.
    func closeFile() {
        #if os(Linux)
        descriptor.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
        #endif
    }

    #if os(Linux)
    /// `F_OFD_GETLK` and `F_OFD_SETLK` (Linux 3.15), which Swift's Glibc module leaves out.
    private static let getLock: Int32 = 36
    private static let setLock: Int32 = 37

    private static func firstByte(_ type: Int32) -> flock {
        var lock = flock()
        lock.l_type = Int16(type)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 1
        lock.l_pid = 0  // required 0 for open-file-description locks
        return lock
    }
    #endif
}
