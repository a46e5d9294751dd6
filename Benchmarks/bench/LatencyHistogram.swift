/// Latencies in nanoseconds, bucketed as HdrHistogram buckets them at 3 significant digits
/// (every value below 2048 exact, then 1024 buckets per power of two), so percentiles keep
/// a relative error under 0.1% in a few kilobytes per thousand distinct magnitudes.
///
/// Written here so the benchmark builds from the library's own dependencies alone: it runs
/// from the repository's root (`swift run -c release bench`) without adding a package that
/// apps depending on the library would then resolve.
struct LatencyHistogram: Sendable {
    /// Values below this are counted exactly; above, with `subBucketHalf` buckets per
    /// power of two.
    private static let subBucketCount: UInt64 = 2048
    private static let subBucketHalf: UInt64 = 1024

    /// Buckets up to ten minutes, allocated up front as HdrHistogram does, so recording
    /// in a timed loop never allocates; a longer latency grows the array.
    private var counts = [UInt64](repeating: 0, count: LatencyHistogram.index(of: 600_000_000_000) + 1)
    private(set) var totalCount: UInt64 = 0
    private var minValue = UInt64.max
    private var maxValue: UInt64 = 0

    /// Counts one value.
    mutating func record(_ value: UInt64) {
        let index = Self.index(of: value)
        if index >= counts.count { counts.append(contentsOf: repeatElement(0, count: index - counts.count + 1)) }
        counts[index] += 1
        totalCount += 1
        minValue = Swift.min(minValue, value)
        maxValue = Swift.max(maxValue, value)
    }

    /// Adds every value counted in `other`.
    mutating func add(_ other: LatencyHistogram) {
        guard other.totalCount > 0 else { return }
        if other.counts.count > counts.count {
            counts.append(contentsOf: repeatElement(0, count: other.counts.count - counts.count))
        }
        for (index, count) in other.counts.enumerated() where count > 0 { counts[index] += count }
        totalCount += other.totalCount
        minValue = Swift.min(minValue, other.minValue)
        maxValue = Swift.max(maxValue, other.maxValue)
    }

    /// The value at or below which `percentile` percent of the counted values lie, as the
    /// highest value of its bucket (never above the largest value counted); 0 when empty.
    func valueAtPercentile(_ percentile: Double) -> UInt64 {
        guard totalCount > 0 else { return 0 }
        guard percentile > 0 else { return minValue }
        guard percentile < 100 else { return maxValue }
        let wanted = Swift.max(1, UInt64((percentile.nextDown * Double(totalCount) / 100).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= wanted {
                return Swift.max(Swift.min(Self.highestValue(inBucket: index), maxValue), minValue)
            }
        }
        return maxValue
    }

    /// How many counted values lie above `value`, to the bucket (a bucket that holds
    /// `value` counts as not above it).
    func count(above value: UInt64) -> UInt64 {
        let first = Self.index(of: value) + 1
        guard first < counts.count else { return 0 }
        return counts[first...].reduce(0, +)
    }

    /// The highest value of the largest value's bucket, as HdrHistogram reports its maximum.
    var max: UInt64 { totalCount == 0 ? 0 : Self.highestValue(inBucket: Self.index(of: maxValue)) }

    private static func index(of value: UInt64) -> Int {
        guard value >= subBucketCount else { return Int(value) }
        // shift ≥ 1 puts value >> shift in [1024, 2048).
        let shift = UInt64(63 - value.leadingZeroBitCount) - 10
        return Int(subBucketCount + (shift - 1) * subBucketHalf + ((value >> shift) - subBucketHalf))
    }

    private static func highestValue(inBucket index: Int) -> UInt64 {
        let index = UInt64(index)
        guard index >= subBucketCount else { return index }
        let shift = (index - subBucketCount) / subBucketHalf + 1
        let lowest = (subBucketHalf + (index - subBucketCount) % subBucketHalf) << shift
        return lowest + (1 << shift) - 1
    }
}
