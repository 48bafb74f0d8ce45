/// A sustained rate with a burst allowance.
public struct RateLimit: Sendable, Hashable {
    /// Actions per second, sustained.
    public var perSecond: Double
    /// Actions allowed at once after a quiet spell.
    public var burst: Double

    public init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }
}

/// A token bucket: a pure value that says whether an action at `now` is allowed.
public struct TokenBucket: Sendable, Hashable {
    public let limit: RateLimit
    private var tokens: Double
    private var last: Timestamp?

    public init(_ limit: RateLimit) {
        self.limit = limit
        self.tokens = limit.burst
    }

    /// When a token was last asked for (milliseconds), 0 before the first time.
    public var lastTaken: Timestamp { last ?? 0 }

    /// Takes a token at `now` (milliseconds). Returns `nil` when allowed, or how many
    /// milliseconds to wait for the next token.
    public mutating func take(now: Timestamp) -> Timestamp? {
        if let last, now > last {
            tokens = min(limit.burst, tokens + Double(now - last) / 1000 * limit.perSecond)
        }
        last = max(last ?? now, now)
        guard tokens >= 1 else {
            return Timestamp(((1 - tokens) / limit.perSecond * 1000).rounded(.up))
        }
        tokens -= 1
        return nil
    }
}
