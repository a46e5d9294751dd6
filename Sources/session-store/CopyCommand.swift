import ArgumentParser
import SessionStore

/// `session-store copy --from URL --to URL`: moves live sessions between stores (a SQLite
/// file to MySQL, one table to another) with their keys, versions and times intact.
struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy live sessions between two stores, keeping id hashes, versions, created and expiry times.",
        discussion: """
            Reads the source in key order, one short read per batch, so the source can stay \
            in use. A row the target already has at the same or a newer version is skipped, \
            so a rerun after an interruption finishes the job, and a session changed during \
            a copy is brought up to date by the next run. Both URLs must use the same \
            id_hash and key layout (key=). The target table is created when missing. \
            Rows whose columns cannot be read are counted as failed (exit code 1); run \
            check on the source for details. Encrypted rows are copied as they are (the \
            target needs the same keys); with --keys FILE each row is decrypted and written \
            under that ring's active key instead (or as plaintext with '*plaintext'), and a \
            row that cannot be decrypted counts as failed.
            """
    )

    @Option(help: "Configuration URL of the store to copy from.")
    var from: String

    @Option(help: "Configuration URL of the store to copy to.")
    var to: String

    @Option(help: "Rows per read and per write transaction.")
    var batch: Int = 500

    @Option(help: "Re-encrypt copied rows with this key file (ID:BASE64 lines, the active key marked with '*').")
    var keys: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "Seconds between progress lines when standard error is not a terminal (0: every batch).")
    var progressEvery: Double = 1

    @Option(help: "Seconds to wait between batches, to bound the load on busy databases (default 0).")
    var pause: Double = 0

    func validate() throws {
        let source = try validatedTarget(from, role: "--from URL")
        let target = try validatedTarget(to, role: "--to URL")
        _ = try keyRing(file: keys, target: target)
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be in 1...100000") }
        guard (0...3600).contains(pause) else { throw ValidationError("--pause must be 0-3600 seconds") }
        guard progressEvery >= 0, progressEvery.isFinite else {
            throw ValidationError("--progress-every must be zero or more seconds")
        }
        guard source.store.idHashing == target.store.idHashing else {
            throw ValidationError(
                "id hashing differs: the source stores ids as \(source.store.idHashing.rawValue), the target as "
                    + "\(target.store.idHashing.rawValue); copied sessions would never be found. "
                    + "Give both URLs the same id_hash option.")
        }
        guard source.keyLayout == target.keyLayout else {
            throw ValidationError(
                "key layouts differ: the source is keyed by \(source.keyLayout.rawValue), the target by "
                    + "\(target.keyLayout.rawValue). Give both URLs the same key option (key=\(source.keyLayout.rawValue)).")
        }
    }

    struct Report: Encodable {
        var live: Int64
        var copied: Int64
        var skipped: Int64
        var failed: Int64
        var seconds: Double
    }

    func run() async throws {
        let sourceTarget = try StoreTarget(from)
        let targetTarget = try StoreTarget(to)
        let logger = toolLogger()
        let source = try await sourceTarget.open(mustExist: true, logger: logger)
        let destination: any AdminBackend
        do {
            destination = try await targetTarget.open(mustExist: false, logger: logger)
        } catch {
            try await source.close()
            throw error
        }
        let resealing = try keys.flatMap { try keyRing(file: $0, target: targetTarget) }.map {
            EncryptingBackend(wrapping: destination, keys: $0)
        }
        let outcome = await Result { try await copy(from: source, to: destination, resealing: resealing) }
        let closing = await Result {
            try await source.close()
            try await destination.close()
        }
        let report = try outcome.get()
        try closing.get()
        if json {
            try Console.json(report)
        } else {
            Console.out(
                "copied \(Format.count(report.copied)), skipped \(Format.count(report.skipped)) (already there at the same or a newer version), "
                    + "failed \(Format.count(report.failed)) of \(Format.count(report.live)) live sessions in \(Format.seconds(report.seconds)) "
                    + "from \(sourceTarget.display) to \(targetTarget.display)")
        }
        if report.failed > 0 {
            throw CommandFailure(
                "\(report.failed) rows could not be read (or decrypted) and were not copied; run session-store check on the source")
        }
    }

    /// Whether a copied row overwrites the row the target already has: when that one has
    /// expired, or is older (a lower version, or live while the copy is retired). A row
    /// retired in the target (version 0) is never overwritten: retiring is the newest thing
    /// that happens to a row. So a rerun skips what it already copied and updates what changed.
    static func replaces(_ stored: SessionRecord, with copy: SessionRecord, now: Int64) -> Bool {
        if stored.expiresAt <= now { return true }
        if stored.version == 0 { return false }
        return copy.version == 0 || copy.version > stored.version
    }

    /// - Parameter resealing: When given, rows are opened with its ring and sealed under its
    ///   active key (for their own storage key, which the copy keeps).
    private func copy(
        from source: any AdminBackend, to destination: any AdminBackend, resealing: EncryptingBackend?
    ) async throws -> Report {
        let clock = SystemSessionClock()
        if let recorded = try await source.recordedSchema(), let written = try await destination.recordedSchema(),
           recorded.layout != written.layout {
            throw CommandFailure(
                "key layouts differ: the source table is keyed by \(recorded.layout), the target table by \(written.layout)")
        }
        let live = try await source.tableFigures(now: clock.now()).live
        let progress = Progress(label: "read", total: live, interval: .seconds(progressEvery))
        var report = Report(live: live, copied: 0, skipped: 0, failed: 0, seconds: 0)
        var cursor: SessionKey?
        while true {
            let now = clock.now()
            let rows = try await source.storedRows(after: cursor, limit: batch, liveAt: now)
            var readable: [(key: SessionKey, record: SessionRecord)] = []
            readable.reserveCapacity(rows.count)
            for row in rows {
                switch row.record {
                case .success(var record):
                    if let resealing {
                        do {
                            record.data = try resealing.seal(resealing.open(record.data, for: row.key), for: row.key)
                        } catch let error as SessionStoreError where error.code == .undecryptable {
                            report.failed += 1
                            continue
                        }
                    }
                    readable.append((row.key, record))
                case .failure: report.failed += 1
                }
            }
            let written = readable.isEmpty ? 0 : try await destination.importRows(readable) { stored, copy in
                Self.replaces(stored, with: copy, now: now)
            }
            report.copied += Int64(written)
            report.skipped += Int64(readable.count - written)
            progress.advance(
                by: Int64(rows.count),
                detail: "copied \(Format.count(report.copied)), skipped \(Format.count(report.skipped)), failed \(Format.count(report.failed))")
            guard rows.count == batch, let last = rows.last else { break }
            cursor = last.key
            if pause > 0 { try await Task.sleep(for: .seconds(pause)) }
        }
        progress.finish()
        report.seconds = progress.elapsed
        return report
    }
}

extension Result where Failure == any Error {
    /// The outcome of an async throwing body.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
