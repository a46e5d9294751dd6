extension BenchRun {
    func mysql(_ scenarios: [Scenario]) async throws {
        throw BenchError("--backend mysql is not implemented yet")
    }
}
