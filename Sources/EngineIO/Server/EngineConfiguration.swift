import NIOCore

/// Options of an Engine.IO server. The defaults are those of the reference server.
public struct EngineConfiguration: Sendable {
    /// The path the engine answers on, with a trailing slash. Default `/socket.io/`.
    public var path: String {
        didSet { path = Self.normalise(path) }
    }
    /// How often the server pings each client. Default 25 s.
    public var pingInterval: TimeAmount = .seconds(25)
    /// How long the server waits for a pong before closing a session. Default 20 s.
    public var pingTimeout: TimeAmount = .seconds(20)
    /// How long a polling → WebSocket upgrade may take. Default 10 s.
    public var upgradeTimeout: TimeAmount = .seconds(10)
    /// The largest packet payload (WebSocket message or polling POST body) in bytes that a
    /// client may send; a client that sends more is closed. Default 1,000,000.
    public var maxPayload: Int = 1_000_000
    /// The transports clients may use. Default: both.
    public var transports: Set<EngineTransport> = [.polling, .websocket]
    /// Whether polling sessions may upgrade to WebSocket. Default `true`.
    public var allowUpgrades = true
    /// How many bytes may wait for a client (the polling queue, or the WebSocket's bytes not
    /// yet taken by the kernel) before it counts as left behind and is disconnected, and past
    /// which volatile packets are dropped. Default 4 MiB.
    public var maxBufferedBytes: Int = 4 << 20
    /// The most sessions open at once. A handshake past it, by either transport, is answered
    /// `503 Service Unavailable` with `Retry-After` and error code 6
    /// (``EngineHTTPError/Code/serverFull``), so that a server near the end of its file
    /// descriptors tells new clients to come back rather than failing to accept them. Sessions
    /// opened at the same moment may pass it by a few. Default: no limit.
    public var maxSessions = Int.max
    /// The most sessions open at once from one client address. A handshake past it is answered
    /// `429 Too Many Requests` with `Retry-After` and error code 7
    /// (``EngineHTTPError/Code/tooManyFromAddress``). Clients behind one NAT share an address,
    /// so leave room for them. Default: no limit.
    public var maxSessionsPerAddress = Int.max
    /// The addresses of reverse proxies (`127.0.0.1`, say) whose `X-Forwarded-For` names the
    /// client: for a handshake from one of them, the client's address is the last one in that
    /// header that is not a trusted proxy. From any other peer the header is ignored, so that a
    /// client cannot pass for another. Default: none.
    public var trustedProxies: Set<String> = []
    /// Cross-origin access for browsers on other origins. Default: none.
    public var cors = CORSConfiguration()
    /// Whether Engine.IO v3 clients (socket.io-client 1.x and 2.x) are accepted. Default `false`,
    /// as in the reference server: they are refused with code 5.
    public var allowEIO3 = false
    /// A cookie set on the response that opens a polling session, so that a load balancer can
    /// send the client's later requests to this node (socket.io's `cookie` option). Default: none.
    public var cookie: EngineCookie?

    /// The defaults, served at `path`.
    public init(path: String = "/socket.io/") {
        self.path = Self.normalise(path)
    }

    static func normalise(_ path: String) -> String {
        var path = path.hasPrefix("/") ? path : "/" + path
        if !path.hasSuffix("/") { path += "/" }
        return path
    }
}

/// The cookie of ``EngineConfiguration/cookie``: `name=value; Path=/; HttpOnly; SameSite=Lax`.
public struct EngineCookie: Sendable, Equatable {
    /// The cookie's name, such as `io`.
    public var name: String
    /// Its value; `nil` for the new session's id, as socket.io does. A node name lets a load
    /// balancer route on the cookie without knowing session ids.
    public var value: String?
    public var path = "/"
    public var httpOnly = true
    public var sameSite = "Lax"

    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }

    /// The `Set-Cookie` header's value for a session.
    func header(sessionID: String) -> String {
        "\(name)=\(value ?? sessionID); Path=\(path)\(httpOnly ? "; HttpOnly" : ""); SameSite=\(sameSite)"
    }
}

/// Cross-origin resource sharing for the polling transport, and the Origin check of WebSocket
/// handshakes. Off by default: no CORS headers are sent and any Origin may open a WebSocket.
public struct CORSConfiguration: Sendable, Equatable {
    /// The origins allowed, such as `https://chat.example.com`; `*` allows any origin. Empty
    /// (the default) turns CORS off.
    public var allowedOrigins: [String]
    /// Whether `Access-Control-Allow-Credentials: true` is sent. Default `true`.
    public var allowCredentials: Bool

    public init(allowedOrigins: [String] = [], allowCredentials: Bool = true) {
        self.allowedOrigins = allowedOrigins
        self.allowCredentials = allowCredentials
    }

    /// Whether any origin is configured.
    public var isEnabled: Bool { !allowedOrigins.isEmpty }

    /// Whether a request from `origin` may proceed: always when CORS is off, otherwise only
    /// for a configured origin (a request without Origin is not a browser's and proceeds).
    public func allows(origin: String?) -> Bool {
        guard isEnabled, let origin else { return true }
        return allowedOrigins.contains("*") || allowedOrigins.contains(origin)
    }
}
