import ArgumentParser
import SessionStoreCore

/// `session-store schema URL [--apply]`: the DDL the backend runs, for a DBA to review and
/// run by hand, or applied directly.
struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the exact DDL the backend creates for this URL; --apply runs it.",
        discussion: """
            Prints the statements the store itself runs on a fresh database (schema-version \
            table, lease table, session table, schema-version row), each ending \
            in ';', for the URL's table and key layout. The output can be piped to sqlite3 or \
            mysql; a table created either way opens in the store without complaint.
            With --apply the statements run in one transaction; when the table already \
            exists nothing changes and its recorded version is printed.
            """
    )

    @Argument(help: "Configuration URL, e.g. sqlite:///var/lib/app/sessions.db?table=sessions")
    var url: String

    @Flag(help: "Run the statements instead of printing them.")
    var apply = false

    func validate() throws {
        _ = try validatedTarget(url)
    }

    func run() async throws {
        let target = try StoreTarget(url)
        guard apply else {
            for statement in try target.schemaStatements() {
                Console.out(statement + ";")
            }
            return
        }
        if let existing = try await target.applySchema() {
            Console.out(
                "table \(target.table) already exists (schema version \(existing.version), key layout \(existing.layout)); nothing changed")
        } else {
            Console.out("created table \(target.table) (key layout \(target.keyLayout.rawValue)) in \(target.display)")
        }
    }
}
