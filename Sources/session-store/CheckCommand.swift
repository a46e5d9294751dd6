import ArgumentParser
import SessionStoreCore

/// `session-store check URL [--json]`: is the store sound? Engine check, schema, and every
/// row decoded with the store's own codec.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the database, the schema and every row; exit code 1 when anything is wrong.",
        discussion: """
            Runs SQLite's PRAGMA integrity_check (MySQL: CHECK TABLE), reads the recorded \
            schema version and key layout, then decodes every row, expired ones included, \
            and counts rows that are corrupt (unreadable columns or data) or written in a \
            newer format than this release reads. The first few problem rows are listed by \
            redacted id (the first 4 characters of the stored key). Live rows are counted \
            per encryption key id (and plaintext), so an operator sees when an old key can \
            go; with a key ring (--keys, or encryption_keys= in the URL) encrypted rows are \
            decrypted and checked too, and a row that cannot be decrypted is a problem.
            """
    )

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "How many problem rows to list.")
    var show: Int = 5

    @Option(help: "A key file to decrypt rows with. Default: the URL's encryption_keys, if any.")
    var keys: String?

    func validate() throws {
        _ = try keyRing(file: keys, target: validatedTarget(url))
        guard show >= 0 else { throw ValidationError("--show must not be negative") }
    }

    struct Problem: Encodable {
        var id: String
        var problem: String
    }

    struct Report: Encodable {
        var ok: Bool
        var integrity: [String]
        var schemaVersion: Int64?
        var keyLayout: String?
        var currentSchemaVersion: Int64?
        var rows: Int64
        var corrupt: Int64
        var newerFormat: Int64
        var unkeyed: Int64
        /// Rows that cannot be decrypted with the key ring given (or whose header is damaged).
        var undecryptable: Int64 = 0
        /// Encrypted rows not checked further because no key ring was given.
        var encryptedUnchecked: Int64 = 0
        /// Live rows per encryption key id; `plaintext` for rows without encryption.
        var liveByKey: [String: Int64] = [:]
        var problems: [Problem]
    }

    func run() async throws {
        let target = try StoreTarget(url)
        let backend: any AdminBackend
        do {
            backend = try await target.open(mustExist: true, logger: toolLogger())
        } catch let error as StorageError where error.kind == .corrupt {
            let report = Report(
                ok: false, integrity: ["cannot open: \(error.message)"], rows: 0, corrupt: 0, newerFormat: 0,
                unkeyed: 0, problems: [])
            try output(report, target: target)
            throw ExitCode(ExitStatus.failure)
        }
        let ring = try keyRing(file: keys, target: target)
        let result = await Result { try await check(backend, keys: ring) }
        try await backend.close()
        let report = try result.get()
        try output(report, target: target)
        if !report.ok { throw ExitCode(ExitStatus.failure) }
    }

    private func check(_ backend: any AdminBackend, keys ring: EncryptionKeyRing?) async throws -> Report {
        let opening = ring.map { EncryptingBackend(wrapping: backend, keys: $0) }
        let now = SystemSessionClock().now()
        var report = Report(
            ok: true, integrity: try await backend.integrityCheck(), rows: 0, corrupt: 0, newerFormat: 0,
            unkeyed: 0, problems: [])
        if let schema = try await backend.recordedSchema() {
            report.schemaVersion = schema.version
            report.keyLayout = schema.layout
        }
        var upToDate = false
        if report.schemaVersion != nil {
            let pending = try await backend.pendingMigrations()
            report.currentSchemaVersion = pending.to
            upToDate = pending.statements.isEmpty
        }
        var cursor: SessionKey?
        while true {
            let rows = try await backend.storedRows(after: cursor, limit: 1000, liveAt: nil)
            for row in rows {
                report.rows += 1
                switch row.record {
                case .failure(let error):
                    report.corrupt += 1
                    note(row.key, error.message, in: &report)
                case .success(let record):
                    let kind = EncryptedRow.kind(of: record.data)
                    if record.expiresAt > now {
                        report.liveByKey[Self.label(kind), default: 0] += 1
                    }
                    do {
                        if let opening {
                            _ = try AttributeCodec.decode(opening.open(record.data, for: row.key))
                        } else if kind == .plaintext {
                            _ = try AttributeCodec.decode(record.data)
                        } else {
                            report.encryptedUnchecked += 1
                        }
                    } catch let error as SessionStoreError {
                        if error.code == .undecryptable {
                            report.undecryptable += 1
                        } else if error.code == .unsupportedFormat {
                            report.newerFormat += 1
                        } else {
                            report.corrupt += 1
                        }
                        note(row.key, error.message, in: &report)
                    }
                }
            }
            guard rows.count == 1000, let last = rows.last else { break }
            cursor = last.key
        }
        report.unkeyed = try await backend.unkeyedRowCount()
        report.ok = report.integrity == ["ok"] && report.schemaVersion != nil && report.corrupt == 0
            && report.undecryptable == 0
            && report.newerFormat == 0 && report.unkeyed == 0 && upToDate
        return report
    }

    /// How `liveByKey` names a row's encryption: its key id, `plaintext`, or `malformed`
    /// (an encryption header that cannot be read).
    static func label(_ kind: EncryptedRow.Kind) -> String {
        switch kind {
        case .plaintext: "plaintext"
        case .encrypted(let keyID): keyID
        case .malformed: "malformed"
        }
    }

    private func note(_ key: SessionKey, _ problem: String, in report: inout Report) {
        guard report.problems.count < show else { return }
        report.problems.append(Problem(id: String(key.value.prefix(4)) + "…", problem: problem))
    }

    private func output(_ report: Report, target: StoreTarget) throws {
        if json {
            try Console.json(report)
            return
        }
        Console.out("store      \(target.display)")
        Console.out("integrity  \(report.integrity.joined(separator: "; "))")
        if let version = report.schemaVersion {
            let current = report.currentSchemaVersion.map { $0 == version ? " (current)" : " (this release: \($0); run upgrade)" } ?? ""
            Console.out("schema     version \(version)\(current), key layout \(report.keyLayout ?? "?")")
        } else {
            Console.out("schema     no schema row for table \(target.table)")
        }
        Console.out("rows       \(Format.count(report.rows)) read")
        Console.out("corrupt    \(Format.count(report.corrupt))")
        Console.out("newer      \(Format.count(report.newerFormat)) (written in a format newer than this release reads)")
        if report.undecryptable > 0 {
            Console.out("undecrypt. \(Format.count(report.undecryptable)) (encrypted with a key not in the ring, or damaged)")
        }
        if report.encryptedUnchecked > 0 {
            Console.out("encrypted  \(Format.count(report.encryptedUnchecked)) not decrypted (give --keys to check them)")
        }
        for (label, count) in report.liveByKey.sorted(by: { $0.key < $1.key }) {
            Console.out("live key   \(label): \(Format.count(count))")
        }
        if report.unkeyed > 0 {
            Console.out("unkeyed    \(Format.count(report.unkeyed)) (id column is not text)")
        }
        for problem in report.problems {
            Console.out("  \(problem.id): \(problem.problem)")
        }
        Console.out(report.ok ? "OK" : "PROBLEMS FOUND")
    }
}
