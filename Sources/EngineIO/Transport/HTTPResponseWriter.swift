import NIOCore
import NIOHTTP1

/// Writes one HTTP response to a connection from any thread, in one hop to its event loop.
struct HTTPResponseWriter: Sendable {
    let channel: any Channel
    let version: HTTPVersion
    let keepAlive: Bool
    /// Headers added to every response (CORS).
    let extraHeaders: HTTPHeaders

    /// The same writer, adding one more header to its responses.
    func adding(_ name: String, _ value: String) -> HTTPResponseWriter {
        var headers = extraHeaders
        headers.add(name: name, value: value)
        return HTTPResponseWriter(channel: channel, version: version, keepAlive: keepAlive, extraHeaders: headers)
    }

    func write(_ response: WebResponse, closeAfter: Bool = false) {
        var headers = response.headers
        headers.add(contentsOf: extraHeaders)
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        let close = closeAfter || !keepAlive
        headers.replaceOrAdd(name: "Connection", value: close ? "close" : "keep-alive")
        let head = HTTPResponseHead(version: version, status: response.status, headers: headers)
        let body = response.body
        let channel = self.channel
        channel.eventLoop.execute {
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            if body.readableBytes > 0 {
                channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
            }
            let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
            if close { done.whenComplete { _ in channel.close(promise: nil) } }
        }
    }

    func write(_ error: EngineHTTPError, closeAfter: Bool = false) {
        var response = WebResponse(status: HTTPResponseStatus(statusCode: error.status), contentType: "application/json", body: error.json)
        // A full server, or an address at its limit: when to come back, and the connection's
        // descriptor back to the server at once.
        let turnedAway = error.code == .serverFull || error.code == .tooManyFromAddress
        if turnedAway { response.headers.replaceOrAdd(name: "Retry-After", value: "5") }
        write(response, closeAfter: closeAfter || turnedAway)
    }

    /// Answers a poll with `packets` in the payload encoding of the client's revision: v4
    /// record-separated; v3 length-prefixed text, or the binary payload when binary packets go
    /// to a client that did not ask for base64.
    func writePolling(_ packets: [EnginePacket], version: EngineProtocolVersion, base64Only: Bool) {
        switch version {
        case .v4:
            write(WebResponse(status: .ok, headers: ["Content-Type": "text/plain; charset=UTF-8"], body: PollingPayload.encode(packets)))
        case .v3 where !base64Only && packets.contains(where: \.isBinary):
            write(WebResponse(status: .ok, headers: ["Content-Type": "application/octet-stream"], body: PollingPayloadV3.encodeBinary(packets)))
        case .v3:
            write(WebResponse(status: .ok, headers: ["Content-Type": "text/plain; charset=UTF-8"], body: PollingPayloadV3.encodeString(packets)))
        }
    }
}

/// The pending answer to one long-poll GET. Answered once, from any thread.
final class PollResponder: Sendable {
    let writer: HTTPResponseWriter
    let version: EngineProtocolVersion
    let base64Only: Bool
    /// Called just before the answer is written, so that the session accepts the next GET.
    let finished: @Sendable () -> Void

    init(writer: HTTPResponseWriter, version: EngineProtocolVersion, base64Only: Bool, finished: @escaping @Sendable () -> Void) {
        self.writer = writer
        self.version = version
        self.base64Only = base64Only
        self.finished = finished
    }

    func respond(packets: [EnginePacket]) {
        finished()
        writer.writePolling(packets, version: version, base64Only: base64Only)
    }

    func fail(_ error: EngineHTTPError) {
        writer.write(error)
    }
}
