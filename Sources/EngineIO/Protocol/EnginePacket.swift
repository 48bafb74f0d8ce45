import NIOCore

/// The type of an Engine.IO packet, as its wire digit.
public enum EnginePacketType: UInt8, Sendable, CaseIterable {
    /// Sent by the server once, at the start of a session, with the handshake data.
    case open = 0
    /// Requests the end of the session.
    case close = 1
    /// Heartbeat request (server → client in v4), or an upgrade probe `2probe`.
    case ping = 2
    /// Heartbeat answer, or the answer to a probe `3probe`.
    case pong = 3
    /// Application data.
    case message = 4
    /// Completes an upgrade from polling to WebSocket.
    case upgrade = 5
    /// Does nothing; used to end a pending long-poll during an upgrade.
    case noop = 6

    /// The ASCII digit that stands for this type on the wire.
    @inlinable
    public var character: UInt8 { UInt8(ascii: "0") + rawValue }
}

/// One Engine.IO packet.
///
/// The packet keeps its WebSocket wire form: for a text packet the type digit followed by the
/// UTF-8 payload, for a binary message the raw bytes. That form is what a WebSocket frame
/// carries as is, and what the polling encoding needs with at most a base64 step, so a packet
/// encoded once can be written to any number of sessions without being encoded again.
public struct EnginePacket: Sendable, Hashable {
    /// The packet type. Binary packets are always ``EnginePacketType/message``.
    public let type: EnginePacketType
    /// Whether this is a binary message.
    public let isBinary: Bool
    /// The wire form: the type digit and the payload for text packets, raw bytes for binary.
    public let wire: ByteBuffer

    /// Creates a packet from its wire form without checking it. Use the factory methods or
    /// ``EnginePacket/decode(textFrame:)`` instead where possible.
    @usableFromInline
    init(type: EnginePacketType, isBinary: Bool, wire: ByteBuffer) {
        self.type = type
        self.isBinary = isBinary
        self.wire = wire
    }

    /// A text packet of `type` carrying `payload`.
    public init(_ type: EnginePacketType, _ payload: String = "") {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.utf8.count + 1)
        buffer.writeInteger(type.character)
        buffer.writeString(payload)
        self.init(type: type, isBinary: false, wire: buffer)
    }

    /// A text message packet.
    public static func message(_ text: String) -> EnginePacket {
        EnginePacket(.message, text)
    }

    /// A binary message packet.
    public static func message(binary bytes: ByteBuffer) -> EnginePacket {
        EnginePacket(type: .message, isBinary: true, wire: bytes)
    }

    /// Builds a text message by letting `write` append the payload after the type digit, so
    /// that an upper layer can encode straight into the final wire buffer.
    @inlinable
    public static func message(
        reservingCapacity capacity: Int = 64,
        writing write: (inout ByteBuffer) -> Void
    ) -> EnginePacket {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(capacity + 1)
        buffer.writeInteger(EnginePacketType.message.character)
        write(&buffer)
        return EnginePacket(type: .message, isBinary: false, wire: buffer)
    }

    /// The payload bytes: after the type digit for text packets, everything for binary ones.
    public var payload: ByteBuffer {
        isBinary ? wire : wire.getSlice(at: wire.readerIndex + 1, length: wire.readableBytes - 1)!
    }

    /// The payload of a text packet as a string (empty for binary packets).
    public var text: String {
        isBinary ? "" : String(buffer: payload)
    }

    /// The number of bytes this packet occupies in a WebSocket frame.
    public var byteCount: Int { wire.readableBytes }
}

extension EnginePacket: CustomStringConvertible {
    public var description: String {
        isBinary ? "EnginePacket(binary, \(wire.readableBytes) bytes)" : "EnginePacket(\(type), \(text.debugDescription))"
    }
}

/// Why a buffer could not be decoded into Engine.IO packets.
public struct EngineDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "Engine.IO decoding error: \(reason)" }
}

extension EnginePacket {
    /// Decodes the packet carried by a WebSocket text frame, or by one segment of a polling
    /// payload: a type digit and a payload that must be valid UTF-8.
    public static func decode(textFrame bytes: ByteBuffer) throws(EngineDecodingError) -> EnginePacket {
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else {
            throw EngineDecodingError("empty packet")
        }
        guard first >= UInt8(ascii: "0"), let type = EnginePacketType(rawValue: first - UInt8(ascii: "0")) else {
            throw EngineDecodingError("unknown packet type")
        }
        guard bytes.readableBytesView.isValidUTF8 else {
            throw EngineDecodingError("invalid UTF-8")
        }
        return EnginePacket(type: type, isBinary: false, wire: bytes)
    }
}

extension Collection where Element == UInt8 {
    /// Whether the bytes are well-formed UTF-8 (no overlongs, surrogates or truncation).
    @usableFromInline
    var isValidUTF8: Bool {
        var iterator = makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
