import Crypto
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket framing (RFC 6455) the engine speaks as a server, in one place instead of four
/// pipeline handlers: a connection's pipeline after the upgrade is a single
/// ``EngineWebSocketHandler``, which costs an idle connection less memory and each frame fewer
/// handler hops. Outgoing frames are built whole (header and payload in one buffer), so a
/// broadcast writes the very same bytes to every recipient.
enum WebSocketWire {
    /// The opcodes of RFC 6455, section 5.2.
    enum Opcode: UInt8 {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    /// A whole unmasked (server-to-client) frame carrying `payload`.
    static func frame(_ opcode: Opcode, _ payload: ByteBuffer) -> ByteBuffer {
        let length = payload.readableBytes
        var frame = ByteBuffer()
        frame.reserveCapacity(length + 10)
        frame.writeInteger(0x80 | opcode.rawValue)
        if length < 126 {
            frame.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            frame.writeInteger(UInt8(126))
            frame.writeInteger(UInt16(length))
        } else {
            frame.writeInteger(UInt8(127))
            frame.writeInteger(UInt64(length))
        }
        frame.writeImmutableBuffer(payload)
        return frame
    }

    /// A close frame with a status code.
    static func closeFrame(_ code: WebSocketErrorCode) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.write(webSocketErrorCode: code)
        return frame(.close, payload)
    }

    /// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`.
    static func accept(key: String) -> String {
        Base64.encode(Array(Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))))
    }
}

/// A violation of the WebSocket protocol by the client, with the status code to close with.
struct WebSocketWireError: Error, Equatable {
    let code: WebSocketErrorCode
    let reason: String
}

/// Reads client frames from the bytes of a connection: unmasks them, reassembles fragmented
/// messages, and enforces the rules a server must (masked frames, no reserved bits, short final
/// control frames, a size limit). Keeps no buffer between reads unless a frame or a message is
/// incomplete.
struct WebSocketReader {
    /// What the client sent.
    enum Event {
        case text(ByteBuffer)
        case binary(ByteBuffer)
        case ping(ByteBuffer)
        case pong
        case close
    }

    /// The largest message (all fragments together) accepted; a longer one is an error with
    /// status 1009.
    let maxMessageSize: Int
    /// The bytes of an incomplete frame.
    private var pending: ByteBuffer?
    /// A message whose later fragments have not all arrived.
    private var fragments: (opcode: WebSocketWire.Opcode, data: ByteBuffer)?

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// Reads `bytes`, calling `handle` for each complete message and control frame in order.
    mutating func read(_ bytes: ByteBuffer, _ handle: (Event) -> Void) throws(WebSocketWireError) {
        var buffer: ByteBuffer
        if var pending {
            self.pending = nil
            pending.writeImmutableBuffer(bytes)
            buffer = pending
        } else {
            buffer = bytes
        }
        while let (fin, opcode, payload) = try nextFrame(&buffer) {
            if let event = try assemble(fin: fin, opcode: opcode, payload: payload) { handle(event) }
        }
        if buffer.readableBytes > 0 { pending = buffer }
    }

    /// Takes the next whole frame off `buffer`, unmasked, or `nil` when it is not all there.
    private func nextFrame(_ buffer: inout ByteBuffer) throws(WebSocketWireError) -> (Bool, UInt8, ByteBuffer)? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
              let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        let fin = first & 0x80 != 0
        let opcode = first & 0x0F
        guard first & 0x70 == 0 else { throw WebSocketWireError(code: .protocolError, reason: "reserved bits set") }
        guard second & 0x80 != 0 else { throw WebSocketWireError(code: .protocolError, reason: "unmasked client frame") }
        var length = Int(second & 0x7F)
        var headerSize = 2
        if length == 126 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = Int(extended)
            headerSize = 4
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            guard extended <= UInt64(Int32.max) else { throw WebSocketWireError(code: .messageTooLarge, reason: "frame too large") }
            length = Int(extended)
            headerSize = 10
        }
        if opcode >= 0x8, !fin || length > 125 {
            throw WebSocketWireError(code: .protocolError, reason: "fragmented or long control frame")
        }
        // Refused as soon as the header says so, before the bytes pile up. Only a continuation
        // adds to the message being assembled; a control frame between fragments does not.
        let assembled = opcode == WebSocketWire.Opcode.continuation.rawValue ? fragments?.data.readableBytes ?? 0 : 0
        guard length + assembled <= maxMessageSize else {
            throw WebSocketWireError(code: .messageTooLarge, reason: "message too large")
        }
        guard buffer.readableBytes >= headerSize + 4 + length,
              let maskBytes = buffer.getBytes(at: start + headerSize, length: 4),
              let mask = WebSocketMaskingKey(maskBytes)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: headerSize + 4)
        var payload = buffer.readSlice(length: length)!
        payload.webSocketUnmask(mask)
        return (fin, opcode, payload)
    }

    /// Turns a frame into an event: a data frame that ends a message, or a control frame.
    private mutating func assemble(fin: Bool, opcode: UInt8, payload: ByteBuffer) throws(WebSocketWireError) -> Event? {
        guard let kind = WebSocketWire.Opcode(rawValue: opcode) else {
            throw WebSocketWireError(code: .protocolError, reason: "unknown opcode \(opcode)")
        }
        switch kind {
        case .text, .binary:
            guard fragments == nil else { throw WebSocketWireError(code: .protocolError, reason: "new message inside a fragmented one") }
            guard fin else {
                fragments = (kind, payload)
                return nil
            }
            return kind == .text ? .text(payload) : .binary(payload)
        case .continuation:
            guard var message = fragments else { throw WebSocketWireError(code: .protocolError, reason: "continuation of nothing") }
            fragments = nil
            message.data.writeImmutableBuffer(payload)
            guard fin else {
                fragments = message
                return nil
            }
            return message.opcode == .text ? .text(message.data) : .binary(message.data)
        case .ping:
            return .ping(payload)
        case .pong:
            return .pong
        case .close:
            guard payload.readableBytes != 1 else { throw WebSocketWireError(code: .protocolError, reason: "malformed close frame") }
            return .close
        }
    }
}

/// Upgrades an HTTP request to a WebSocket served by an ``EngineWebSocketHandler``, when the
/// engine takes it (its path, a valid handshake); otherwise the request goes on as plain HTTP
/// and gets the engine's error answer.
final class EngineWebSocketUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let supportedProtocol = "websocket"
    /// None that NIO should check: it wants required headers named in `Connection` too, which
    /// WebSocket clients do not do. The key and version are checked when building the response.
    let requiredUpgradeHeaders: [String] = []
    private let engine: EngineServer
    private let maxMessageSize: Int

    init(engine: EngineServer, maxMessageSize: Int) {
        self.engine = engine
        self.maxMessageSize = maxMessageSize
    }

    func buildUpgradeResponse(
        channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        let keys = upgradeRequest.headers["Sec-WebSocket-Key"]
        guard keys.count == 1, upgradeRequest.headers["Sec-WebSocket-Version"] == ["13"] else {
            return channel.eventLoop.makeFailedFuture(NIOWebSocketUpgradeError.invalidUpgradeHeader)
        }
        guard engine.acceptsWebSocket(upgradeRequest, from: channel.remoteAddress) else {
            return channel.eventLoop.makeFailedFuture(NIOWebSocketUpgradeError.unsupportedWebSocketTarget)
        }
        var headers = initialResponseHeaders
        headers.replaceOrAdd(name: "Upgrade", value: "websocket")
        headers.replaceOrAdd(name: "Connection", value: "upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketWire.accept(key: keys[0]))
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let handler = EngineWebSocketHandler(engine: engine, head: upgradeRequest, maxMessageSize: maxMessageSize)
        return context.eventLoop.makeCompletedFuture {
            try context.pipeline.syncOperations.addHandler(handler)
        }
    }
}
