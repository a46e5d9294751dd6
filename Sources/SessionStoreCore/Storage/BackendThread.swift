import Foundation
package import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Starts one of a backend's own threads (a writer, a checkpointer, a client's worker) under
/// `name`, so `top -H`, `perf` and `/proc` tell it from Swift's pool workers.
///
/// The thread names itself as it starts. On Linux it writes the name to
/// `/proc/thread-self/comm`, because Foundation's `Thread.name` does not reliably reach the
/// system there: a name set before `start()` never did, and one the new thread set on itself
/// was lost in a loaded test run. A name of more than 15 bytes would be refused, so a longer
/// `name` is cut to 15 bytes and logged at debug level. A name the system refuses is logged
/// at debug level too; the thread runs on either way.
/// - Parameter stackSize: The thread's stack in bytes; `nil` keeps the platform's default.
package func startBackendThread(
    named name: String, stackSize: Int? = nil, logger: Logger, _ body: @escaping @Sendable () -> Void
) {
    let thread = Thread {
        nameCurrentThread(name, logger: logger)
        body()
    }
    if let stackSize { thread.stackSize = stackSize }
    thread.start()
}

/// The longest thread name Linux keeps, in bytes.
private let maxThreadNameBytes = 15

private func nameCurrentThread(_ name: String, logger: Logger) {
    var kept = ""
    for scalar in name.unicodeScalars {
        guard kept.utf8.count + UTF8.width(scalar) <= maxThreadNameBytes else {
            logger.debug("a thread name was cut to 15 bytes", metadata: ["name": "\(name)", "kept": "\(kept)"])
            break
        }
        kept.unicodeScalars.append(scalar)
    }
    #if os(Linux)
    if let failure = writeOwnThreadName(kept) {
        logger.debug("the system refused a thread's name", metadata: ["name": "\(kept)", "error": "\(failure)"])
    }
    #else
    Thread.current.name = kept
    #endif
}

#if os(Linux)
/// Names the calling thread through `/proc/thread-self/comm` (what `prctl(PR_SET_NAME)` does,
/// which Swift cannot call); `nil` on success, else what failed and its `errno`.
private func writeOwnThreadName(_ name: String) -> String? {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return "open: errno \(errno)" }
    let bytes = Array(name.utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    let writeError = errno
    let closed = close(descriptor)
    let closeError = errno
    guard written == bytes.count else { return written < 0 ? "write: errno \(writeError)" : "write: \(written) of \(bytes.count) bytes" }
    guard closed == 0 else { return "close: errno \(closeError)" }
    return nil
}
#endif
