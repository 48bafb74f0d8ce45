import Testing

@testable import EngineIO

@Suite("Engine.IO request rules and HTTP errors")
struct EngineRequestTests {
    func classify(
        _ query: [String: String], method: String = "GET", upgrade: Bool = false, origin: String? = nil,
        configuration: EngineConfiguration = EngineConfiguration(), sessions: [String: SessionStateMachine.Phase] = [:]
    ) -> Result<EngineRequestKind, EngineHTTPError> {
        EngineRequestKind.classify(
            method: method, query: query, isWebSocketUpgrade: upgrade, origin: origin,
            configuration: configuration, sessionTransport: { sessions[$0] }
        )
    }

    @Test func handshakes() {
        #expect(classify(["EIO": "4", "transport": "polling"]) == .success(.handshake(.polling)))
        #expect(classify(["EIO": "4", "transport": "websocket"], upgrade: true) == .success(.handshake(.websocket)))
    }

    @Test func errorCodes() {
        #expect(classify(["EIO": "4"]) == .failure(EngineHTTPError(.unknownTransport)))
        #expect(classify(["EIO": "4", "transport": "carrier-pigeon"]) == .failure(EngineHTTPError(.unknownTransport)))
        #expect(classify(["EIO": "4", "transport": "polling", "sid": "nope"]) == .failure(EngineHTTPError(.unknownSessionID)))
        #expect(classify(["EIO": "4", "transport": "polling"], method: "POST") == .failure(EngineHTTPError(.badHandshakeMethod)))
        #expect(classify(["EIO": "4", "transport": "websocket"]) == .failure(EngineHTTPError(.badRequest)))
        #expect(classify(["EIO": "3", "transport": "polling"]) == .failure(EngineHTTPError(.unsupportedProtocolVersion)))
        #expect(classify(["transport": "polling"]) == .failure(EngineHTTPError(.unsupportedProtocolVersion)))
        var cors = EngineConfiguration()
        cors.cors = CORSConfiguration(allowedOrigins: ["https://good.example"])
        #expect(classify(["EIO": "4", "transport": "websocket"], upgrade: true, origin: "https://evil.example", configuration: cors) == .failure(EngineHTTPError(.forbidden)))
        #expect(classify(["EIO": "4", "transport": "websocket"], upgrade: true, origin: "https://good.example", configuration: cors) == .success(.handshake(.websocket)))
    }

    @Test func disabledTransportIsUnknown() {
        var configuration = EngineConfiguration()
        configuration.transports = [.websocket]
        #expect(classify(["EIO": "4", "transport": "polling"], configuration: configuration) == .failure(EngineHTTPError(.unknownTransport)))
    }

    @Test func sessionRequests() {
        let sessions: [String: SessionStateMachine.Phase] = ["p": .polling, "w": .websocket, "u": .upgrading]
        #expect(classify(["EIO": "4", "transport": "polling", "sid": "p"], sessions: sessions) == .success(.poll(sid: "p")))
        #expect(classify(["EIO": "4", "transport": "polling", "sid": "p"], method: "POST", sessions: sessions) == .success(.post(sid: "p")))
        #expect(classify(["EIO": "4", "transport": "polling", "sid": "p"], method: "PUT", sessions: sessions) == .failure(EngineHTTPError(.badRequest)))
        #expect(classify(["EIO": "4", "transport": "websocket", "sid": "p"], upgrade: true, sessions: sessions) == .success(.upgrade(sid: "p")))
        // A session that already upgraded cannot poll or upgrade again.
        #expect(classify(["EIO": "4", "transport": "polling", "sid": "w"], sessions: sessions) == .failure(EngineHTTPError(.badRequest)))
        #expect(classify(["EIO": "4", "transport": "websocket", "sid": "w"], upgrade: true, sessions: sessions) == .failure(EngineHTTPError(.badRequest)))
        // While upgrading, polling still works.
        #expect(classify(["EIO": "4", "transport": "polling", "sid": "u"], sessions: sessions) == .success(.poll(sid: "u")))
    }

    @Test func errorBodiesAreTheReferenceJSON() {
        #expect(EngineHTTPError(.unknownTransport).json == #"{"code":0,"message":"Transport unknown"}"#)
        #expect(EngineHTTPError(.unknownSessionID).json == #"{"code":1,"message":"Session ID unknown"}"#)
        #expect(EngineHTTPError(.badHandshakeMethod).json == #"{"code":2,"message":"Bad handshake method"}"#)
        #expect(EngineHTTPError(.badRequest).json == #"{"code":3,"message":"Bad request"}"#)
        #expect(EngineHTTPError(.forbidden).json == #"{"code":4,"message":"Forbidden"}"#)
        #expect(EngineHTTPError(.unsupportedProtocolVersion).json == #"{"code":5,"message":"Unsupported protocol version"}"#)
        #expect(EngineHTTPError(.forbidden).status == 403)
        #expect(EngineHTTPError(.badRequest, "a\"b\n").json == #"{"code":3,"message":"a\"b\u000a"}"#)
    }

    @Test func uriSplitting() {
        let (path, query) = URIComponents.split("/socket.io/?EIO=4&transport=polling&t=N%2Fx+y&flag")
        #expect(path == "/socket.io/")
        #expect(query == ["EIO": "4", "transport": "polling", "t": "N/x y", "flag": ""])
        // No query; a value holding `=`; empty pairs; an encoded `&`; text beyond ASCII.
        #expect(URIComponents.split("/only/path") == ("/only/path", [:]))
        let (other, fields) = URIComponents.split("/caf%C3%A9/ü?k=v=w&&=x&a%26b=%E2%9C%93&ü=ö")
        #expect(other == "/café/ü")
        #expect(fields == ["k": "v=w", "": "x", "a&b": "✓", "ü": "ö"])
    }

    @Test func openPacketAdvertisesOptions() {
        var configuration = EngineConfiguration(path: "engine")
        #expect(configuration.path == "/engine/")
        configuration.pingInterval = .milliseconds(300)
        configuration.maxPayload = 1234
        let engine = EngineServer(configuration: configuration)
        #expect(engine.openPacket(sid: "abc", transport: .polling).text
            == #"{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":20000,"maxPayload":1234}"#)
        #expect(engine.openPacket(sid: "abc", transport: .websocket).text.contains(#""upgrades":[]"#))
    }
}
