import NIOCore

/// The HTTP long-polling payload encoding of Engine.IO v4: packets joined by the record
/// separator `0x1E`, binary packets as `b` followed by their base64 encoding.
public enum PollingPayload {
    /// The separator between packets in a polling payload.
    public static let separator: UInt8 = 0x1E

    /// Encodes `packets` into one polling response body.
    public static func encode<Packets: Sequence<EnginePacket>>(_ packets: Packets) -> ByteBuffer {
        var out = ByteBuffer()
        encode(packets, into: &out)
        return out
    }

    /// Appends the polling encoding of `packets` to `out`.
    public static func encode<Packets: Sequence<EnginePacket>>(_ packets: Packets, into out: inout ByteBuffer) {
        var first = true
        for packet in packets {
            if !first { out.writeInteger(separator) }
            first = false
            if packet.isBinary {
                out.writeInteger(UInt8(ascii: "b"))
                out.writeString(Base64.encode(packet.wire.readableBytesView))
            } else {
                out.writeImmutableBuffer(packet.wire)
            }
        }
    }

    /// Decodes a polling request body. Every segment must be a valid packet; an empty body,
    /// an empty segment, bad base64 or invalid UTF-8 are errors.
    public static func decode(_ body: ByteBuffer) throws(EngineDecodingError) -> [EnginePacket] {
        guard body.readableBytes > 0 else { throw EngineDecodingError("empty payload") }
        var packets: [EnginePacket] = []
        let view = body.readableBytesView
        var start = view.startIndex
        while true {
            let end = view[start...].firstIndex(of: separator) ?? view.endIndex
            let segment = body.getSlice(at: start, length: end - start)!
            packets.append(try decodeSegment(segment))
            if end == view.endIndex { break }
            start = end + 1
        }
        return packets
    }

    private static func decodeSegment(_ segment: ByteBuffer) throws(EngineDecodingError) -> EnginePacket {
        if segment.getInteger(at: segment.readerIndex, as: UInt8.self) == UInt8(ascii: "b") {
            guard let bytes = Base64.decode(segment.readableBytesView.dropFirst()) else {
                throw EngineDecodingError("invalid base64")
            }
            return .message(binary: ByteBuffer(bytes: bytes))
        }
        return try EnginePacket.decode(textFrame: segment)
    }
}
