/// Random identifiers for sessions and sockets: 120 random bits as 20 URL-safe characters.
public enum SessionID {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// A new random identifier.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(20)
        for _ in 0..<2 {
            var bits = generator.next() as UInt64
            for _ in 0..<10 {
                out.append(alphabet[Int(bits & 63)])
                bits >>= 6
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
