/// A parsed configuration string such as `sqlite:///var/lib/app/sessions.db?table=s` or
/// `mysql://user:secret@db:3306/app?pool=8`.
///
/// Options are consumed with the `take` methods by the core and by the backend; any
/// left over is an error (``checkAllTaken()``), so a typo is never silently ignored.
/// The password never appears in ``description`` or in errors.
public struct StoreURL: Sendable, CustomStringConvertible {
    /// The scheme, lowercased: `sqlite`, `mysql`, ...
    public let scheme: String
    /// The user name, percent-decoded.
    public let user: String?
    /// The password, percent-decoded. Never printed.
    public let password: String?
    /// The host, if the URL has an authority part other than a file path.
    public let host: String?
    /// The port, if given.
    public let port: Int?
    /// The path: a file path for SQLite (`:memory:` for a private in-memory database),
    /// the database name for servers.
    public let path: String
    private var options: [(name: String, value: String)]
    private var taken: Set<String> = []

    /// Parses a configuration string.
    /// - Throws: ``SessionStoreError`` with code `invalidConfiguration`.
    public init(_ text: String) throws {
        guard let colon = text.firstIndex(of: ":") else {
            throw Self.invalid("missing scheme in configuration URL (expected e.g. sqlite:///path.db)")
        }
        scheme = text[..<colon].lowercased()
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" }) else {
            throw Self.invalid("invalid scheme in configuration URL")
        }
        var rest = Substring(text[text.index(after: colon)...])
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var user: String?, password: String?, host: String?, port: Int?
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            if scheme == "sqlite" {
                // sqlite:///abs/path.db or sqlite://relative/path.db: everything is the path.
            } else {
                let slash = rest.firstIndex(of: "/") ?? rest.endIndex
                var authority = rest[..<slash]
                rest = slash < rest.endIndex ? rest[rest.index(after: slash)...] : ""
                if let at = authority.lastIndex(of: "@") {
                    let credentials = authority[..<at]
                    authority = authority[authority.index(after: at)...]
                    if let separator = credentials.firstIndex(of: ":") {
                        user = try Self.decode(credentials[..<separator], what: "user")
                        password = try Self.decode(credentials[credentials.index(after: separator)...], what: "password")
                    } else {
                        user = try Self.decode(credentials, what: "user")
                    }
                }
                // A list of hosts (`h1:3306,h2`) keeps its ports for the backend to read, unless
                // its last host has one.
                if let separator = authority.lastIndex(of: ":"), !authority.hasSuffix("]"),
                   !authority[separator...].contains(",") {
                    let portText = authority[authority.index(after: separator)...]
                    guard let value = Int(portText), (1...65535).contains(value) else {
                        throw Self.invalid("invalid port \"\(portText)\" in configuration URL")
                    }
                    port = value
                    authority = authority[..<separator]
                }
                host = authority.isEmpty ? nil : try Self.withoutControlCharacters(Self.decode(authority, what: "host"), what: "host")
            }
        }
        path = try Self.withoutControlCharacters(Self.decode(rest, what: "path"), what: "path")
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        options = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0], what: "option name")
            let value = parts.count > 1 ? try Self.decode(parts[1], what: "option \(name)") : ""
            guard !options.contains(where: { $0.name == name }) else {
                throw Self.invalid("option \"\(name)\" is given twice")
            }
            options.append((name, value))
        }
    }

    /// Consumes an option's raw text.
    public mutating func take(_ name: String) -> String? {
        taken.insert(name)
        return options.first(where: { $0.name == name })?.value
    }

    /// Consumes an integer option within `range`.
    public mutating func takeInt(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = take(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw Self.invalid("option \(name)=\(text) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Consumes a boolean option (`true`/`false`/`1`/`0`).
    public mutating func takeBool(_ name: String) throws -> Bool? {
        guard let text = take(name) else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw Self.invalid("option \(name)=\(text) must be true or false")
        }
    }

    /// Consumes a duration option: a number with a unit `ms`, `s`, `m`, `h` or `d`
    /// (seconds when bare). `0`, `off` or `none` give `.zero`.
    public mutating func takeDuration(_ name: String) throws -> Duration? {
        guard let text = take(name) else { return nil }
        if ["off", "none"].contains(text.lowercased()) { return .zero }
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        var number = Substring(text)
        var scale: Int64 = 1000
        for (suffix, milliseconds) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = milliseconds
            break
        }
        guard let value = Int64(number), value >= 0, value <= Int64.max / scale / 4 else {
            throw Self.invalid("option \(name)=\(text) must be a duration such as 500ms, 30s, 20m, 12h or 7d")
        }
        return .milliseconds(value * scale)
    }

    /// Consumes an option that must be one of `choices`.
    public mutating func takeChoice<T>(_ name: String, _ choices: [String: T]) throws -> T? {
        guard let text = take(name) else { return nil }
        guard let value = choices[text.lowercased()] else {
            let allowed = choices.keys.sorted().joined(separator: ", ")
            throw Self.invalid("option \(name)=\(text) must be one of: \(allowed)")
        }
        return value
    }

    /// Throws when an option was given that nobody consumed.
    public func checkAllTaken() throws {
        let unknown = options.map(\.name).filter { !taken.contains($0) }
        guard unknown.isEmpty else {
            throw Self.invalid("unknown option(s) for \(scheme): \(unknown.joined(separator: ", "))")
        }
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var text = scheme + ":"
        if host != nil || user != nil || scheme != "sqlite" || path.hasPrefix("/") {
            if scheme == "sqlite" && path == ":memory:" {} else { text += "//" }
        }
        if let user { text += user + (password == nil ? "" : ":***") + "@" }
        if let host { text += host }
        if let port { text += ":\(port)" }
        if scheme != "sqlite" && !path.isEmpty { text += "/" }
        text += path
        if !options.isEmpty {
            text += "?" + options.map { "\($0.name)=\(Self.redacted(option: $0.value))" }.joined(separator: "&")
        }
        return text
    }

    /// An option value with the password of a nested URL (e.g. `fallback=mysql://u:p@h/db`)
    /// replaced by `***`.
    private static func redacted(option value: String) -> String {
        guard value.contains("@"), value.contains("://") else { return value }
        do {
            let nested = try StoreURL(value)
            return nested.password == nil ? value : nested.description
        } catch {
            return "(not shown)"  // Unparsable, yet it may hold credentials.
        }
    }

    /// The servers of a multi-host URL (`h1:p1,h2:p2,h3`, as in
    /// `mysql://user@h1:3306,h2:3306/db`): its ``host`` and ``port`` rejoined, since the
    /// port after the last colon is the last host's, then split at the commas. A host without
    /// a port takes `defaultPort`; an IPv6 address is written in brackets, `[::1]:5432`.
    /// - Throws: `SessionStoreError` `invalidConfiguration` for an empty host or a bad port,
    ///   naming `engine`.
    package func hostList(defaultPort: Int, engine: String) throws -> [(host: String, port: Int)] {
        guard let host else { return [] }
        let text = host + (port.map { ":\($0)" } ?? "")
        var hosts: [(host: String, port: Int)] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            var name = Substring(entry)
            var port = defaultPort
            var portText: Substring?
            if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
                let rest = name[name.index(after: close)...]
                name = name[name.index(after: name.startIndex)..<close]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":") else { throw Self.invalid("invalid port in host \"\(entry)\" of \(engine) URL") }
                    portText = rest.dropFirst()
                }
            } else if let colon = name.lastIndex(of: ":") {
                portText = name[name.index(after: colon)...]
                name = name[..<colon]
            }
            if let portText {
                guard let value = Int(portText), (1...65535).contains(value) else {
                    throw Self.invalid("invalid port in host \"\(entry)\" of \(engine) URL")
                }
                port = value
            }
            guard !name.isEmpty else { throw Self.invalid("empty host in \(engine) URL host list \"\(text)\"") }
            hosts.append((String(name), port))
        }
        return hosts
    }

    /// A configuration error that names the problem.
    package static func invalid(_ message: String) -> SessionStoreError {
        SessionStoreError(.invalidConfiguration, message)
    }

    /// Rejects NUL and other control characters, which C APIs would truncate at or
    /// terminals would interpret (`a.db%00.evil` must not open `a.db`).
    private static func withoutControlCharacters(_ text: String, what: String) throws -> String {
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }) else {
            throw invalid("\(what) contains a control character")
        }
        return text
    }

    private static func decode(_ text: Substring, what: String) throws -> String {
        guard text.contains("%") || text.contains("+") else { return String(text) }
        var bytes = [UInt8]()
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else {
                    throw invalid("bad percent-encoding in \(what)")
                }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw invalid("\(what) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }
}
