import ArgumentParser
import SessionStore

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
            redacted id (the first 4 characters of the stored key).
            """
    )

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Option(help: "How many problem rows to list.")
    var show: Int = 5

    func validate() throws {
        _ = try validatedTarget(url)
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
        let result = await Result { try await check(backend) }
        try await backend.close()
        let report = try result.get()
        try output(report, target: target)
        if !report.ok { throw ExitCode(ExitStatus.failure) }
    }

    private func check(_ backend: any AdminBackend) async throws -> Report {
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
                    do {
                        _ = try AttributeCodec.decode(record.data)
                    } catch let error as SessionStoreError {
                        if error.code == .unsupportedFormat {
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
            && report.newerFormat == 0 && report.unkeyed == 0 && upToDate
        return report
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
        if report.unkeyed > 0 {
            Console.out("unkeyed    \(Format.count(report.unkeyed)) (id column is not text)")
        }
        for problem in report.problems {
            Console.out("  \(problem.id): \(problem.problem)")
        }
        Console.out(report.ok ? "OK" : "PROBLEMS FOUND")
    }
}
