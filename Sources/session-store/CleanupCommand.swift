import ArgumentParser
import SessionStore

/// `session-store cleanup URL [--batch N] [--dry-run] [--json]`: the store's own cleanup,
/// under the same lease as an app's background cleanup, with progress.
struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Delete expired sessions with the store's own cleanup, under its cleanup lease.",
        discussion: """
            Runs exactly what SessionStore.cleanup() runs: DELETE ... WHERE expires_at < now \
            minus the clock-skew allowance (clock_skew in the URL, default 60s), in batches, \
            holding the table's cleanup lease, so it never runs beside an app's background \
            cleanup. When another process holds the lease nothing is deleted and the exit \
            code is 1. Progress is a bar on a terminal and plain lines otherwise.
            """
    )

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Option(help: "Rows per DELETE batch (default: the URL's cleanup_batch, else 1000).")
    var batch: Int?

    @Flag(help: "Only count what would be deleted.")
    var dryRun = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "Seconds between progress lines when standard error is not a terminal (0: every batch).")
    var progressEvery: Double = 1

    func validate() throws {
        _ = try validatedTarget(url)
        if let batch, !(1...1_000_000).contains(batch) {
            throw ValidationError("--batch must be in 1...1000000")
        }
        guard progressEvery >= 0, progressEvery.isFinite else {
            throw ValidationError("--progress-every must be zero or more seconds")
        }
    }

    struct Report: Encodable {
        var dryRun: Bool
        var expiredBefore: Int64
        var deleted: Int64
        var seconds: Double
    }

    func run() async throws {
        let target = try StoreTarget(url)
        var configuration = target.store
        if let batch { configuration.cleanupBatchSize = batch }
        let backend = try await target.open(mustExist: true, logger: toolLogger())
        let clock = SystemSessionClock()
        let skew = configuration.clockSkewAllowance.milliseconds
        let cutoff = clock.now() - skew
        let expired: Int64
        do {
            expired = try await backend.countExpired(before: cutoff)
        } catch {
            try await backend.close()
            throw error
        }
        if dryRun {
            try await backend.close()
            try print(Report(dryRun: true, expiredBefore: cutoff, deleted: expired, seconds: 0), target: target)
            return
        }
        let progress = Progress(label: "deleted", total: expired, interval: .seconds(progressEvery))
        let observed = ObservedBackend(backend) { deleted in progress.advance(by: Int64(deleted)) }
        let store = try SessionStore(backend: observed, configuration: configuration, clock: clock, logger: toolLogger())
        let deleted: Int
        do {
            deleted = try await store.cleanup()
        } catch {
            progress.finish()
            try await store.shutdown()
            throw error
        }
        progress.finish()
        if observed.leaseGranted == false {
            let figures = try await backend.tableFigures(now: clock.now())
            try await store.shutdown()
            let holder = figures.leaseHolder.map { "\($0) until \(Format.time(figures.leaseExpiresAt ?? 0))" } ?? "another process"
            throw CommandFailure(
                "cleanup did not run: the cleanup lease of table \(target.table) is held by \(holder); nothing was deleted")
        }
        try await store.shutdown()
        try print(Report(dryRun: false, expiredBefore: cutoff, deleted: Int64(deleted), seconds: progress.elapsed), target: target)
    }

    private func print(_ report: Report, target: StoreTarget) throws {
        if json {
            try Console.json(report)
        } else if report.dryRun {
            Console.out(
                "would delete \(Format.count(report.deleted)) sessions expired before \(Format.time(report.expiredBefore)) from \(target.display)")
        } else {
            Console.out(
                "deleted \(Format.count(report.deleted)) expired sessions in \(Format.seconds(report.seconds)) "
                    + "(\(Format.rate(report.deleted, report.seconds))) from \(target.display)")
        }
    }
}
