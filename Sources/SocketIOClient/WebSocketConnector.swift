import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Opens a WebSocket to an Engine.IO server: the TCP connection, the HTTP upgrade request, and
/// then frames to the handlers you give. ``SocketIOClient`` is built on it; so is `parley bench`,
/// which needs thousands of lean connections on one thread.
public enum WebSocketConnector {
    /// Connects to `host:port`, asks for an upgrade of `uri`, and once the server agrees adds
    /// `handlers` (which receive ``WebSocketFrame``s) to the pipeline. Frames larger than
    /// `maxFrameSize` close the connection. `onFailure` is called with a reason when the upgrade is
    /// refused or the connection ends before it.
    ///
    /// - Returns: the channel, as soon as the TCP connection is up (before the upgrade).
    public static func connect(
        host: String,
        port: Int,
        uri: String,
        group: any EventLoopGroup,
        maxFrameSize: Int,
        timeout: TimeAmount,
        onFailure: @escaping @Sendable (String) -> Void,
        handlers: @escaping @Sendable () -> [any ChannelHandler]
    ) async throws -> any Channel {
        try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketClientUpgrader(
                        maxFrameSize: maxFrameSize,
                        automaticErrorHandling: true,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandlers(handlers())
                            }
                        }
                    )
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.removeHandler(name: UpgradeRequestHandler.name, promise: nil)
                        })
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        UpgradeRequestHandler(host: host, port: port, uri: uri, onFailure: onFailure),
                        name: UpgradeRequestHandler.name
                    )
                }
            }
            .connect(host: host, port: port)
            .get()
    }

    /// The host and port of `http://host[:port]` or `ws://host[:port]` (a path is ignored).
    public static func parse(_ url: String) throws(SocketIOClientError) -> (host: String, port: Int) {
        var rest = Substring(url)
        var defaultPort = 80
        if rest.hasPrefix("http://") {
            rest = rest.dropFirst(7)
        } else if rest.hasPrefix("ws://") {
            rest = rest.dropFirst(5)
        } else {
            defaultPort = 0
        }
        guard defaultPort != 0 else { throw SocketIOClientError.invalidURL(url) }
        let authority = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
        guard let host = parts.first, !host.isEmpty, parts.count <= 2 else { throw SocketIOClientError.invalidURL(url) }
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { throw SocketIOClientError.invalidURL(url) }
            return (String(host), port)
        }
        return (String(host), defaultPort)
    }
}
