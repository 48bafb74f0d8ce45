import SocketIO

/// Latencies in microseconds, counted in log-linear buckets: exact below 64 µs, then 32 buckets
/// per power of two (at most 3% wide). Fixed size, cheap to add to, and mergeable, so that
/// worker processes can send theirs to the coordinator.
struct LatencyHistogram: Sendable, Equatable {
    private static let linear = 64
    private static let subBuckets = 32
    private static let subBits = 5
    /// Up to 2^31 µs (about 36 minutes); anything longer lands in the last bucket.
    private static let bucketCount = linear + (31 - 6) * subBuckets

    private(set) var counts = [UInt32](repeating: 0, count: bucketCount)
    private(set) var total = 0
    private(set) var maxMicros: Int64 = 0

    mutating func record(micros: Int64) {
        let value = max(0, micros)
        counts[Self.index(of: value)] &+= 1
        total += 1
        if value > maxMicros { maxMicros = value }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices where other.counts[index] > 0 { counts[index] &+= other.counts[index] }
        total += other.total
        maxMicros = max(maxMicros, other.maxMicros)
    }

    static func index(of value: Int64) -> Int {
        if value < Int64(linear) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // ≥ 6
        let sub = Int((value >> (exponent - subBits)) & Int64(subBuckets - 1))
        return min(bucketCount - 1, linear + (exponent - 6) * subBuckets + sub)
    }

    /// The upper edge of a bucket, in microseconds.
    static func upperBound(of index: Int) -> Int64 {
        if index < linear { return Int64(index) }
        let exponent = (index - linear) / subBuckets + 6
        let sub = Int64((index - linear) % subBuckets)
        return ((Int64(subBuckets) + sub + 1) << (exponent - subBits)) - 1
    }

    /// The latency under which a fraction `p` of the samples fall, in milliseconds (the upper
    /// edge of its bucket, never above the largest sample).
    func percentileMs(_ p: Double) -> Double {
        guard total > 0 else { return 0 }
        let rank = max(1, Int((p * Double(total)).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += Int(count)
            if seen >= rank { return Double(min(Self.upperBound(of: index), maxMicros)) / 1000 }
        }
        return Double(maxMicros) / 1000
    }

    var maxMs: Double { Double(maxMicros) / 1000 }

    /// The sparse form sent between processes: `[[bucket, count], …]` and the maximum.
    var json: JSONValue {
        var pairs: [JSONValue] = []
        for (index, count) in counts.enumerated() where count > 0 {
            pairs.append([.number(Double(index)), .number(Double(count))])
        }
        return ["buckets": .array(pairs), "maxMicros": .number(Double(maxMicros))]
    }

    init() {}

    init(json: JSONValue?) {
        for pair in json?["buckets"]?.arrayValue ?? [] {
            guard let index = pair.arrayValue?.first?.intValue, let count = pair.arrayValue?.last?.intValue,
                  counts.indices.contains(index), count >= 0 else { continue }
            counts[index] &+= UInt32(truncatingIfNeeded: count)
            total += count
        }
        maxMicros = Int64(json?["maxMicros"]?.numberValue ?? 0)
    }
}
