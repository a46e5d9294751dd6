import ArgumentParser
import SessionStore

/// `session-store rekey URL --keys FILE`: rewrites every live row that is not under the key
/// ring's active key (or not plaintext, when the ring writes plaintext), step 4 of a key
/// rotation.
struct RekeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Re-encrypt live sessions under the active key of a key ring (or to plaintext with '*plaintext').",
        discussion: """
            Reads the table in key order, one short read per batch, and rewrites each live row \
            that is not yet in the form the ring writes: one row per write, inside the \
            backend's merge, so apps keep serving (a request that loaded a row before it was \
            rewritten merges its save as after any other write). On SQLite each rewrite is \
            paced by the WAL as cleanup is, so the WAL stays below the size at which the \
            writer would empty it with saves queued behind. Rows already under the \
            active key are skipped, so a rerun after an interruption finishes the job. Rows \
            retired by a regeneration are left alone: they expire within the grace period. \
            Rows that cannot be decrypted are counted as failed (exit code 1) and left as \
            they are. Afterwards, session-store check counts live rows per key id.
            """
    )

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Option(help: "The key file (ID:BASE64 lines, the active key marked with '*'). Default: the URL's encryption_keys.")
    var keys: String?

    @Option(help: "Rows per read.")
    var batch: Int = 500

    @Option(help: "Row rewrites in flight at once.")
    var parallel: Int = 8

    @Option(help: "Seconds to wait after each batch, to bound the load a rekey adds to a busy database (0: none).")
    var pause: Double = 0

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "Seconds between progress lines when standard error is not a terminal (0: every batch).")
    var progressEvery: Double = 1

    func validate() throws {
        let target = try validatedTarget(url)
        guard try keyRing(file: keys, target: target) != nil else {
            throw ValidationError("rekey needs a key ring: --keys FILE, or encryption_keys= in the URL")
        }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be in 1...100000") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be in 1...256") }
        guard progressEvery >= 0, progressEvery.isFinite else {
            throw ValidationError("--progress-every must be zero or more seconds")
        }
        guard (0...3600).contains(pause) else { throw ValidationError("--pause must be 0-3600 seconds") }
    }

    struct Report: Encodable {
        var activeKey: String?
        var live: Int64
        var rewritten: Int64
        var current: Int64
        var retired: Int64
        var failed: Int64
        var seconds: Double
    }

    func run() async throws {
        let target = try StoreTarget(url)
        guard let ring = try keyRing(file: keys, target: target) else {
            throw ValidationError("rekey needs a key ring: --keys FILE, or encryption_keys= in the URL")
        }
        let backend = try await target.open(mustExist: true, logger: toolLogger())
        let outcome = await Result { try await rekey(EncryptingBackend(wrapping: backend, keys: ring), admin: backend) }
        try await backend.close()
        let report = try outcome.get()
        if json {
            try Console.json(report)
        } else {
            Console.out(
                "rewrote \(Format.count(report.rewritten)) under \(report.activeKey.map { "key \($0)" } ?? "plaintext"), "
                    + "\(Format.count(report.current)) already were, \(Format.count(report.retired)) retired left to expire, "
                    + "failed \(Format.count(report.failed)) of \(Format.count(report.live)) live sessions in \(Format.seconds(report.seconds)) "
                    + "(\(target.display))")
        }
        if report.failed > 0 {
            throw CommandFailure("\(report.failed) rows could not be read or decrypted and were left as they are; run session-store check")
        }
    }

    private func rekey(_ sealing: EncryptingBackend, admin: any AdminBackend) async throws -> Report {
        let clock = SystemSessionClock()
        let live = try await admin.tableFigures(now: clock.now()).live
        let progress = Progress(label: "rekeyed", total: live, interval: .seconds(progressEvery))
        var report = Report(activeKey: sealing.keys.active?.id, live: live, rewritten: 0, current: 0, retired: 0, failed: 0, seconds: 0)
        // One paced scope for the whole run (on SQLite: the WAL's, as for cleanup).
        report = try await sealing.resealing { resealer in
            var report = report
            var cursor: SessionKey?
            while true {
                let now = clock.now()
                let rows = try await admin.storedRows(after: cursor, limit: batch, liveAt: now)
                var stale: [SessionKey] = []
                for row in rows {
                    switch row.record {
                    case .failure: report.failed += 1
                    case .success(let record) where sealing.isCurrent(record.data): report.current += 1
                    case .success(let record) where record.version == 0: report.retired += 1
                    case .success: stale.append(row.key)
                    }
                }
                let counts = try await resealer.reseal(stale, now: now, parallel: parallel)
                report.rewritten += counts.rewritten
                report.failed += counts.failed
                report.current += Int64(stale.count) - counts.rewritten - counts.failed
                progress.advance(
                    by: Int64(rows.count),
                    detail: "rewrote \(Format.count(report.rewritten)), failed \(Format.count(report.failed))")
                guard rows.count == batch, let last = rows.last else { break }
                cursor = last.key
                if pause > 0 { try await Task.sleep(for: .seconds(pause)) }
            }
            return report
        }
        progress.finish()
        report.seconds = progress.elapsed
        return report
    }
}
