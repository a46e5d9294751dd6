import Foundation
import SessionStoreCore

#if canImport(Glibc)
import Glibc
#endif

// Shared by the MySQL and PostgreSQL test targets (a symbolic link in each).

/// A TCP proxy on loopback between the backend and the test server that cuts a connection at
/// a chosen client message: right after the server's reply was produced (the write committed,
/// the reply is lost) or before the message reaches the server (nothing was done).
///
/// It parses the client's byte stream into the wire protocol's messages (see ``Wire``), so
/// it must not be used with TLS.
final class CuttingProxy: @unchecked Sendable { // mutable state guarded by `lock`
    enum Cut: Sendable {
        /// Forward the command, then drop the server's reply and close both sides.
        case replyLost
        /// Drop the command and close both sides; the server never sees it.
        case requestLost
        /// Forward the command, then drop everything the server sends on that connection while
        /// keeping both sides open: a server that stops answering mid-reply. Stays armed (every
        /// later matching command stalls its connection too) until ``disarm()``.
        case stall
    }

    /// How the client's messages are framed.
    enum Wire: Sendable {
        /// MySQL packets: a 3-byte length, a sequence number, a payload whose first byte is
        /// the command.
        case mysql
        /// PostgreSQL frontend messages: one untyped startup message, then a type byte and
        /// a 4-byte big-endian length that counts itself. An extended query sends Parse
        /// (`P`, with the SQL text), Bind, Describe, Execute and Sync together; the server
        /// commits and answers at Sync.
        case postgres
    }

    /// MySQL `COM_QUERY`, a text statement such as `COMMIT`.
    static let query: UInt8 = 0x03
    /// MySQL `COM_STMT_EXECUTE`, a prepared statement's execution.
    static let execute: UInt8 = 0x17
    /// PostgreSQL's Parse message, which carries a statement's SQL text. Armed with it, the
    /// proxy cuts where the statement runs: at an unnamed statement's Parse (sent with its
    /// Bind and Execute), or at the Bind of a named (prepared) statement whose Parse carried
    /// the text, on whichever connection prepared it, before or after arming.
    static let parse = UInt8(ascii: "P")
    /// PostgreSQL's Bind message, which names the prepared statement to run.
    private static let bindMessage = UInt8(ascii: "B")

    private struct Trigger {
        var command: UInt8
        var text: String?
        var skip: Int
        var cut: Cut
    }

    let port: UInt16
    private let wire: Wire
    private let listener: Int32
    private let targetPort: UInt16
    private let lock = NSLock()
    private var trigger: Trigger?
    private var firedCount = 0
    /// The SQL text of each named statement a Parse prepared, by name.
    private var preparedTexts: [String: String] = [:]
    private var stopped = false

    /// Listens on a free loopback port and forwards every connection to `targetPort`.
    init(targetPort: UInt16, wire: Wire = .mysql) throws {
        self.targetPort = targetPort
        self.wire = wire
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw ProxyError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socket, 64) == 0 else {
            close(socket)
            throw ProxyError("bind/listen: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard named == 0 else {
            close(socket)
            throw ProxyError("getsockname: errno \(errno)")
        }
        listener = socket
        port = UInt16(bigEndian: address.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    /// Cuts the connection at the `skip + 1`th client command `command` (whose text contains
    /// `text`, when given) from now on; fires once.
    func arm(_ command: UInt8, containing text: String? = nil, skip: Int = 0, _ cut: Cut) {
        lock.withLock { trigger = Trigger(command: command, text: text, skip: skip, cut: cut) }
    }

    /// How many cuts happened.
    var fired: Int { lock.withLock { firedCount } }

    /// Removes the trigger, a ``Cut/stall`` one included.
    func disarm() {
        lock.withLock { trigger = nil }
    }

    /// Stops accepting; open connections end when either side closes.
    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            if lock.withLock({ stopped }) {
                close(client)
                return
            }
            guard let server = connectToTarget() else {
                close(client)
                continue
            }
            let link = Link(client: client, server: server)
            Thread { [self] in clientToServer(link) }.start()
            Thread { self.serverToClient(link) }.start()
        }
    }

    private func connectToTarget() -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = targetPort.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            return nil
        }
        return socket
    }

    /// The length of the first whole message in `buffer` and where its command byte is
    /// (`nil` for an untyped message), or `nil` while the message is incomplete.
    private func frame(_ buffer: [UInt8], first: Bool) -> (length: Int, command: Int?)? {
        switch wire {
        case .mysql:
            guard buffer.count >= 4 else { return nil }
            let length = 4 + (Int(buffer[0]) | Int(buffer[1]) << 8 | Int(buffer[2]) << 16)
            return buffer.count >= length ? (length, 4) : nil
        case .postgres:
            let start = first ? 0 : 1
            guard buffer.count >= start + 4 else { return nil }
            let counted = buffer[start..<(start + 4)].reduce(0) { $0 << 8 | Int($1) }
            let length = start + counted
            return buffer.count >= length ? (length, first ? nil : 0) : nil
        }
    }

    /// Whether `packet` fires the trigger, and how to cut.
    private func matches(_ packet: [UInt8], command index: Int?) -> Cut? {
        guard let index, packet.count > index + 1 else { return nil }
        // PostgreSQL: the type byte, then 4 length bytes; MySQL: the command, then its payload.
        let payload = wire == .postgres ? index + 5 : index + 1
        var command = packet[index]
        var body = String(decoding: packet[min(payload, packet.count)...], as: UTF8.self)
        if wire == .postgres, command == Self.parse || command == Self.bindMessage {
            // Parse: name, then SQL text; Bind: portal, then the statement's name.
            let fields = Self.cStrings(packet[min(payload, packet.count)...], count: 2)
            guard fields.count == 2 else { return nil }
            if command == Self.parse, !fields[0].isEmpty {
                lock.withLock { preparedTexts[fields[0]] = fields[1] }
                return nil // prepared only: the cut waits for the Bind that runs it
            }
            if command == Self.bindMessage {
                guard !fields[1].isEmpty, let text = lock.withLock({ preparedTexts[fields[1]] }) else { return nil }
                (command, body) = (Self.parse, text)
            }
        }
        return lock.withLock { () -> Cut? in
            guard var current = trigger, command == current.command else { return nil }
            if let text = current.text, !body.contains(text) { return nil }
            if current.skip > 0 {
                current.skip -= 1
                trigger = current
                return nil
            }
            if current.cut != .stall { trigger = nil }
            firedCount += 1
            return current.cut
        }
    }

    /// The first `count` NUL-terminated strings in `bytes`.
    private static func cStrings(_ bytes: ArraySlice<UInt8>, count: Int) -> [String] {
        var strings: [String] = []
        var start = bytes.startIndex
        while strings.count < count, let end = bytes[start...].firstIndex(of: 0) {
            strings.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end + 1
        }
        return strings
    }

    private func clientToServer(_ link: Link) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var first = true
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(link.client, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            buffer += chunk[0..<count]
            while let (length, command) = frame(buffer, first: first) {
                first = false
                let packet = Array(buffer[0..<length])
                buffer.removeFirst(length)
                let cut = matches(packet, command: command)
                switch cut {
                case .requestLost?:
                    link.cut()
                    link.ended()
                    return
                case .replyLost?, .stall?:
                    link.cutOnReply(stalling: cut == .stall)
                    fallthrough
                case nil:
                    guard sendAll(link.server, packet) else {
                        link.cut()
                        link.ended()
                        return
                    }
                }
            }
        }
        link.cut()
        link.ended()
    }

    private func serverToClient(_ link: Link) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(link.server, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            if link.replyMustBeLost {
                if link.stalls { continue } // a server that stopped answering: drop, keep open
                break // the server answered: the command ran; its reply never arrives
            }
            guard sendAll(link.client, Array(chunk[0..<count])) else { break }
        }
        link.cut()
        link.ended()
    }

    private func sendAll(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// One proxied connection: both sockets, closed when both pumps ended.
    private final class Link: @unchecked Sendable { // guarded by `lock`
        let client: Int32
        let server: Int32
        private let lock = NSLock()
        private var pumps = 2
        private var dropReply = false
        private var stalling = false

        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }

        func cutOnReply(stalling: Bool) {
            lock.withLock {
                dropReply = true
                self.stalling = stalling
            }
        }
        var replyMustBeLost: Bool { lock.withLock { dropReply } }
        var stalls: Bool { lock.withLock { stalling } }

        /// Wakes both pumps: each side sees its socket end.
        func cut() {
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(server, Int32(SHUT_RDWR))
        }

        func ended() {
            let last = lock.withLock { () -> Bool in
                pumps -= 1
                return pumps == 0
            }
            if last {
                close(client)
                close(server)
            }
        }
    }
}

struct ProxyError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
