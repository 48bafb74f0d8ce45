/// Random identifiers for sessions and sockets: 90 random bits as 15 URL-safe characters.
///
/// Fifteen, not the reference server's twenty: a Swift string of up to 15 ASCII bytes is kept
/// inline, without an allocation of its own, and every connection holds two of these ids for as
/// long as it lives. Ninety bits from the system's secure generator are still far beyond guessing.
public enum SessionID {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The length of an identifier.
    public static let length = 15

    /// A new random identifier.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(length)
        var bits: UInt64 = 0
        for index in 0..<length {
            // Ten 6-bit characters per 64 random bits.
            if index % 10 == 0 { bits = generator.next() }
            out.append(alphabet[Int(bits & 63)])
            bits >>= 6
        }
        return String(decoding: out, as: UTF8.self)
    }
}
