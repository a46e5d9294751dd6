#if Postgres
import Foundation
package import PostgresNIO
import SessionStore

extension PostgresConfiguration {
    /// The TLS setting for postgres-nio: libpq's `sslmode` semantics on NIOSSL.
    /// - Throws: `SessionStoreError` `invalidConfiguration` when the CA file cannot be read.
    func tlsConfiguration() throws -> TLSConfiguration? {
        guard tls.mode != .disable, unixSocket == nil else { return nil }
        var settings = TLSConfiguration.makeClientConfiguration()
        if let caFile = tls.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw StoreURL.invalid("ssl_ca file \(caFile) cannot be read")
            }
            settings.trustRoots = .file(caFile)
        }
        switch tls.mode {
        case .disable, .prefer:
            settings.certificateVerification = .none
        case .require:
            settings.certificateVerification = tls.caFile == nil ? .none : .noHostnameVerification
        case .verifyFull:
            settings.certificateVerification = .fullVerification
        }
        return settings
    }

    /// The startup parameters every connection sends.
    private var startupParameters: [(String, String)] {
        [("statement_timeout", String(statementTimeout.milliseconds)),
         ("application_name", "session-store")]
    }

    /// The configuration of every connection the backend opens.
    package func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var result: PostgresConnection.Configuration
        if let unixSocket {
            result = PostgresConnection.Configuration(unixSocketPath: unixSocket, username: user, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            if let settings = try tlsConfiguration() {
                let context: NIOSSLContext
                do {
                    context = try NIOSSLContext(configuration: settings)
                } catch {
                    throw StoreURL.invalid("TLS settings rejected (ssl_ca \(self.tls.caFile ?? "none")): \(error)")
                }
                tls = self.tls.mode == .prefer ? .prefer(context) : .require(context)
            } else {
                tls = .disable
            }
            result = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
            if self.tls.mode == .verifyFull { result.options.tlsServerName = Self.isAddress(host) ? nil : host }
        }
        result.options.connectTimeout = connectTimeout.timeAmount
        result.options.additionalStartupParameters = startupParameters
        return result
    }

    /// The configurations of the connections the backend opens, one per host in order
    /// (one for a Unix socket); ``connectionConfiguration()`` is the first host's.
    func connectionConfigurations() throws -> [PostgresConnection.Configuration] {
        guard unixSocket == nil, hosts.count > 1 else { return [try connectionConfiguration()] }
        return try hosts.map { server in
            var single = self
            single.hosts = [server]
            return try single.connectionConfiguration()
        }
    }

    /// Whether `host` is an IPv4 or IPv6 address rather than a name.
    private static func isAddress(_ host: String) -> Bool {
        do {
            _ = try SocketAddress(ipAddress: host, port: 0)
            return true
        } catch {
            return false // not an address literal: a name
        }
    }
}

extension Duration {
    /// The duration as NIO's `TimeAmount` (nanoseconds; long durations saturate).
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .nanoseconds(seconds < 0 ? .min : .max) }
        return .nanoseconds(whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue)
    }
}
#endif
