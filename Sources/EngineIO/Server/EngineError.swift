/// An HTTP error of the Engine.IO protocol, answered as status 400 (403 for ``Code/forbidden``,
/// 503 for ``Code/serverFull``, 429 for ``Code/tooManyFromAddress``) with the JSON body
/// `{"code":…,"message":…}`. Codes 0 to 5 are the reference server's; 6 and 7 are Parley's
/// own, for limits the reference server does not have.
public struct EngineHTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error codes.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// 0: the `transport` query parameter is missing or names no enabled transport.
        public static let unknownTransport = Code(rawValue: 0)
        /// 1: the `sid` names no open session.
        public static let unknownSessionID = Code(rawValue: 1)
        /// 2: a handshake (no `sid`) that is not a GET.
        public static let badHandshakeMethod = Code(rawValue: 2)
        /// 3: anything else wrong with the request.
        public static let badRequest = Code(rawValue: 3)
        /// 4: refused, for instance by the Origin check.
        public static let forbidden = Code(rawValue: 4)
        /// 5: the `EIO` version is not supported.
        public static let unsupportedProtocolVersion = Code(rawValue: 5)
        /// 6: a handshake while the server holds ``EngineConfiguration/maxSessions`` sessions;
        /// answered `503` with `Retry-After`. Not one of the reference server's codes: it has
        /// no such limit.
        public static let serverFull = Code(rawValue: 6)
        /// 7: a handshake from an address that holds ``EngineConfiguration/maxSessionsPerAddress``
        /// sessions; answered `429` with `Retry-After`. Parley's own, like code 6.
        public static let tooManyFromAddress = Code(rawValue: 7)
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String? = nil) {
        self.code = code
        self.message = message ?? Self.defaultMessage(code)
    }

    /// The HTTP status this error is answered with.
    public var status: Int {
        switch code {
        case .forbidden: 403
        case .serverFull: 503
        case .tooManyFromAddress: 429
        default: 400
        }
    }

    /// The JSON body of the answer.
    public var json: String {
        var escaped = ""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20: escaped += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return "{\"code\":\(code.rawValue),\"message\":\"\(escaped)\"}"
    }

    public var description: String { "Engine.IO error \(code.rawValue): \(message)" }

    static func defaultMessage(_ code: Code) -> String {
        switch code {
        case .unknownTransport: "Transport unknown"
        case .unknownSessionID: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .forbidden: "Forbidden"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        case .serverFull: "The server is full; try again in a few seconds."
        case .tooManyFromAddress: "Too many connections from your address; close one, or try again later."
        default: "Error"
        }
    }
}

/// Why an Engine.IO session ended, in the reference server's vocabulary.
public struct EngineCloseReason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The client sent a close packet, or its connection closed.
    public static let transportClose = EngineCloseReason(rawValue: "transport close")
    /// The transport failed: a broken or oversized request, or a protocol violation.
    public static let transportError = EngineCloseReason(rawValue: "transport error")
    /// The client did not answer a ping within the ping timeout.
    public static let pingTimeout = EngineCloseReason(rawValue: "ping timeout")
    /// The client sent a packet that could not be decoded.
    public static let parseError = EngineCloseReason(rawValue: "parse error")
    /// The server closed the session on purpose.
    public static let forcedClose = EngineCloseReason(rawValue: "forced close")
    /// The server is shutting down.
    public static let serverShuttingDown = EngineCloseReason(rawValue: "server shutting down")
    /// The client could not keep up with what it was sent.
    public static let slowClient = EngineCloseReason(rawValue: "slow client")
    /// The client sent more than the maximum payload.
    public static let payloadTooLarge = EngineCloseReason(rawValue: "payload too large")

    public var description: String { rawValue }
}
