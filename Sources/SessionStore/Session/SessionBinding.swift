/// Facts about the device a session was signed in from, supplied by the app at login and
/// shown back in a "where you're signed in" list.
///
/// Each fact is bounded (see the limits below); like ids, they never appear in a log line
/// or an error's description.
public struct SessionDevice: Sendable, Equatable {
    /// The longest ``ipAddress`` accepted, in UTF-8 bytes.
    public static let maxIPAddressLength = 64
    /// The longest ``userAgent`` accepted, in UTF-8 bytes.
    public static let maxUserAgentLength = 512
    /// The longest ``label`` accepted, in UTF-8 bytes.
    public static let maxLabelLength = 128

    /// The client's address at login.
    public var ipAddress: String?
    /// The client's `User-Agent` at login.
    public var userAgent: String?
    /// A name the app or the user gave the device ("Anna's laptop").
    public var label: String?

    public init(ipAddress: String? = nil, userAgent: String? = nil, label: String? = nil) {
        self.ipAddress = ipAddress
        self.userAgent = userAgent
        self.label = label
    }
}

/// A session's own expiry policy, in place of the store's: "remember me" for 30 days idle,
/// a kiosk for 5 minutes. Bounded by ``SessionStoreConfiguration/maxIdleTimeout`` and
/// ``SessionStoreConfiguration/maxAbsoluteLifetime``.
public struct SessionLifetime: Sendable, Equatable {
    /// A session unused for this long expires; `nil` means no idle limit.
    public var idleTimeout: Duration?
    /// A session this old expires however active; `nil` means no absolute limit.
    public var absoluteLifetime: Duration?
    /// Whether the frameworks' drivers give the cookie a `Max-Age` (a cookie that outlives
    /// the browser), derived from the limits above. Otherwise the cookie is a session cookie.
    public var persistentCookie: Bool

    public init(idleTimeout: Duration?, absoluteLifetime: Duration? = nil, persistentCookie: Bool = true) {
        self.idleTimeout = idleTimeout
        self.absoluteLifetime = absoluteLifetime
        self.persistentCookie = persistentCookie
    }
}

/// What binds a session to its owner: the owner, the device facts and the session's own
/// lifetime, as stored in the row (the owner in a column of its own, the rest encoded in
/// ``SessionRecord/details``).
struct SessionBinding: Sendable, Equatable {
    /// The longest owner accepted, in UTF-8 bytes.
    static let maxOwnerLength = 255

    var owner: String?
    var device: SessionDevice
    /// Milliseconds; `nil` for the store's default.
    var lifetime: StoredLifetime?

    /// A lifetime in milliseconds; `0` stands for "no limit".
    struct StoredLifetime: Sendable, Equatable {
        var idle: Int64
        var absolute: Int64
        var persistentCookie: Bool
    }

    static let unbound = SessionBinding(owner: nil, device: SessionDevice(), lifetime: nil)

    var isEmpty: Bool { self == .unbound }

    /// Checks an owner an app passes on: non-empty, at most ``maxOwnerLength`` UTF-8 bytes,
    /// no NUL (which some engines cannot store).
    static func validate(owner: String) throws {
        let length = owner.utf8.count
        guard length > 0, length <= maxOwnerLength, !owner.utf8.contains(0) else {
            throw SessionStoreError(
                .invalidOwner,
                "an owner must be 1 to \(maxOwnerLength) UTF-8 bytes without NUL (got \(length) bytes); nothing was written")
        }
    }

    static func validate(_ device: SessionDevice) throws {
        func check(_ value: String?, _ name: String, _ limit: Int) throws {
            guard let value else { return }
            let length = value.utf8.count
            guard length <= limit, !value.utf8.contains(0) else {
                throw SessionStoreError(
                    .invalidOwner,
                    "the device's \(name) must be at most \(limit) UTF-8 bytes without NUL (got \(length)); nothing was written")
            }
        }
        try check(device.ipAddress, "IP address", SessionDevice.maxIPAddressLength)
        try check(device.userAgent, "user agent", SessionDevice.maxUserAgentLength)
        try check(device.label, "label", SessionDevice.maxLabelLength)
    }

    /// The lifetime in milliseconds, checked against the configuration's maxima.
    static func stored(_ lifetime: SessionLifetime, _ configuration: SessionStoreConfiguration) throws -> StoredLifetime {
        func milliseconds(_ value: Duration?, _ name: String, max: Duration) throws -> Int64 {
            guard let value else { return 0 }
            guard value > .zero, value <= max else {
                throw SessionStoreError(
                    .invalidOwner, "a session's \(name) must be positive and at most \(max) (got \(value)); nothing was written")
            }
            return value.milliseconds
        }
        let idle = try milliseconds(lifetime.idleTimeout, "idle timeout", max: configuration.maxIdleTimeout)
        let absolute = try milliseconds(lifetime.absoluteLifetime, "absolute lifetime", max: configuration.maxAbsoluteLifetime)
        guard idle > 0 || absolute > 0 else {
            throw SessionStoreError(.invalidOwner, "a session's own lifetime needs an idle timeout or an absolute lifetime")
        }
        if idle > 0, configuration.touchInterval.milliseconds >= idle {
            throw SessionStoreError(
                .invalidOwner, "a session's idle timeout must be longer than the touch interval, or it expires between touches")
        }
        return StoredLifetime(idle: idle, absolute: absolute, persistentCookie: lifetime.persistentCookie)
    }

    var publicLifetime: SessionLifetime? {
        lifetime.map {
            SessionLifetime(
                idleTimeout: $0.idle > 0 ? .milliseconds($0.idle) : nil,
                absoluteLifetime: $0.absolute > 0 ? .milliseconds($0.absolute) : nil,
                persistentCookie: $0.persistentCookie)
        }
    }

    // MARK: - Details encoding

    /// The format byte of ``encodedDetails``.
    private static let detailsFormat: UInt8 = 1
    private static let hasLifetime: UInt8 = 1
    private static let persistentCookie: UInt8 = 2

    /// The device facts and lifetime as ``SessionRecord/details``; `nil` when there are none.
    ///
    /// Format 1: the format byte, a flags byte (1: a lifetime follows, 2: persistent cookie),
    /// with a lifetime its idle and absolute milliseconds (8 bytes each, big-endian, 0 for
    /// none), then the IP address, user agent and label, each as a 2-byte big-endian length
    /// (0xFFFF for absent) and its UTF-8 bytes.
    var encodedDetails: [UInt8]? {
        if lifetime == nil, device == SessionDevice() { return nil }
        var bytes: [UInt8] = [Self.detailsFormat, 0]
        if let lifetime {
            bytes[1] |= Self.hasLifetime
            if lifetime.persistentCookie { bytes[1] |= Self.persistentCookie }
            for value in [lifetime.idle, lifetime.absolute] {
                withUnsafeBytes(of: UInt64(bitPattern: value).bigEndian) { bytes.append(contentsOf: $0) }
            }
        }
        for text in [device.ipAddress, device.userAgent, device.label] {
            guard let text else {
                bytes.append(contentsOf: [0xFF, 0xFF])
                continue
            }
            let utf8 = Array(text.utf8)
            bytes.append(UInt8(utf8.count >> 8))
            bytes.append(UInt8(utf8.count & 0xFF))
            bytes.append(contentsOf: utf8)
        }
        return bytes
    }

    /// Reads a row's owner and details.
    /// - Throws: ``SessionStoreError`` `corruptData` for details it cannot read.
    init(owner: String?, details: [UInt8]?) throws {
        self.owner = owner
        guard let details else {
            device = SessionDevice()
            lifetime = nil
            return
        }
        var reader = DetailsReader(bytes: details)
        guard try reader.byte() == Self.detailsFormat else {
            throw SessionStoreError(.unsupportedFormat, "a session's details have an unknown format \(details[0])")
        }
        let flags = try reader.byte()
        if flags & Self.hasLifetime != 0 {
            let idle = Int64(bitPattern: try reader.uint64())
            let absolute = Int64(bitPattern: try reader.uint64())
            guard idle >= 0, absolute >= 0 else {
                throw SessionStoreError(.corruptData, "a session's stored lifetime is negative")
            }
            lifetime = StoredLifetime(idle: idle, absolute: absolute, persistentCookie: flags & Self.persistentCookie != 0)
        } else {
            lifetime = nil
        }
        device = SessionDevice(ipAddress: try reader.text(), userAgent: try reader.text(), label: try reader.text())
        guard reader.isAtEnd else { throw SessionStoreError(.corruptData, "a session's details have trailing bytes") }
    }

    init(owner: String?, device: SessionDevice, lifetime: StoredLifetime?) {
        self.owner = owner
        self.device = device
        self.lifetime = lifetime
    }

    private struct DetailsReader {
        let bytes: [UInt8]
        var offset = 0

        var isAtEnd: Bool { offset == bytes.count }

        mutating func byte() throws -> UInt8 {
            guard offset < bytes.count else { throw Self.truncated }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func uint64() throws -> UInt64 {
            var value: UInt64 = 0
            for _ in 0..<8 { value = value << 8 | UInt64(try byte()) }
            return value
        }

        mutating func text() throws -> String? {
            let length = Int(try byte()) << 8 | Int(try byte())
            if length == 0xFFFF { return nil }
            guard length <= bytes.count - offset else { throw Self.truncated }
            let slice = bytes[offset..<offset + length]
            offset += length
            guard let text = String(validating: slice, as: UTF8.self) else {
                throw SessionStoreError(.corruptData, "a session's device facts are not UTF-8")
            }
            return text
        }

        static let truncated = SessionStoreError(.corruptData, "a session's details are truncated")
    }
}
