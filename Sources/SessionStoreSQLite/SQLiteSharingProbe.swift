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
///
/// The last backend to close removes the file, so a clean shutdown leaves nothing beside
/// the database but SQLite's own files: it upgrades its lock to an exclusive one, which
/// succeeds only when no other backend holds the file, and unlinks the file under that
/// lock. A backend that opened the file just before it was removed finds it unlinked once
/// locked, and opens the path again.
final class SQLiteSharingProbe: Sendable {
    /// The file's descriptor, `-1` once closed or when it could not be opened; under a lock
    /// so that a sweep never asks through a descriptor closed (and reused) meanwhile.
    private let descriptor: Mutex<Int32>
    /// `<database>-readers`.
    private let path: String
    private let logger: Logger

    /// Opens (creating when missing) the probe file beside `databasePath` and announces
    /// this backend.
    init(databasePath: String, logger: Logger) {
        path = databasePath + "-readers"
        self.logger = logger
        #if os(Linux)
        descriptor = Mutex(Self.openLocked(path, logger: logger))
        #else
        descriptor = Mutex(-1)
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

    /// Closes the file (releasing this backend's lock), and removes it when no other
    /// backend holds it; once, when the backend's readers are all closed (or the backend's
    /// open failed). Later calls do nothing.
    func closeFile() {
        #if os(Linux)
        descriptor.withLock { descriptor in
            guard descriptor >= 0 else { return }
            var lock = Self.firstByte(F_WRLCK)
            if fcntl(descriptor, Self.setLock, &lock) == 0 {
                // No other backend holds the file, and none can lock it before it is gone.
                if unlink(path) != 0 && errno != ENOENT {
                    logger.debug("reader lock file cannot be removed", metadata: ["path": "\(path)", "errno": "\(errno)"])
                }
            }  // else another backend holds it, and removes it when it closes last.
            if close(descriptor) != 0 {
                logger.debug("reader lock file cannot be closed", metadata: ["path": "\(path)", "errno": "\(errno)"])
            }
            descriptor = -1
        }
        #endif
    }

    #if os(Linux)
    /// The descriptor of `path`, opened and share-locked, or `-1`. Tries again (a few
    /// times, a millisecond apart) while a closing backend holds the file exclusively or
    /// has just removed the file this call locked.
    private static func openLocked(_ path: String, logger: Logger) -> Int32 {
        for attempt in 1...20 {
            if attempt > 1 { usleep(1000) }
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                logger.debug("reader lock file cannot be opened; loads do not keep a read lock between them", metadata: ["path": "\(path)", "errno": "\(errno)"])
                return -1
            }
            var lock = firstByte(F_RDLCK)
            if fcntl(descriptor, setLock, &lock) == 0 {
                if isLinked(descriptor, at: path) { return descriptor }
            } else if errno != EAGAIN && errno != EACCES {
                logger.debug("reader lock file cannot be locked; loads do not keep a read lock between them", metadata: ["path": "\(path)", "errno": "\(errno)"])
                close(descriptor)
                return -1
            }
            close(descriptor)
        }
        logger.debug("reader lock file kept changing; loads do not keep a read lock between them", metadata: ["path": "\(path)"])
        return -1
    }

    /// Whether `descriptor` is still the file at `path` (not removed by a closing backend).
    private static func isLinked(_ descriptor: Int32, at path: String) -> Bool {
        var opened = stat()
        var named = stat()
        guard fstat(descriptor, &opened) == 0, stat(path, &named) == 0 else { return false }
        return opened.st_nlink > 0 && opened.st_ino == named.st_ino && opened.st_dev == named.st_dev
    }

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
