import ArgumentParser
import SessionStoreCore

/// `session-store upgrade URL [--dry-run]`: brings a table's schema to this release's version.
struct UpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Apply pending schema migrations (idempotent); --dry-run prints the statements.",
        discussion: """
            Reads the table's recorded schema version and runs the migrations from it to \
            this release's version in one transaction, version bumps included. Running it \
            again does nothing. A table newer than this release is an error.
            """
    )

    @Argument(help: "Configuration URL of the store.")
    var url: String

    @Flag(help: "Print the statements instead of running them.")
    var dryRun = false

    func validate() throws {
        _ = try validatedTarget(url)
    }

    func run() async throws {
        let target = try StoreTarget(url)
        let backend = try await target.open(mustExist: true, changingNothing: dryRun, logger: toolLogger())
        let result = await Result { () async throws -> String? in
            let plan = try await backend.pendingMigrations()
            if plan.statements.isEmpty {
                return "table \(target.table) is at schema version \(plan.from), the current one; nothing to do"
            }
            if dryRun {
                for statement in plan.statements { Console.out(statement + ";") }
                return nil
            }
            let done = try await backend.upgradeSchema()
            return done.from == done.to
                ? "table \(target.table) is at schema version \(done.to), the current one; nothing to do"
                : "upgraded table \(target.table) from schema version \(done.from) to \(done.to)"
        }
        try await backend.close()
        if let line = try result.get() {
            if dryRun { Console.error(line) } else { Console.out(line) }
        }
    }
}
