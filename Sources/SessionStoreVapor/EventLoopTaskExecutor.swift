#if Vapor
import NIOCore

/// A task executor that runs a task's jobs on one NIO event loop.
///
/// Vapor's middleware waits for the driver's futures on the request's event loop. A task
/// on the global executor would start on another thread and complete its promise from
/// there (two thread hops per call); with this preference, a load that never suspends (a
/// SQLite read with a free reader) runs start to finish on the loop it was asked from.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
#endif
