import Foundation
package import Logging

/// Starts one of a backend's own threads (a writer, a checkpointer, a client's worker) under
/// `name`, so `top -H`, `perf` and `/proc` tell it from Swift's pool workers.
///
/// The thread names itself as it starts: on Linux, a `Thread.name` set before `start()`
/// never reaches the system, and a name of more than 15 bytes is refused (the thread then
/// keeps its starter's name), so a longer `name` is cut to 15 bytes and logged at debug level.
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
        guard kept.utf8.count + String(scalar).utf8.count <= maxThreadNameBytes else {
            logger.debug("a thread name was cut to 15 bytes", metadata: ["name": "\(name)", "kept": "\(kept)"])
            break
        }
        kept.unicodeScalars.append(scalar)
    }
    Thread.current.name = kept
}
