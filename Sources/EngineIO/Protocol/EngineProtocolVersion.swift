/// The Engine.IO protocol revision a client speaks, from the `EIO` query parameter.
public enum EngineProtocolVersion: Int, Sendable, Hashable, CaseIterable {
    /// Engine.IO v3 (socket.io-client 1.x and 2.x): length-prefixed polling payloads, pings sent
    /// by the client, binary WebSocket frames that start with the packet type.
    case v3 = 3
    /// Engine.IO v4 (socket.io-client 3.x and later): record-separated polling payloads, pings
    /// sent by the server.
    case v4 = 4
}
