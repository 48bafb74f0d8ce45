import EngineIO
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import SocketIO
import Synchronization

/// Options of a ``SocketIOClient``.
public struct SocketIOClientConfiguration: Sendable {
    /// The Engine.IO path on the server. Default `/socket.io/`.
    public var path = "/socket.io/"
    /// The namespace to join. Default `/`.
    public var namespace = "/"
    /// The CONNECT payload (`auth`), empty by default.
    public var auth: JSONObject = [:]
    /// How long ``SocketIOClient/connect()`` waits for the namespace to accept. Default 10 s.
    public var connectTimeout: TimeAmount = .seconds(10)
    /// The largest message accepted from the server. Default 16 MiB.
    public var maxMessageSize = 16 << 20

    public init() {}
}

/// Why a ``SocketIOClient`` could not connect or lost its connection.
public enum SocketIOClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL is not `http://host[:port]` or `ws://host[:port]`.
    case invalidURL(String)
    /// The namespace refused the connection with this CONNECT_ERROR payload.
    case refused(JSONValue)
    /// The connection failed or closed: the reason.
    case transport(String)
    /// No answer within the timeout.
    case timeout
    /// The client is not connected.
    case notConnected

    public var description: String {
        switch self {
        case .invalidURL(let url): "invalid server URL \(url)"
        case .refused(let payload): "connection refused: \(payload["message"]?.stringValue ?? payload.description)"
        case .transport(let reason): "connection lost: \(reason)"
        case .timeout: "timed out"
        case .notConnected: "not connected"
        }
    }
}

/// A Socket.IO v5 client over the WebSocket transport, joined to one namespace.
///
/// Handlers run on a network thread, one at a time and in arrival order: they must not block.
///
/// ```swift
/// let client = SocketIOClient(url: "http://127.0.0.1:3000")
/// client.on("message") { args, _ in print(args) }
/// try await client.connect()
/// client.emit("join", "lobby")
/// let reply = try await client.emitWithAck("echo", "hi")
/// client.disconnect()
/// ```
public final class SocketIOClient: Sendable {
    /// The server's base URL.
    public let url: String
    public let configuration: SocketIOClientConfiguration
    private let group: any EventLoopGroup
    private let core: ClientCore

    /// A client of the server at `url` (`http://host:port`).
    public init(
        url: String,
        configuration: SocketIOClientConfiguration = SocketIOClientConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.url = url
        self.configuration = configuration
        self.group = group
        self.core = ClientCore(namespace: configuration.namespace, auth: configuration.auth)
    }

    /// The socket id the server gave, once connected.
    public var id: String? { core.socketID }

    /// Whether the namespace accepted the client and the connection is open.
    public var isConnected: Bool { core.isConnected }

    /// Adds a handler for `event`; `ack` answers the server when it asked for an ack.
    public func on(_ event: String, _ handler: @escaping @Sendable (_ args: [JSONValue], _ ack: Acknowledgement) -> Void) {
        core.on(event, handler)
    }

    /// Adds a handler that sees every incoming event, before the event's own handlers.
    public func onAny(_ handler: @escaping @Sendable (_ event: String, _ args: [JSONValue]) -> Void) {
        core.onAny(handler)
    }

    /// Adds a handler called once when the connection ends, with the reason.
    public func onDisconnect(_ handler: @escaping @Sendable (String) -> Void) {
        core.onDisconnect(handler)
    }

    /// Opens the WebSocket, joins the namespace, and returns once the server accepted.
    ///
    /// - Throws: ``SocketIOClientError``.
    public func connect() async throws {
        let (host, port) = try Self.parse(url)
        let query = "\(configuration.path)?EIO=4&transport=websocket"
        let core = self.core
        let maxSize = configuration.maxMessageSize
        let channel: any Channel
        do {
            channel = try await WebSocketConnector.connect(
                host: host, port: port, uri: query, group: group, maxFrameSize: maxSize,
                timeout: configuration.connectTimeout,
                onFailure: { reason in core.close(reason: reason) },
                handlers: {
                    [
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: maxSize
                        ),
                        ClientFrameHandler(core: core),
                    ]
                }
            )
        } catch {
            throw SocketIOClientError.transport("\(error)")
        }
        try await core.waitForConnect(channel: channel, timeout: configuration.connectTimeout)
    }

    /// Sends an event.
    public func emit(_ event: String, _ args: JSONValue...) {
        core.send(.event(event, args, namespace: configuration.namespace))
    }

    /// Sends an event.
    public func emit(_ event: String, _ args: [JSONValue]) {
        core.send(.event(event, args, namespace: configuration.namespace))
    }

    /// Sends an event and waits for the server's acknowledgement.
    ///
    /// - Throws: ``SocketIOClientError/timeout`` or ``SocketIOClientError/notConnected``.
    public func emitWithAck(_ event: String, _ args: JSONValue..., timeout: TimeAmount = .seconds(10)) async throws -> [JSONValue] {
        try await emitWithAck(event, args, timeout: timeout)
    }

    /// Sends an event and waits for the server's acknowledgement.
    public func emitWithAck(_ event: String, _ args: [JSONValue], timeout: TimeAmount = .seconds(10)) async throws -> [JSONValue] {
        try await core.emitWithAck(event, args, timeout: timeout)
    }

    /// Leaves the namespace and closes the connection.
    public func disconnect() {
        core.disconnect()
    }

    static func parse(_ url: String) throws -> (host: String, port: Int) {
        try WebSocketConnector.parse(url)
    }
}
