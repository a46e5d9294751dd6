#if Hummingbird
import Foundation

/// A `Set-Cookie` header read back in a test: name, value and attributes (names lowercased).
struct ParsedCookie {
    let name: String
    let value: String
    let attributes: [String: String]

    init?(_ header: String?) {
        guard let header else { return nil }
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = parts.first, let equals = first.firstIndex(of: "=") else { return nil }
        name = String(first[..<equals])
        value = String(first[first.index(after: equals)...])
        var attributes: [String: String] = [:]
        for part in parts.dropFirst() {
            if let equals = part.firstIndex(of: "=") {
                attributes[part[..<equals].lowercased()] = String(part[part.index(after: equals)...])
            } else {
                attributes[part.lowercased()] = ""
            }
        }
        self.attributes = attributes
    }

    var domain: String? { attributes["domain"] }
    var path: String? { attributes["path"] }
    var secure: Bool { attributes["secure"] != nil }
    var httpOnly: Bool { attributes["httponly"] != nil }
    var sameSite: String? { attributes["samesite"] }
    var maxAge: Int? { attributes["max-age"].flatMap { Int($0) } }

    /// Whether the cookie tells the browser to drop it (Max-Age 0 or an Expires in the past).
    var isExpired: Bool {
        if maxAge == 0 { return true }
        guard let expires = attributes["expires"] else { return false }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: expires) else { return false }
        return date <= Date()
    }
}
#endif
