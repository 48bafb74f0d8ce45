/// What an HTTP request to the engine path asks for, once checked against the protocol's
/// rules. Pure: the driver supplies the facts and a way to look a session up.
public enum EngineRequestKind: Sendable, Equatable {
    /// A new session over the given transport (a polling GET, or a WebSocket upgrade).
    case handshake(EngineTransport)
    /// A long-poll GET of an existing polling session.
    case poll(sid: String)
    /// A POST carrying packets of an existing polling session.
    case post(sid: String)
    /// A WebSocket opened to upgrade an existing polling session.
    case upgrade(sid: String)
    /// A CORS preflight.
    case preflight

    /// The protocol revision a request names with `EIO`; `nil` for none or another.
    public static func version(of query: [String: String]) -> EngineProtocolVersion? {
        query["EIO"].flatMap(Int.init).flatMap(EngineProtocolVersion.init(rawValue:))
    }

    /// Checks a request against the Engine.IO v4 rules, in the reference server's order:
    /// transport, session, handshake method, protocol version, upgrade header, origin.
    ///
    /// - Parameters:
    ///   - method: the HTTP method, upper case.
    ///   - query: the decoded query parameters.
    ///   - isWebSocketUpgrade: whether the request asks to upgrade to a WebSocket.
    ///   - origin: the request's `Origin` header, if any.
    ///   - configuration: the engine's options.
    ///   - sessionTransport: the transport of the session with this id, or `nil` if there is
    ///     no such session.
    public static func classify(
        method: String,
        query: [String: String],
        isWebSocketUpgrade: Bool,
        origin: String?,
        configuration: EngineConfiguration,
        sessionTransport: (String) -> SessionStateMachine.Phase?
    ) -> Result<EngineRequestKind, EngineHTTPError> {
        if method == "OPTIONS" {
            return configuration.cors.isEnabled ? .success(.preflight) : .failure(EngineHTTPError(.badRequest, "CORS is not enabled"))
        }
        guard let transportName = query["transport"], let transport = EngineTransport(rawValue: transportName),
              configuration.transports.contains(transport)
        else {
            return .failure(EngineHTTPError(.unknownTransport))
        }
        guard let version = version(of: query), version == .v4 || configuration.allowEIO3 else {
            return .failure(EngineHTTPError(.unsupportedProtocolVersion))
        }
        guard configuration.cors.allows(origin: origin) else {
            return .failure(EngineHTTPError(.forbidden))
        }
        if let sid = query["sid"] {
            guard let phase = sessionTransport(sid), phase != .closed else {
                return .failure(EngineHTTPError(.unknownSessionID))
            }
            switch (transport, isWebSocketUpgrade) {
            case (.websocket, true):
                guard configuration.allowUpgrades, phase == .polling else {
                    return .failure(EngineHTTPError(.badRequest))
                }
                return .success(.upgrade(sid: sid))
            case (.websocket, false):
                return .failure(EngineHTTPError(.badRequest))
            case (.polling, _):
                guard phase == .polling || phase == .upgrading else {
                    return .failure(EngineHTTPError(.badRequest))
                }
                switch method {
                case "GET": return .success(.poll(sid: sid))
                case "POST": return .success(.post(sid: sid))
                default: return .failure(EngineHTTPError(.badRequest))
                }
            }
        }
        guard method == "GET" else {
            return .failure(EngineHTTPError(.badHandshakeMethod))
        }
        if transport == .websocket, !isWebSocketUpgrade {
            return .failure(EngineHTTPError(.badRequest))
        }
        return .success(.handshake(transport))
    }
}
