/// How this target names its temporary files and tables (see DriverTestDatabase.swift).
enum DriverTests {
    static let name = "hb"
}
