import NIOCore
import Testing

@testable import EngineIO

@Suite("Engine.IO v3 payloads and heartbeat")
struct EngineIOv3Tests {
    @Test func stringPayloadCountsUTF16Units() {
        let body = PollingPayloadV3.encodeString([.message("héllo"), EnginePacket(.ping), .message("😀")])
        #expect(String(buffer: body) == "6:4héllo1:23:4😀")
        let binary = PollingPayloadV3.encodeString([.message(binary: ByteBuffer(bytes: [1, 2, 3]))])
        #expect(String(buffer: binary) == "6:b4AQID")
    }

    @Test func stringPayloadDecodes() throws {
        let packets = try PollingPayloadV3.decodeString(ByteBuffer(string: "6:4héllo1:23:4😀6:b4AQID"))
        #expect(packets.count == 4)
        #expect(packets[0].text == "héllo")
        #expect(packets[1].type == .ping)
        #expect(packets[2].text == "😀")
        #expect(packets[3].isBinary && Array(packets[3].wire.readableBytesView) == [1, 2, 3])
    }

    @Test("malformed string payloads are refused", arguments: [
        "", "x:4a", "5:4a", "0:", ":4", "2:4😀", "2:4a1", "1:9", "4:b4!!", "4:b3AA", "9999999999:4",
    ])
    func malformedString(body: String) {
        #expect(throws: EngineDecodingError.self) { try PollingPayloadV3.decodeString(ByteBuffer(string: body)) }
    }

    @Test func binaryPayloadRoundTrips() throws {
        let packets: [EnginePacket] = [.message("a😀é"), .message(binary: ByteBuffer(bytes: [0, 255, 7])), EnginePacket(.pong, "probe")]
        let body = PollingPayloadV3.encodeBinary(packets)
        // The first packet: string (0), length 5 as the digit byte 5, 0xFF, then "4a😀é".
        #expect(Array(body.readableBytesView.prefix(3)) == [0, 5, 0xFF])
        #expect(try PollingPayloadV3.decodeBinary(body) == packets)
    }

    @Test("malformed binary payloads are refused", arguments: [
        [UInt8](), [2, 1, 0xFF, 0x34], [0, 0xFF], [0, 5, 0xFF, 0x34], [1, 2, 0xFF, 3, 1], [0, 1], [0, 10, 0xFF, 0x34],
    ])
    func malformedBinary(bytes: [UInt8]) {
        #expect(throws: EngineDecodingError.self) { try PollingPayloadV3.decodeBinary(ByteBuffer(bytes: bytes)) }
    }

    @Test func clientPingsKeepASessionAliveAndTheirAbsenceEndsIt() {
        let start = NIODeadline.uptimeNanoseconds(5_000_000_000)
        var heartbeat = Heartbeat(pingInterval: .seconds(25), pingTimeout: .seconds(20), now: start, mode: .clientPings)
        #expect(heartbeat.firstTimerDeadline == start + .seconds(45))
        #expect(heartbeat.timerFired(now: start + .seconds(10)) == .schedule(timerAt: start + .seconds(45)))
        let pinged = heartbeat.pingReceived(now: start + .seconds(30))
        #expect(pinged)
        #expect(heartbeat.timerFired(now: start + .seconds(45)) == .schedule(timerAt: start + .seconds(75)))
        let pong = heartbeat.pongReceived(now: start + .seconds(46))
        #expect(!pong, "a v3 server does not wait for pongs")
        #expect(heartbeat.timerFired(now: start + .seconds(75)) == .timedOut)
        let late = heartbeat.pingReceived(now: start + .seconds(80))
        #expect(!late)
    }

    @Test func serverPingModeIgnoresClientPings() {
        var heartbeat = Heartbeat(pingInterval: .seconds(1), pingTimeout: .seconds(1), now: .uptimeNanoseconds(0))
        let answered = heartbeat.pingReceived(now: .uptimeNanoseconds(10))
        #expect(!answered)
    }

    @Test func v3OpenPacketHasNoMaxPayloadAndEIO3IsOptIn() {
        let engine = EngineServer(configuration: EngineConfiguration())
        #expect(engine.openPacket(sid: "s", transport: .polling, version: .v3).text == #"{"sid":"s","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}"#)
        var configuration = EngineConfiguration()
        let refused = EngineRequestKind.classify(
            method: "GET", query: ["EIO": "3", "transport": "polling"], isWebSocketUpgrade: false, origin: nil,
            configuration: configuration, sessionTransport: { _ in nil }
        )
        #expect(refused == .failure(EngineHTTPError(.unsupportedProtocolVersion)))
        configuration.allowEIO3 = true
        let accepted = EngineRequestKind.classify(
            method: "GET", query: ["EIO": "3", "transport": "polling"], isWebSocketUpgrade: false, origin: nil,
            configuration: configuration, sessionTransport: { _ in nil }
        )
        #expect(accepted == .success(.handshake(.polling)))
        #expect(EngineRequestKind.version(of: ["EIO": "2"]) == nil)
    }
}
