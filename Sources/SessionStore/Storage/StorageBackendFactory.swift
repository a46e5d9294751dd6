public import Logging

/// Opens a backend from a configuration URL, so an app picks its engine by configuration.
///
/// Each backend module offers one as a static member (`.sqlite`, `.mysql`); the app
/// passes those it links to ``SessionStore/open(_:backends:clock:logger:)``.
public struct StorageBackendFactory: Sendable {
    /// The URL schemes this factory opens, e.g. `["sqlite"]`.
    public let schemes: [String]
    private let configure: @Sendable (inout StoreURL) throws -> @Sendable (Logger) async throws -> any StorageBackend
    /// The configuration as the operator CLI acts on it, when the backend's configuration
    /// type is an `AdminTarget`.
    private let configureAdmin: @Sendable (inout StoreURL) throws -> (any AdminTarget)?

    /// A factory for `schemes`, in two steps so that a bad URL never creates anything:
    /// `configure` reads every option the backend understands with the `take` methods of
    /// the URL (and touches nothing outside), then, once no option is left over, `open`
    /// opens the backend with what `configure` returned.
    public init<Configuration: Sendable>(
        schemes: [String],
        configure: @escaping @Sendable (inout StoreURL) throws -> Configuration,
        open: @escaping @Sendable (Configuration, Logger) async throws -> any StorageBackend
    ) {
        self.schemes = schemes
        self.configure = { url in
            let configuration = try configure(&url)
            return { logger in try await open(configuration, logger) }
        }
        self.configureAdmin = { url in try configure(&url) as? any AdminTarget }
    }

    /// Reads the backend's options from `url`, checks that none is left over, and only then
    /// opens the backend.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` before anything is created.
    public func makeBackend(_ url: inout StoreURL, logger: Logger) async throws -> any StorageBackend {
        let open = try configure(&url)
        try url.checkAllTaken()
        return try await open(logger)
    }
}

extension StorageBackendFactory {
    /// The factory among `factories` that opens URLs of `scheme`: how everything that takes
    /// a store URL (the store, the drivers, the CLI) picks its backend.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` naming the schemes that are
    ///   linked, when none of `factories` handles `scheme`.
    package static func handling(_ scheme: String, among factories: [StorageBackendFactory]) throws -> StorageBackendFactory {
        guard let factory = factories.first(where: { $0.schemes.contains(scheme) }) else {
            let known = factories.flatMap(\.schemes).joined(separator: ", ")
            throw StoreURL.invalid("no linked backend handles \"\(scheme):\" (linked: \(known.isEmpty ? "none" : known))")
        }
        return factory
    }

    /// Reads the backend's options from `url` for the operator CLI, opening nothing; the
    /// caller checks that no option is left over.
    /// - Throws: ``SessionStoreError`` `invalidConfiguration` for a bad option, or when the
    ///   backend offers the CLI nothing to act on.
    package func adminTarget(_ url: inout StoreURL) throws -> any AdminTarget {
        guard let target = try configureAdmin(&url) else {
            throw StoreURL.invalid("the \(url.scheme): backend cannot be administered by session-store")
        }
        return target
    }
}

/// Table names are interpolated into SQL, so they must be plain identifiers.
package enum SQLIdentifier {
    /// Returns `name` when it is 1-64 ASCII letters, digits or underscores, not starting
    /// with a digit.
    /// - Throws: ``SessionStoreError`` with code `invalidConfiguration`.
    package static func validated(_ name: String) throws -> String {
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
