import ArgumentParser
import Foundation
import Logging
import SessionStoreCore

/// `session-store`: look at a session store and act on it without writing code.
///
/// Exit codes scripts can rely on: `0` success, `1` failure (the command ran and something
/// went wrong, or `check` found a problem), `2` usage (bad flags, bad URL). A password in a
/// URL is never printed, not even in a usage error that echoes an argument.
struct SessionStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session-store",
        abstract: "Inspect, create, clean, check, upgrade, copy and rekey session stores.",
        discussion: """
            Every command takes the configuration URL an app passes to SessionStore.open, \
            for example sqlite:///var/lib/app/sessions.db or \
            mysql://user:password@db:3306/app?table=sessions, with the same options.
            Exit codes: 0 success, 1 failure, 2 usage error.
            """,
        subcommands: [
            SchemaCommand.self, StatsCommand.self, CleanupCommand.self, CopyCommand.self,
            CheckCommand.self, UpgradeCommand.self, SessionsCommand.self, RevokeCommand.self, RekeyCommand.self,
        ]
    )

    func run() async throws {
        throw ValidationError("missing command: schema, stats, cleanup, copy, check, upgrade, sessions, revoke or rekey")
    }
}

/// The entry point: parses, runs, and maps every outcome to exit code 0, 1 or 2.
@main
enum SessionStoreTool {
    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try SessionStoreCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(ExitStatus.success)
        } catch let failure as CommandFailure {
            Console.error(Redaction.redact("error: " + failure.message, arguments: arguments))
            exit(ExitStatus.failure)
        } catch let error as SessionStoreError where error.code == .invalidConfiguration {
            Console.error(Redaction.redact("error: \(error.message)", arguments: arguments))
            exit(ExitStatus.usage)
        } catch let error as StorageError {
            Console.error(Redaction.redact("error: \(error)", arguments: arguments))
            exit(ExitStatus.failure)
        } catch let error as SessionStoreError {
            Console.error(Redaction.redact("error: \(error)", arguments: arguments))
            exit(ExitStatus.failure)
        } catch {
            let code = SessionStoreCommand.exitCode(for: error)
            let message = Redaction.redact(SessionStoreCommand.fullMessage(for: error), arguments: arguments)
            if code == .success {
                if !message.isEmpty { Console.out(message) }
                exit(ExitStatus.success)
            }
            if !message.isEmpty { Console.error(message) }
            exit(code == .validationFailure ? ExitStatus.usage : ExitStatus.failure)
        }
    }
}

/// The exit codes of `session-store`.
enum ExitStatus {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 2
}

/// A failure explained in words: printed after `error: `, exit code 1.
struct CommandFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
