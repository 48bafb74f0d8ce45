import NIOCore

/// Options of a Socket.IO server. The defaults are those of the reference server.
public struct SocketIOConfiguration: Sendable {
    /// How long a new connection may take to join a namespace before it is closed. Default 45 s.
    public var connectTimeout: TimeAmount = .seconds(45)
    /// The most binary attachments one packet may carry. Default 10.
    public var maxAttachments = 10
    /// Connection state recovery; `nil` (the default) turns it off.
    public var connectionStateRecovery: ConnectionStateRecovery?

    public init() {}
}

/// Connection state recovery: a client that lost its connection unexpectedly and comes back
/// within the window gets its id, rooms and data back, and the broadcasts it missed.
public struct ConnectionStateRecovery: Sendable, Equatable {
    /// How long a disconnected session, and the broadcasts kept for it, are kept. Default 2 min.
    public var maxDisconnectionDuration: TimeAmount
    /// Whether a recovered socket skips the namespace's middlewares. Default `true`.
    public var skipMiddlewares: Bool

    public init(maxDisconnectionDuration: TimeAmount = .minutes(2), skipMiddlewares: Bool = true) {
        self.maxDisconnectionDuration = maxDisconnectionDuration
        self.skipMiddlewares = skipMiddlewares
    }
}

/// Why a socket left its namespace, in the reference server's vocabulary.
public struct DisconnectReason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The client left the namespace (`socket.disconnect()` on its side).
    public static let clientNamespaceDisconnect = DisconnectReason(rawValue: "client namespace disconnect")
    /// The server removed the socket (``Socket/disconnect(close:)``).
    public static let serverNamespaceDisconnect = DisconnectReason(rawValue: "server namespace disconnect")
    /// The connection closed: the client went away or closed it.
    public static let transportClose = DisconnectReason(rawValue: "transport close")
    /// The connection failed.
    public static let transportError = DisconnectReason(rawValue: "transport error")
    /// The client stopped answering pings.
    public static let pingTimeout = DisconnectReason(rawValue: "ping timeout")
    /// The client sent a packet that could not be decoded.
    public static let parseError = DisconnectReason(rawValue: "parse error")
    /// The server closed the connection.
    public static let forcedClose = DisconnectReason(rawValue: "forced close")
    /// The server is shutting down.
    public static let serverShuttingDown = DisconnectReason(rawValue: "server shutting down")

    /// Reasons after which a session is kept for connection state recovery.
    public var isRecoverable: Bool {
        switch self {
        case .clientNamespaceDisconnect, .serverNamespaceDisconnect, .parseError: false
        default: true
        }
    }

    public var description: String { rawValue }
}

/// Thrown by a middleware to refuse a connection: the client gets a CONNECT_ERROR packet with
/// `{"message": message, "data": data}`.
public struct ConnectionRefused: Error, Sendable, Hashable {
    public var message: String
    public var data: JSONValue?

    public init(_ message: String, data: JSONValue? = nil) {
        self.message = message
        self.data = data
    }

    var payload: JSONValue {
        var object: JSONObject = ["message": .string(message)]
        if let data { object["data"] = data }
        return .object(object)
    }
}

/// An acknowledgement did not arrive in time, or the socket disconnected first.
public struct AcknowledgementError: Error, Sendable, Hashable, CustomStringConvertible {
    public let reason: String
    public static let timeout = AcknowledgementError(reason: "operation has timed out")
    public static let disconnected = AcknowledgementError(reason: "socket has been disconnected")
    public var description: String { reason }
}
