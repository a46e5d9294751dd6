import SessionStoreCore
@testable import SessionStoreMySQL
import Testing

/// Several hosts in one MySQL URL: parsed without a server.
@Suite("MySQL multi-host URLs")
struct MultiHostURLTests {
    private func configuration(_ text: String) throws -> MySQLConfiguration {
        var url = try StoreURL(text)
        let configuration = try MySQLConfiguration(url: &url)
        try url.checkAllTaken()
        return configuration
    }

    @Test func everyHostWithItsPortIsKeptInOrder() throws {
        let configuration = try configuration("mysql://app:s3cret@db1:3307,db2:3308,db3:3309/app")
        #expect(configuration.hosts == [
            MySQLHost(host: "db1", port: 3307), MySQLHost(host: "db2", port: 3308), MySQLHost(host: "db3", port: 3309),
        ])
        #expect(configuration.host == "db1")
        #expect(configuration.port == 3307)
        #expect(configuration.database == "app")
        #expect(configuration.password == "s3cret")
    }

    @Test func aHostWithoutAPortUses3306() throws {
        let configuration = try configuration("mysql://app@db1,db2:3310,db3/app")
        #expect(configuration.hosts.map(\.port) == [3306, 3310, 3306])
        #expect(configuration.hosts.map(\.host) == ["db1", "db2", "db3"])
    }

    @Test func ipv6AddressesAreBracketed() throws {
        let configuration = try configuration("mysql://app@[::1]:3307,[fd00::2]/app")
        #expect(configuration.hosts == [MySQLHost(host: "::1", port: 3307), MySQLHost(host: "fd00::2", port: 3306)])
        #expect(configuration.description.contains("[::1]:3307,[fd00::2]:3306/app"))
    }

    @Test func hostOrderIsOrderedUnlessRandomIsAsked() throws {
        #expect(try configuration("mysql://app@db1,db2/app").hostOrder == .ordered)
        #expect(try configuration("mysql://app@db1,db2/app?hosts=random").hostOrder == .random)
        #expect(throws: SessionStoreError.self) { try configuration("mysql://app@db1,db2/app?hosts=roundrobin") }
    }

    @Test func causalReadsAreOnByDefaultOnlyWithSeveralHosts() throws {
        #expect(try configuration("mysql://app@db1,db2/app").usesCausalReads)
        #expect(try !configuration("mysql://app@db1/app").usesCausalReads)
        #expect(try !configuration("mysql://app@db1,db2/app?causal_reads=false").usesCausalReads)
        #expect(try configuration("mysql://app@db1/app?causal_reads=true").usesCausalReads)
    }

    @Test func hostRetryIsADuration() throws {
        #expect(try configuration("mysql://app@db1,db2/app").hostRetryInterval == .seconds(2))
        #expect(try configuration("mysql://app@db1,db2/app?host_retry=500ms").hostRetryInterval == .milliseconds(500))
    }

    @Test func descriptionListsEveryHostAndNoPassword() throws {
        let text = try configuration("mysql://app:s3cret@db1:3307,db2:3308/app?hosts=random").description
        #expect(text.contains("db1:3307,db2:3308/app"))
        #expect(text.contains("hosts=random"))
        #expect(!text.contains("s3cret"))
    }

    @Test(arguments: [
        "mysql://app@db1,,db3/app", // empty host
        "mysql://app@db1:0,db2/app", // port out of range
        "mysql://app@db1:x,db2/app", // port not a number
        "mysql://app@[::1]x,db2/app", // junk after an IPv6 address
        "mysql://app@db1,db2/app?socket=/run/mysqld/mysqld.sock", // a socket is one server
    ])
    func malformedHostListsAreConfigurationErrors(_ text: String) {
        #expect(throws: SessionStoreError.self) { try configuration(text) }
    }

    @Test func aConfigurationWithoutHostsDoesNotOpen() async {
        var configuration = MySQLConfiguration(user: "app", database: "app")
        configuration.hosts = []
        await #expect(throws: SessionStoreError.self) { try await MySQLBackend(configuration: configuration) }
    }
}
