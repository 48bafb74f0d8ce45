import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Serves one WebSocket, the only handler of its pipeline: reads the client's frames
/// (``WebSocketReader``) and serves either a session opened over it directly, or a candidate for
/// the upgrade of a polling session, until the client's `5` makes it the session's transport.
/// Frames to the client are written as whole ``WebSocketWire`` frames.
final class EngineWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Mode {
        /// Before `handlerAdded`: the request that opened the WebSocket.
        case starting(HTTPRequestHead)
        /// Probing to upgrade this polling session.
        case probing(EngineSocket)
        /// Carrying this session.
        case carrying(EngineSocket)
        case closed
    }

    private let engine: EngineServer
    private var mode: Mode
    private var reader: WebSocketReader

    init(engine: EngineServer, head: HTTPRequestHead, maxMessageSize: Int) {
        self.engine = engine
        self.mode = .starting(head)
        self.reader = WebSocketReader(maxMessageSize: maxMessageSize)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard case .starting(let head) = mode else { return }
        let channel = context.channel
        if let sid = URIComponents.split(head.uri).query["sid"] {
            guard let session = engine.session(id: sid) else {
                mode = .closed
                EngineSocket.closeWebSocket(channel, code: .policyViolation)
                return
            }
            mode = .probing(session)
        } else {
            let session = engine.openSession(
                transport: .websocket,
                handshake: EngineHandshakeRequest(head: head, remoteAddress: channel.remoteAddress),
                eventLoop: context.eventLoop
            ) { session, open in
                session.attach(webSocket: channel)
                EngineSocket.write([open], to: channel, version: session.protocolVersion)
            }
            mode = .carrying(session)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.read(unwrapInboundIn(data)) { event in handle(event, context: context) }
        } catch {
            engine.metrics.error("websocket_protocol_error")
            end(context: context, reason: .transportError, code: error.code)
        }
    }

    private func handle(_ event: WebSocketReader.Event, context: ChannelHandlerContext) {
        if case .closed = mode { return }
        switch event {
        case .text(let payload):
            let packet: EnginePacket
            do {
                packet = try EnginePacket.decode(textFrame: payload)
            } catch {
                engine.metrics.error("parse_error")
                end(context: context, reason: .parseError, code: .protocolError)
                return
            }
            receive(packet, context: context)
        case .binary(var data):
            guard case .carrying(let session) = mode else { return }
            if session.protocolVersion == .v3 {
                // v3 binary frames start with the packet type.
                guard data.readInteger(as: UInt8.self) == EnginePacketType.message.rawValue else {
                    engine.metrics.error("parse_error")
                    end(context: context, reason: .parseError, code: .protocolError)
                    return
                }
            }
            session.receive([.message(binary: data)])
        case .ping(let payload):
            context.writeAndFlush(wrapOutboundOut(WebSocketWire.frame(.pong, payload)), promise: nil)
        case .pong:
            break
        case .close:
            end(context: context, reason: .transportClose, code: .normalClosure)
        }
    }

    private func receive(_ packet: EnginePacket, context: ChannelHandlerContext) {
        switch mode {
        case .carrying(let session):
            session.receive([packet])
        case .probing(let session):
            if packet.type == .ping, packet.text == "probe" {
                session.probe(from: context.channel)
            } else if packet.type == .upgrade {
                if session.completeUpgrade(on: context.channel) {
                    mode = .carrying(session)
                } else {
                    end(context: context, reason: .transportError, code: .protocolError)
                }
            }
        case .starting, .closed:
            break
        }
    }

    /// Ends this WebSocket: the session it carries closes with `reason`, a probe is abandoned.
    private func end(context: ChannelHandlerContext, reason: EngineCloseReason, code: WebSocketErrorCode) {
        let previous = mode
        if case .closed = previous { return }
        mode = .closed
        // The close frame with `code` goes first; one the session sends as it closes comes second.
        EngineSocket.closeWebSocket(context.channel, code: code)
        switch previous {
        case .carrying(let session): session.close(reason: reason)
        case .probing(let session): session.abandonUpgrade(context.channel)
        case .starting, .closed: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch mode {
        case .carrying(let session), .probing(let session):
            mode = .closed
            session.webSocketClosed(context.channel)
        case .starting, .closed:
            break
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .carrying(let session) = mode {
            mode = .closed
            session.close(reason: .transportError)
        }
        context.close(promise: nil)
    }
}
