import NIOCore
import NIOHTTP1

/// Serves the HTTP side of one connection: Engine.IO polling requests at the engine path,
/// everything else through the application's fallback.
final class EngineHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Target {
        case idle
        case engine(EngineRequestKind, HTTPRequestHead, HTTPResponseWriter)
        case post(EngineSocket, HTTPResponseWriter)
        case fallback(HTTPRequestHead, path: String, query: [String: String], HTTPResponseWriter)
        /// The request was answered already (an error); its body is ignored.
        case discard
    }

    private let engine: EngineServer
    private let fallback: EngineHTTPServer.Fallback?
    private let maxRequestBodySize: Int
    /// Makes the upgrade handler armed before each request (see `EngineHTTPServer.configure`).
    private let makeUpgradeHandler: () -> HTTPServerUpgradeHandler
    private var target = Target.idle
    private var body = ByteBuffer()
    private var bodyLimit = 0
    private var parked: (session: EngineSocket, responder: PollResponder)?

    init(
        engine: EngineServer,
        fallback: EngineHTTPServer.Fallback?,
        maxRequestBodySize: Int,
        makeUpgradeHandler: @escaping () -> HTTPServerUpgradeHandler
    ) {
        self.engine = engine
        self.fallback = fallback
        self.maxRequestBodySize = maxRequestBodySize
        self.makeUpgradeHandler = makeUpgradeHandler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, context: context)
        case .body(var chunk):
            switch target {
            case .idle, .discard:
                return
            case .post(let session, let writer):
                guard body.readableBytes + chunk.readableBytes <= bodyLimit else {
                    target = .discard
                    session.endPost()
                    engine.metrics.error("payload_too_large")
                    writer.write(WebResponse(status: .payloadTooLarge, contentType: "application/json", body: "{\"code\":3,\"message\":\"Payload too large\"}"), closeAfter: true)
                    session.close(reason: .payloadTooLarge)
                    return
                }
            case .engine(_, _, let writer), .fallback(_, _, _, let writer):
                guard body.readableBytes + chunk.readableBytes <= bodyLimit else {
                    target = .discard
                    writer.write(WebResponse(status: .payloadTooLarge, contentType: "application/json", body: "{\"error\":\"payload too large\"}"), closeAfter: true)
                    return
                }
            }
            body.writeBuffer(&chunk)
        case .end:
            finish(context: context)
            target = .idle
            body = ByteBuffer()
            // The previous upgrade handler left the pipeline when this request turned out not
            // to be an upgrade; the next request gets a new one.
            try? context.pipeline.syncOperations.addHandler(makeUpgradeHandler(), position: .before(self))
        }
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        parked = nil
        body.clear()
        let (path, query) = URIComponents.split(head.uri)
        let origin = head.headers.first(name: "Origin")
        let configuration = engine.configuration
        guard path == configuration.path || path + "/" == configuration.path else {
            let writer = HTTPResponseWriter(channel: context.channel, version: head.version, keepAlive: head.isKeepAlive, extraHeaders: [:])
            bodyLimit = maxRequestBodySize
            target = .fallback(head, path: path, query: query, writer)
            return
        }
        var kind = EngineRequestKind.classify(
            method: head.method.rawValue,
            query: query,
            isWebSocketUpgrade: head.isWebSocketUpgrade,
            origin: origin,
            configuration: configuration,
            sessionTransport: engine.phase(ofSession:)
        )
        if case .success(.handshake) = kind,
           let refusal = engine.refuseAdmission(headers: head.headers, remoteAddress: context.channel.remoteAddress) {
            kind = .failure(refusal)
        }
        let isPreflight = (try? kind.get()) == .preflight
        let cors = configuration.cors.headers(origin: origin, preflight: isPreflight ? head.headers : nil)
        let writer = HTTPResponseWriter(channel: context.channel, version: head.version, keepAlive: head.isKeepAlive, extraHeaders: cors)
        switch kind {
        case .failure(let error):
            engine.metrics.error("http_\(error.code.rawValue)")
            writer.write(error)
            target = .discard
        case .success(.post(let sid)):
            guard let session = engine.session(id: sid) else {
                writer.write(EngineHTTPError(.unknownSessionID))
                target = .discard
                return
            }
            guard session.beginPost() else {
                writer.write(EngineHTTPError(.badRequest, "Overlap from client"))
                target = .discard
                return
            }
            bodyLimit = configuration.maxPayload
            target = .post(session, writer)
        case .success(let kind):
            bodyLimit = 0
            target = .engine(kind, head, writer)
        }
    }

    private func finish(context: ChannelHandlerContext) {
        switch target {
        case .idle, .discard:
            return
        case .post(let session, let writer):
            let packets: [EnginePacket]
            do {
                packets = try Self.decodePost(body, version: session.protocolVersion)
            } catch {
                session.endPost()
                engine.metrics.error("parse_error")
                writer.write(EngineHTTPError(.badRequest, "Parse error"))
                session.close(reason: .parseError)
                return
            }
            session.receive(packets)
            session.endPost()
            writer.write(WebResponse(status: .ok, contentType: "text/html", body: "ok"))
        case .engine(let kind, let head, let writer):
            finishEngine(kind, head: head, writer: writer, context: context)
        case .fallback(let head, let path, let query, let writer):
            let request = WebRequest(
                method: head.method, uri: head.uri, path: path, query: query,
                headers: head.headers, body: body, remoteAddress: context.channel.remoteAddress
            )
            guard let fallback else {
                writer.write(.notFound)
                return
            }
            let isHead = head.method == .HEAD
            Task {
                var response = await fallback(request)
                // A HEAD answer has headers only.
                if isHead { response.body.clear() }
                writer.write(response)
            }
        }
    }

    private func finishEngine(_ kind: EngineRequestKind, head: HTTPRequestHead, writer: HTTPResponseWriter, context: ChannelHandlerContext) {
        switch kind {
        case .handshake(.polling):
            _ = engine.openSession(
                transport: .polling,
                handshake: EngineHandshakeRequest(head: head, remoteAddress: context.channel.remoteAddress),
                eventLoop: context.eventLoop
            ) { [cookie = engine.configuration.cookie] session, open in
                let writer = cookie.map { writer.adding("Set-Cookie", $0.header(sessionID: session.id)) } ?? writer
                writer.writePolling([open], version: session.protocolVersion, base64Only: true)
            }
        case .poll(let sid):
            guard let session = engine.session(id: sid) else {
                writer.write(EngineHTTPError(.unknownSessionID))
                return
            }
            let responder = PollResponder(writer: writer, version: session.protocolVersion, base64Only: session.base64Only) {
                session.pollCompleted()
            }
            parked = (session, responder)
            session.poll(responder)
        case .preflight:
            writer.write(WebResponse(status: .noContent))
        case .handshake(.websocket), .upgrade, .post:
            // WebSocket requests are taken by the upgrader before they get here.
            writer.write(EngineHTTPError(.badRequest))
        }
    }

    /// A POST body in the payload encoding of the client's revision; v3 clients send the
    /// binary payload (first byte 0 or 1) when they have binary packets, text otherwise.
    static func decodePost(_ body: ByteBuffer, version: EngineProtocolVersion) throws(EngineDecodingError) -> [EnginePacket] {
        switch version {
        case .v4:
            return try PollingPayload.decode(body)
        case .v3:
            if let first = body.getInteger(at: body.readerIndex, as: UInt8.self), first <= 1 {
                return try PollingPayloadV3.decodeBinary(body)
            }
            return try PollingPayloadV3.decodeString(body)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let parked {
            self.parked = nil
            parked.session.pollAborted(parked.responder)
        }
        context.fireChannelInactive()
    }
}

extension EngineHandshakeRequest {
    init(head: HTTPRequestHead, remoteAddress: SocketAddress?) {
        self.init(headers: head.headers, remoteAddress: remoteAddress, uri: head.uri)
    }
}

extension HTTPRequestHead {
    var isWebSocketUpgrade: Bool {
        headers[canonicalForm: "Upgrade"].contains { $0.lowercased() == "websocket" }
    }
}
