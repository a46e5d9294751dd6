import Foundation
import Testing

@Suite("session-store usage and exit codes")
struct UsageCLITests {
    @Test(arguments: ["schema", "stats", "cleanup", "copy", "check", "upgrade"])
    func everyCommandHasHelpThatExitsZero(command: String) async throws {
        try await withScratchDirectory { directory async throws in
            let run = try await CLI.run([command, "--help"], in: directory)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout.contains("USAGE: session-store \(command)"), "\(run)")
        }
    }

    @Test func topLevelHelpListsEveryCommand() async throws {
        try await withScratchDirectory { directory async throws in
            let run = try await CLI.run(["--help"], in: directory)
            #expect(run.status == 0, "\(run)")
            for command in ["schema", "stats", "cleanup", "copy", "check", "upgrade"] {
                #expect(run.stdout.contains("  \(command) "), "\(command) missing")
            }
        }
    }

    @Test func noCommandIsAUsageError() async throws {
        try await withScratchDirectory { directory async throws in
            #expect(try await CLI.run([], in: directory).status == 2)
        }
    }

    @Test(arguments: [
        ["stats", "no-scheme-here"],
        ["stats", "redis://u@h/db"],
        ["stats", "postgres://h/db"],
        ["stats", "sqlite:///tmp/x.db?frobnicate=1"],
        ["stats", "sqlite:///tmp/x.db?key=sideways"],
        ["stats", "mysql://h/db"],
        ["copy", "--from", "sqlite:///tmp/a.db", "--to", "sqlite:///tmp/b.db?synchronous=maybe"],
    ])
    func badURLsAreUsageErrors(arguments: [String]) async throws {
        try await withScratchDirectory { directory async throws in
            let run = try await CLI.run(arguments, in: directory)
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("invalid"), "\(run)")
            #expect(!FileManager.default.fileExists(atPath: "/tmp/x.db"))
        }
    }

    @Test(arguments: [
        ["stats", "--frobnicate", "sqlite:///tmp/x.db"],
        ["cleanup", "--batch", "lots", "sqlite:///tmp/x.db"],
        ["cleanup", "--batch", "0", "sqlite:///tmp/x.db"],
        ["copy", "--from", "sqlite:///tmp/x.db"],
        ["stats"],
        ["stats", "sqlite:///tmp/x.db", "sqlite:///tmp/y.db"],
        ["frobnicate", "sqlite:///tmp/x.db"],
    ])
    func badFlagsAreUsageErrors(arguments: [String]) async throws {
        try await withScratchDirectory { directory async throws in
            let run = try await CLI.run(arguments, in: directory)
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("Usage") || run.stderr.contains("USAGE"), "\(run)")
        }
    }

    @Test(arguments: [
        ["stats", "mysql://admin:Sup3rSecretPw@db.example/app?frobnicate=1"],
        ["copy", "--from", "sqlite:///tmp/x.db", "--to", "sqlite:///tmp/y.db", "mysql://admin:Sup3rSecretPw@db.example/app"],
        ["copy", "--from=mysql://admin:Sup3rSecretPw@db.example/app", "--to", "sqlite:///tmp/y.db?id_hash=none"],
        ["stats", "--bogus", "mysql://admin:Sup3rSecretPw@db.example/app"],
    ])
    func thePasswordIsNeverPrintedInUsageErrors(arguments: [String]) async throws {
        try await withScratchDirectory { directory async throws in
            let run = try await CLI.run(arguments, in: directory)
            #expect(run.status == 2, "\(run)")
            #expect(!run.stdout.contains("Sup3rSecretPw"), "\(run)")
            #expect(!run.stderr.contains("Sup3rSecretPw"), "\(run)")
        }
    }
}
