// Drives one SQLite or in-memory variant of `http-app` in process, without sockets, for
// instruction counts under callgrind (`callgrind.py`):
// `http-callgrind VARIANT MIX REQUESTS DATABASE-PATH`.
//
// The app is the one `http-app` serves (same routes, middleware, logging), given its requests
// straight to its responder: HummingbirdTesting's `.router` client for Hummingbird, Vapor's
// `app.responder` (the middleware chain and router a served request goes through) for Vapor. It
// signs in 256 sessions (as `run.py`), then sends REQUESTS requests of MIX (as `sessions.lua`: read,
// mix = 90% read / 8% write / 2% login, bots, unknown, write), one at a time, from a fixed
// pseudo-random sequence, so two runs differ only in REQUESTS: the difference of their
// instruction counts over the difference of REQUESTS is the cost of one request.
import Foundation
import HTTPApps
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Vapor
import VaporApps

let arguments = CommandLine.arguments
guard arguments.count == 5, let variant = Variant(rawValue: arguments[1]), let count = Int(arguments[3]), count >= 0,
      ["read", "mix", "bots", "unknown", "write"].contains(arguments[2])
else {
    FileHandle.standardError.write(Data("usage: http-callgrind VARIANT read|mix|bots|unknown|write REQUESTS DATABASE-PATH\n".utf8))
    exit(2)
}
let path = arguments[4]

/// One request as the load generator sends it.
struct Call {
    var method: String
    var path: String
    var cookie: String?
    var slot: Int?
}

/// What came back: the status and the `name=value` of a session cookie the response set.
struct Answer {
    var status: Int
    var body: String
    var setCookie: String?
}

/// SplitMix64: the same sequence on every run.
struct Draws {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}

struct CallgrindError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One run: the traffic, its length and the app's cookie name.
struct Run: Sendable {
    var mix: String
    var count: Int
    var cookieName: String
    let warmSessions = 256
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    /// Signs in the warm sessions, then sends `count` requests of `mix`; returns the non-2xx count.
    func drive(_ send: (Call) async throws -> Answer) async throws -> Int {
        var cookies: [String] = []
        for slot in 0..<warmSessions {
            let answer = try await send(Call(method: "POST", path: "/login", slot: slot))
            guard answer.status == 200, let cookie = answer.setCookie else {
                throw CallgrindError("login answered \(answer.status) without a session cookie")
            }
            cookies.append(cookie)
        }
        var random = Draws()
        var failures = 0
        for _ in 0..<count {
            var call = Call(method: "GET", path: "/read")
            switch mix {
            case "bots":
                break
            case "unknown":
                call.cookie = cookieName + "=" + String((0..<22).map { _ in Self.alphabet[random.next(64)] })
            default:
                let slot = random.next(warmSessions)
                call.cookie = cookies[slot]
                if mix == "write" {
                    call = Call(method: "POST", path: "/write", cookie: cookies[slot])
                } else if mix == "mix" {
                    let roll = random.next(100)
                    if roll >= 98 {
                        call = Call(method: "POST", path: "/login", cookie: cookies[slot], slot: slot)
                    } else if roll >= 90 {
                        call = Call(method: "POST", path: "/write", cookie: cookies[slot])
                    }
                }
            }
            let answer = try await send(call)
            if !(200..<300).contains(answer.status) { failures += 1 }
            if let slot = call.slot, let cookie = answer.setCookie { cookies[slot] = cookie }
        }
        return failures
    }

    /// The `name=value` part of the first header value that sets the session cookie.
    func sessionCookie(_ values: [String]) -> String? {
        values.first { $0.hasPrefix(cookieName + "=") }.map { String($0.prefix { $0 != ";" }) }
    }
}

let vaporVariants: [Variant] = [.vaporStore, .vaporStoreTyped, .vaporFluent, .vaporFluentWAL, .vaporMemory]
guard vaporVariants.contains(variant) || [.hummingbirdNative, .hummingbirdStore, .hummingbirdStoreInMemory, .hummingbirdMemory].contains(variant) else {
    FileHandle.standardError.write(Data("http-callgrind drives the SQLite and in-memory variants only\n".utf8))
    exit(2)
}
let cookieName = vaporVariants.contains(variant) ? "vapor-session" : variant == .hummingbirdNative ? "session" : "SESSION_ID"
let run = Run(mix: arguments[2], count: count, cookieName: cookieName)

/// Runs the app through `run`; returns the non-2xx count.
@Sendable func measure() async throws -> Int {
    if vaporVariants.contains(variant) { return try await measureVapor() }
    let (app, shutdown) = try await makeHummingbirdApp(variant, port: 0, path: path)
    let failures = try await app.test(.router) { client in
        try await run.drive { call in
            var headers = HTTPFields()
            if let cookie = call.cookie { headers[.cookie] = cookie }
            if let slot = call.slot { headers[slotHeader] = String(slot) }
            let response = try await client.executeRequest(
                uri: call.path, method: call.method == "GET" ? .get : .post, headers: headers, body: nil)
            return Answer(
                status: response.status.code, body: String(buffer: response.body),
                setCookie: run.sessionCookie(response.headers[values: .setCookie]))
        }
    }
    try await shutdown()
    return failures
}

/// Runs the Vapor app through `run`, each request handed to the app's responder on one of
/// its event loops, as the HTTP server hands it; returns the non-2xx count.
@Sendable func measureVapor() async throws -> Int {
    let app = try await makeVaporApp(variant, port: 0, path: path)
    let failures: Int
    do {
        try await app.asyncBoot()
        let responder = app.responder.current
        failures = try await run.drive { call in
            var headers = Vapor.HTTPHeaders()
            if let cookie = call.cookie { headers.add(name: .cookie, value: cookie) }
            if let slot = call.slot { headers.add(name: "X-Slot", value: String(slot)) }
            let request = Vapor.Request(
                application: app, method: call.method == "GET" ? .GET : .POST, url: Vapor.URI(path: call.path),
                headers: headers, on: app.eventLoopGroup.any())
            let response = try await responder.respond(to: request).get()
            return Answer(
                status: Int(response.status.code), body: response.body.string ?? "",
                setCookie: run.sessionCookie(response.headers[.setCookie]))
        }
    } catch {
        try await app.asyncShutdown()
        throw error
    }
    try await app.asyncShutdown()
    return failures
}

// Not an async main: that parks the main thread in `dispatch_main`, whose `sigsuspend`
// valgrind 3.19 dies on (an internal SIGSEGV reading the signal mask; the same stops the
// `http-app` server). The main thread waits on a semaphore instead.
let finished = DispatchSemaphore(value: 0)
let outcome = Mutex<Result<Int, any Error>>(.success(0))
Task.detached {
    let result: Result<Int, any Error>
    do { result = .success(try await measure()) } catch { result = .failure(error) }
    outcome.withLock { $0 = result }
    finished.signal()
}
finished.wait()
switch outcome.withLock({ $0 }) {
case .success(let failures):
    print("\(variant.rawValue) \(run.mix): \(count) requests, \(failures) not 2xx")
    exit(failures > 0 ? 1 : 0)
case .failure(let error):
    FileHandle.standardError.write(Data("http-callgrind: \(error)\n".utf8))
    exit(1)
}
