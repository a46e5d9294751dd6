import Metrics

/// The store's counters, created once per store (swift-metrics).
struct StoreMetrics: Sendable {
    let loadHit: Counter
    let loadMiss: Counter
    let loadNoID: Counter
    let loadMalformed: Counter
    let loadCorrupt: Counter
    let loadUndecryptable: Counter
    let created: Counter
    let updated: Counter
    let touched: Counter
    let deleted: Counter
    let regenerated: Counter
    let destroyed: Counter
    let skippedUnchanged: Counter
    let skippedEmpty: Counter
    let gone: Counter
    let conflicts: Counter
    let cleanupDeleted: Counter
    let errors: Counter

    init(label: String, factory: (any MetricsFactory)?) {
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
            if let factory {
                return Counter(label: "\(label)_\(name)", dimensions: dimensions, factory: factory)
            }
            return Counter(label: "\(label)_\(name)", dimensions: dimensions)
        }
        loadHit = counter("loads_total", [("result", "hit")])
        loadMiss = counter("loads_total", [("result", "miss")])
        loadNoID = counter("loads_total", [("result", "no_id")])
        loadMalformed = counter("loads_total", [("result", "malformed_id")])
        loadCorrupt = counter("loads_total", [("result", "corrupt")])
        loadUndecryptable = counter("loads_total", [("result", "undecryptable")])
        created = counter("writes_total", [("kind", "created")])
        updated = counter("writes_total", [("kind", "updated")])
        touched = counter("writes_total", [("kind", "touched")])
        deleted = counter("writes_total", [("kind", "deleted")])
        regenerated = counter("writes_total", [("kind", "regenerated")])
        destroyed = counter("writes_total", [("kind", "destroyed")])
        skippedUnchanged = counter("skipped_writes_total", [("reason", "unchanged")])
        skippedEmpty = counter("skipped_writes_total", [("reason", "empty")])
        gone = counter("saves_gone_total")
        conflicts = counter("conflicts_total")
        cleanupDeleted = counter("cleanup_deleted_total")
        errors = counter("errors_total")
    }
}
