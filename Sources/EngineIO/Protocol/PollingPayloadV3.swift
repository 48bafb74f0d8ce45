import NIOCore

/// The Engine.IO v3 polling payloads.
///
/// - The *string* payload: each packet as `<length>:<packet>`, the length counted in UTF-16 code
///   units (JavaScript string length); a binary packet as `b4` followed by its base64.
/// - The *binary* payload (XHR2 clients): each packet as a type byte (0 string, 1 binary), the
///   length as one byte per decimal digit, `0xFF`, then the packet (for binary: the packet type
///   byte `4` then the bytes).
public enum PollingPayloadV3 {
    // MARK: String payload

    /// Encodes packets as a string payload (binary as base64).
    public static func encodeString<Packets: Sequence<EnginePacket>>(_ packets: Packets) -> ByteBuffer {
        var out = ByteBuffer()
        for packet in packets {
            let text: String
            if packet.isBinary {
                text = "b4" + Base64.encode(packet.wire.readableBytesView)
            } else {
                text = String(buffer: packet.wire)
            }
            out.writeString("\(text.utf16.count):")
            out.writeString(text)
        }
        return out
    }

    /// Decodes a string payload. Lengths must match the text exactly; the payload must be valid
    /// UTF-8.
    public static func decodeString(_ body: ByteBuffer) throws(EngineDecodingError) -> [EnginePacket] {
        guard body.readableBytes > 0 else { throw EngineDecodingError("empty payload") }
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw EngineDecodingError("invalid UTF-8")
        }
        var packets: [EnginePacket] = []
        let units = text.utf16
        var position = units.startIndex
        while position != units.endIndex {
            guard let colon = units[position...].firstIndex(of: UInt16(UInt8(ascii: ":"))), colon != position,
                  units.distance(from: position, to: colon) <= 9,
                  let length = Int(String(text[position..<colon])), length > 0
            else {
                throw EngineDecodingError("invalid length prefix")
            }
            let start = units.index(after: colon)
            guard let end = units.index(start, offsetBy: length, limitedBy: units.endIndex) else {
                throw EngineDecodingError("truncated packet")
            }
            // A length that ends inside a surrogate pair cuts a character in two.
            guard end.samePosition(in: text.unicodeScalars) != nil else {
                throw EngineDecodingError("packet splits a character")
            }
            packets.append(try decodeStringPacket(String(text[start..<end])))
            position = end
        }
        return packets
    }

    private static func decodeStringPacket(_ segment: String) throws(EngineDecodingError) -> EnginePacket {
        if segment.hasPrefix("b") {
            // `b` then the packet type digit, then base64.
            guard segment.utf8.dropFirst().first == UInt8(ascii: "4"),
                  let bytes = Base64.decode(segment.utf8.dropFirst(2))
            else {
                throw EngineDecodingError("invalid base64 packet")
            }
            return .message(binary: ByteBuffer(bytes: bytes))
        }
        return try EnginePacket.decode(textFrame: ByteBuffer(string: segment))
    }

    // MARK: Binary payload

    /// Encodes packets as a binary payload.
    public static func encodeBinary<Packets: Sequence<EnginePacket>>(_ packets: Packets) -> ByteBuffer {
        var out = ByteBuffer()
        for packet in packets {
            let length = packet.isBinary ? packet.wire.readableBytes + 1 : String(buffer: packet.wire).utf16.count
            out.writeInteger(UInt8(packet.isBinary ? 1 : 0))
            for digit in String(length).utf8 { out.writeInteger(digit - UInt8(ascii: "0")) }
            out.writeInteger(UInt8(0xFF))
            if packet.isBinary { out.writeInteger(EnginePacketType.message.rawValue) }
            out.writeImmutableBuffer(packet.wire)
        }
        return out
    }

    /// Decodes a binary payload. String packets count UTF-16 units, as JavaScript wrote them.
    public static func decodeBinary(_ body: ByteBuffer) throws(EngineDecodingError) -> [EnginePacket] {
        guard body.readableBytes > 0 else { throw EngineDecodingError("empty payload") }
        var body = body
        var packets: [EnginePacket] = []
        while body.readableBytes > 0 {
            guard let kind = body.readInteger(as: UInt8.self), kind <= 1 else { throw EngineDecodingError("invalid payload type") }
            var length = 0
            var digits = 0
            while true {
                guard let byte = body.readInteger(as: UInt8.self) else { throw EngineDecodingError("truncated length") }
                if byte == 0xFF { break }
                guard byte <= 9, digits < 9 else { throw EngineDecodingError("invalid length") }
                length = length * 10 + Int(byte)
                digits += 1
            }
            guard digits > 0, length > 0 else { throw EngineDecodingError("invalid length") }
            if kind == 1 {
                guard var packet = body.readSlice(length: length), packet.readInteger(as: UInt8.self) == EnginePacketType.message.rawValue else {
                    throw EngineDecodingError("truncated or invalid binary packet")
                }
                packets.append(.message(binary: packet))
            } else {
                // The length counts UTF-16 units: take bytes until that many units are read.
                let view = body.readableBytesView
                var units = 0
                var end = view.startIndex
                while units < length {
                    guard end < view.endIndex else { throw EngineDecodingError("truncated packet") }
                    let byte = view[end]
                    let width = byte < 0x80 ? 1 : byte >> 5 == 0b110 ? 2 : byte >> 4 == 0b1110 ? 3 : 4
                    units += width == 4 ? 2 : 1
                    end += width
                }
                guard end <= view.endIndex, units == length, let slice = body.readSlice(length: end - view.startIndex) else {
                    throw EngineDecodingError("truncated packet")
                }
                packets.append(try EnginePacket.decode(textFrame: slice))
            }
        }
        return packets
    }
}
