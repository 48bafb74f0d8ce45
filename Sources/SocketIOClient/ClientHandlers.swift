import EngineIO
import NIOCore
import NIOHTTP1
import NIOWebSocket
import SocketIO

/// Sends the WebSocket upgrade request once the TCP connection is up, and reports a refused
/// upgrade (any HTTP answer that reaches it).
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    static let name = "socketio.client.upgrade-request"

    private let host: String
    private let port: Int
    private let uri: String
    private let onFailure: @Sendable (String) -> Void

    init(host: String, port: Int, uri: String, onFailure: @escaping @Sendable (String) -> Void) {
        self.host = host
        self.port = port
        self.uri = uri
        self.onFailure = onFailure
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    /// The refusal being read: its status, and the start of its body.
    private var refusal: (status: UInt, body: ByteBuffer)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response):
            refusal = (response.status.code, ByteBuffer())
        case .body(var part):
            // The server's reason (an Engine.IO error's JSON) is short; the rest is not read.
            guard refusal != nil, refusal!.body.readableBytes < 4096 else { return }
            refusal!.body.writeBuffer(&part)
        case .end:
            reportRefusal()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if refusal != nil { reportRefusal() }
        onFailure("connection closed before the upgrade")
        context.fireChannelInactive()
    }

    /// Reports the refusal read, with the server's message when it sent an Engine.IO error
    /// (`{"code":6,"message":"The server is full; …"}`, say).
    private func reportRefusal() {
        guard let (status, body) = refusal else { return }
        refusal = nil
        let error = try? JSONValue(parsing: String(buffer: body))
        let message = error?["message"]?.stringValue.map { ": \($0)" } ?? ""
        onFailure("upgrade refused with HTTP \(status)\(message)")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        onFailure("\(error)")
        context.close(promise: nil)
    }
}

/// Feeds the client's core with the server's frames.
final class ClientFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let core: ClientCore

    init(core: ClientCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard let packet = try? EnginePacket.decode(textFrame: frame.unmaskedData) else {
                core.close(reason: "parse error")
                return
            }
            core.receive(packet, channel: context.channel)
        case .binary:
            core.receive(.message(binary: frame.unmaskedData), channel: context.channel)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            core.close(reason: "transport close")
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.close(reason: "transport close")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.close(reason: "transport error")
        context.close(promise: nil)
    }
}
