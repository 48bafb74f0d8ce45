import EngineIO
import NIOCore

/// One Socket.IO v5 packet: `<type>[<attachments>-][<namespace>,][<ack id>][JSON]`, carried in
/// an Engine.IO message, followed by its binary attachments for the binary types.
public struct SocketIOPacket: Sendable, Hashable {
    /// The packet type, as its wire digit.
    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        case connect = 0
        case disconnect = 1
        case event = 2
        case ack = 3
        case connectError = 4
        case binaryEvent = 5
        case binaryAck = 6
    }

    /// The type. Encoding turns ``Kind/event`` and ``Kind/ack`` into their binary types when
    /// the data holds binary values.
    public var kind: Kind
    /// The namespace, `/` by default.
    public var namespace: String
    /// The acknowledgement id of an event that wants an ack, or of an ack.
    public var id: Int?
    /// The payload, with binary attachments in place.
    public var data: JSONValue?

    public init(_ kind: Kind, namespace: String = "/", id: Int? = nil, data: JSONValue? = nil) {
        self.kind = kind
        self.namespace = namespace
        self.id = id
        self.data = data
    }

    /// An event: `[name, args...]`.
    public static func event(_ name: String, _ args: [JSONValue], namespace: String = "/", id: Int? = nil) -> SocketIOPacket {
        SocketIOPacket(.event, namespace: namespace, id: id, data: .array([.string(name)] + args))
    }

    /// The event name of an event packet.
    public var eventName: String? {
        guard kind == .event || kind == .binaryEvent, case .array(let values)? = data, let first = values.first else { return nil }
        switch first {
        case .string(let name): return name
        case .number: return first.json
        default: return nil
        }
    }

    /// The arguments of an event (after the name) or of an ack.
    public var arguments: [JSONValue] {
        guard case .array(let values)? = data else { return [] }
        return kind == .event || kind == .binaryEvent ? Array(values.dropFirst()) : values
    }
}

/// Why a Socket.IO packet was refused.
public struct SocketIODecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "Socket.IO decoding error: \(reason)" }
}

extension SocketIOPacket {
    /// Event names a client may not send, as the reference parser rules.
    public static let reservedEvents: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]

    /// Encodes the packet into Engine.IO packets: the text packet, then one binary packet per
    /// attachment.
    public func encode() -> [EnginePacket] {
        let hasBinary = data?.containsBinary ?? false
        var attachments: [ByteBuffer]? = hasBinary ? [] : nil
        let kind: Kind = switch (self.kind, hasBinary) {
        case (.event, true): .binaryEvent
        case (.ack, true): .binaryAck
        default: self.kind
        }
        let text = EnginePacket.message(reservingCapacity: 32) { buffer in
            buffer.writeInteger(UInt8(ascii: "0") + kind.rawValue)
            let countIndex = buffer.writerIndex
            if kind == .binaryEvent || kind == .binaryAck {
                // Filled in below, once the attachments are counted.
                buffer.writeInteger(UInt8(ascii: "-"))
            }
            if namespace != "/" {
                buffer.writeString(namespace)
                buffer.writeInteger(UInt8(ascii: ","))
            }
            if let id { buffer.writeString(String(id)) }
            data?.write(to: &buffer, attachments: &attachments)
            if let attachments {
                var head = ByteBuffer(string: String(attachments.count))
                let tail = buffer.getSlice(at: countIndex, length: buffer.writerIndex - countIndex)!
                buffer.moveWriterIndex(to: countIndex)
                buffer.writeBuffer(&head)
                buffer.writeImmutableBuffer(tail)
            }
        }
        return [text] + (attachments ?? []).map { EnginePacket.message(binary: $0) }
    }

    /// Decodes the text part of a packet. For the binary types the result still holds
    /// placeholders and `attachments` tells how many binary packets follow.
    public static func decode(_ text: String, maxAttachments: Int = 10) throws(SocketIODecodingError) -> (packet: SocketIOPacket, attachments: Int) {
        var utf8 = Substring(text).utf8[...]
        guard let typeByte = utf8.popFirst(), typeByte >= UInt8(ascii: "0"),
              let kind = Kind(rawValue: typeByte - UInt8(ascii: "0"))
        else {
            throw SocketIODecodingError("unknown packet type")
        }
        var attachments = 0
        if kind == .binaryEvent || kind == .binaryAck {
            guard let dash = utf8.firstIndex(of: UInt8(ascii: "-")),
                  let count = Int(Substring(utf8[..<dash])), count >= 0, utf8[..<dash].allSatisfy(Self.isDigit)
            else {
                throw SocketIODecodingError("illegal attachments")
            }
            guard count <= maxAttachments else { throw SocketIODecodingError("too many attachments") }
            attachments = count
            utf8 = utf8[utf8.index(after: dash)...]
        }
        var namespace = "/"
        if utf8.first == UInt8(ascii: "/") {
            let end = utf8.firstIndex(of: UInt8(ascii: ",")) ?? utf8.endIndex
            namespace = String(Substring(utf8[..<end]))
            utf8 = end == utf8.endIndex ? utf8[end...] : utf8[utf8.index(after: end)...]
        }
        var id: Int?
        let digitsEnd = utf8.firstIndex { !Self.isDigit($0) } ?? utf8.endIndex
        if digitsEnd != utf8.startIndex {
            guard let value = Int(Substring(utf8[..<digitsEnd])) else { throw SocketIODecodingError("invalid ack id") }
            id = value
            utf8 = utf8[digitsEnd...]
        }
        var data: JSONValue?
        if !utf8.isEmpty {
            do {
                data = try JSONValue(parsing: String(Substring(utf8)))
            } catch {
                throw SocketIODecodingError("invalid payload: \(error.reason)")
            }
        }
        let packet = SocketIOPacket(kind, namespace: namespace, id: id, data: data)
        guard packet.hasValidPayload else { throw SocketIODecodingError("invalid payload") }
        return (packet, attachments)
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// The reference parser's payload rules for each type.
    var hasValidPayload: Bool {
        switch kind {
        case .connect:
            return data == nil || data?.objectValue != nil
        case .disconnect:
            return data == nil
        case .connectError:
            return data?.stringValue != nil || data?.objectValue != nil
        case .event, .binaryEvent:
            guard case .array(let values)? = data, let first = values.first else { return false }
            switch first {
            case .number: return true
            case .string(let name): return !Self.reservedEvents.contains(name)
            default: return false
            }
        case .ack, .binaryAck:
            return data?.arrayValue != nil
        }
    }

    /// Replaces each placeholder with its attachment. Fails on a placeholder whose number is
    /// out of range.
    public func reconstructed(with attachments: [ByteBuffer]) throws(SocketIODecodingError) -> SocketIOPacket {
        guard let data else { return self }
        var copy = self
        copy.data = try Self.substitute(data, attachments)
        return copy
    }

    static func substitute(_ value: JSONValue, _ attachments: [ByteBuffer]) throws(SocketIODecodingError) -> JSONValue {
        switch value {
        case .array(let values):
            var out: [JSONValue] = []
            out.reserveCapacity(values.count)
            for element in values { out.append(try substitute(element, attachments)) }
            return .array(out)
        case .object(let object):
            if object["_placeholder"] == .bool(true), let num = object["num"] {
                guard let index = num.intValue, attachments.indices.contains(index) else {
                    throw SocketIODecodingError("invalid placeholder")
                }
                return .binary(attachments[index])
            }
            var out = JSONObject()
            for (key, element) in object { out[key] = try substitute(element, attachments) }
            return .object(out)
        default:
            return value
        }
    }
}

/// Puts binary packets back together: the text part announces N attachments, and the next N
/// binary Engine.IO messages complete it.
public struct PacketAssembler: Sendable {
    private var pending: (packet: SocketIOPacket, expected: Int, received: [ByteBuffer])?
    /// The most attachments one packet may announce.
    public let maxAttachments: Int

    public init(maxAttachments: Int = 10) {
        self.maxAttachments = maxAttachments
    }

    /// Whether a binary packet is waiting for attachments.
    public var isAssembling: Bool { pending != nil }

    /// Feeds one Engine.IO message. Returns a complete packet, or `nil` while attachments are
    /// still expected. Text while attachments are expected, or binary when none are, is an
    /// error.
    public mutating func feed(_ message: EngineMessage) throws(SocketIODecodingError) -> SocketIOPacket? {
        switch message {
        case .text(let text):
            guard pending == nil else { throw SocketIODecodingError("expected a binary attachment") }
            let (packet, attachments) = try SocketIOPacket.decode(text, maxAttachments: maxAttachments)
            if attachments == 0 {
                return try packet.reconstructed(with: [])
            }
            pending = (packet, attachments, [])
            return nil
        case .binary(let bytes):
            guard var current = pending else { throw SocketIODecodingError("unexpected binary attachment") }
            current.received.append(bytes)
            if current.received.count < current.expected {
                pending = current
                return nil
            }
            pending = nil
            return try current.packet.reconstructed(with: current.received)
        }
    }
}
