// One binary, one app per variant: `http-app VARIANT PORT DATABASE`, where DATABASE is a
// SQLite file's path, or for the PostgreSQL variants (`-pg`) a `postgres://` URL with
// `table=` naming the sessions table.
// Every variant serves the same routes, which double as examples of each driver:
//   POST /login  sign in (a new id where the framework allows it), answers "login:" and the
//                request's X-Slot header (the load generator's slot for the session)
//   GET  /read   reads the user (a read-only request), answers the name or "anonymous"
//   POST /write  changes one attribute, answers "write"
import Foundation
import HTTPApps
import VaporApps
import Hummingbird

// Logging as a new app has it: swift-log's default handler (standard error, info level),
// so Vapor logs each request, for every variant alike; run.py sends it to a file.

let arguments = CommandLine.arguments
guard arguments.count == 4, let port = Int(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: http-app VARIANT PORT DATABASE-PATH\nvariants: \(Variant.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
    exit(2)
}
guard let variant = Variant(rawValue: arguments[1]) else {
    FileHandle.standardError.write(Data("unknown variant \(arguments[1])\n".utf8))
    exit(2)
}
let path = arguments[3]

switch variant {
case .vaporStore, .vaporStoreTyped, .vaporFluent, .vaporFluentWAL, .vaporStorePostgres, .vaporFluentPostgres, .vaporMemory:
    let app = try await makeVaporApp(variant, port: port, path: path)
    try await app.execute()
    try await app.asyncShutdown()
case .hummingbirdStore, .hummingbirdStoreInMemory, .hummingbirdNative, .hummingbirdMemory:
    let (app, shutdown) = try await makeHummingbirdApp(variant, port: port, path: path)
    try await app.runService()
    try await shutdown()
}
