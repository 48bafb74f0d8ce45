import NIOCore
import NIOHTTP1

/// An HTTP request outside the engine path, handed whole to the application's
/// ``EngineHTTPServer/Fallback``.
public struct WebRequest: Sendable {
    /// The method.
    public let method: HTTPMethod
    /// The URI as sent: path and query.
    public let uri: String
    /// The path, percent-decoded, without the query.
    public let path: String
    /// The decoded query parameters (the last value wins for a repeated name).
    public let query: [String: String]
    /// The headers.
    public let headers: HTTPHeaders
    /// The body (at most ``EngineHTTPServer/maxRequestBodySize`` bytes).
    public let body: ByteBuffer
    /// The client's address, when known.
    public let remoteAddress: SocketAddress?
}

/// The answer to a ``WebRequest``.
public struct WebResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// The headers; `Content-Length` is set when the response is written.
    public var headers: HTTPHeaders
    /// The body.
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with a text body and the given content type.
    public init(status: HTTPResponseStatus = .ok, contentType: String, body: String) {
        self.init(status: status, headers: ["Content-Type": contentType], body: ByteBuffer(string: body))
    }

    /// `404 Not Found` with a JSON error body.
    public static let notFound = WebResponse(status: .notFound, contentType: "application/json", body: "{\"error\":\"not found\"}")
}

/// Splitting and decoding of request URIs.
enum URIComponents {
    /// The percent-decoded path and query parameters of `uri`. The URI is split on its bytes
    /// (`?`, `&`, `=` are ASCII), not on its characters: splitting a `String` by `Character`
    /// runs grapheme breaking over every byte, and this runs for every request and connection.
    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        let bytes = uri.utf8
        let mark = bytes.firstIndex(of: UInt8(ascii: "?"))
        let path = percentDecode(String(Substring(bytes[..<(mark ?? bytes.endIndex)])), plusIsSpace: false)
        var query: [String: String] = [:]
        if let mark {
            for pair in bytes[bytes.index(after: mark)...].split(separator: UInt8(ascii: "&")) {
                let equals = pair.firstIndex(of: UInt8(ascii: "="))
                let key = percentDecode(String(Substring(pair[..<(equals ?? pair.endIndex)])), plusIsSpace: true)
                query[key] = equals.map { percentDecode(String(Substring(pair[pair.index(after: $0)...])), plusIsSpace: true) } ?? ""
            }
        }
        return (path, query)
    }

    static func percentDecode(_ string: String, plusIsSpace: Bool) -> String {
        guard string.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else {
            return string
        }
        var bytes = [UInt8]()
        var iterator = string.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "+"), plusIsSpace {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
