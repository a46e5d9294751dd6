public import Logging

/// Opens a backend from a configuration URL, so an app picks its engine by configuration.
///
/// Each backend module offers one as a static member (`.sqlite`, `.mysql`); the app
/// passes those it links to ``SessionStore/open(_:backends:clock:logger:)``.
public struct StorageBackendFactory: Sendable {
    /// The URL schemes this factory opens, e.g. `["sqlite"]`.
    public let schemes: [String]
    private let open: @Sendable (inout StoreURL, Logger) async throws -> any StorageBackend

    /// A factory for `schemes`. `open` must consume every option the backend understands
    /// with the `take` methods of the URL; the caller rejects any left over.
    public init(
        schemes: [String],
        open: @escaping @Sendable (inout StoreURL, Logger) async throws -> any StorageBackend
    ) {
        self.schemes = schemes
        self.open = open
    }

    /// Opens a backend, consuming the options it understands from `url`.
    public func makeBackend(_ url: inout StoreURL, logger: Logger) async throws -> any StorageBackend {
        try await open(&url, logger)
    }
}

/// Table names are interpolated into SQL, so they must be plain identifiers.
public enum SQLIdentifier {
    /// Returns `name` when it is 1-64 ASCII letters, digits or underscores, not starting
    /// with a digit.
    /// - Throws: ``SessionStoreError`` with code `invalidConfiguration`.
    public static func validated(_ name: String) throws -> String {
        let bytes = Array(name.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 64
            && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[0])
            && bytes.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: "_")
            }
        guard valid else {
            throw StoreURL.invalid("table name must be 1-64 letters, digits or underscores, not starting with a digit")
        }
        return name
    }
}
