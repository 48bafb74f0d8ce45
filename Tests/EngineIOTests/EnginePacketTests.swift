import NIOCore
import Testing

@testable import EngineIO

@Suite("Engine.IO packets and polling payloads")
struct EnginePacketTests {
    @Test("every text packet type round-trips through a WebSocket text frame", arguments: EnginePacketType.allCases)
    func textRoundTrip(type: EnginePacketType) throws {
        let packet = EnginePacket(type, "héllo ☃")
        #expect(String(buffer: packet.wire) == "\(type.rawValue)héllo ☃")
        let decoded = try EnginePacket.decode(textFrame: packet.wire)
        #expect(decoded == packet)
        #expect(decoded.type == type)
        #expect(decoded.text == "héllo ☃")
    }

    @Test func binaryMessageKeepsRawBytes() {
        let packet = EnginePacket.message(binary: ByteBuffer(bytes: [1, 2, 3]))
        #expect(packet.isBinary)
        #expect(packet.type == .message)
        #expect(Array(packet.wire.readableBytesView) == [1, 2, 3])
        #expect(Array(packet.payload.readableBytesView) == [1, 2, 3])
    }

    @Test func messageBuiltInPlace() {
        let packet = EnginePacket.message { $0.writeString("2[\"x\"]") }
        #expect(String(buffer: packet.wire) == "42[\"x\"]")
        #expect(packet.text == "2[\"x\"]")
    }

    @Test("malformed text frames are refused", arguments: [
        [UInt8](), Array("7".utf8), Array("x".utf8), Array("/0".utf8), [UInt8(ascii: "4"), 0xFF, 0xFE], [UInt8(ascii: "4"), 0xC3],
        [UInt8(ascii: "4"), 0xED, 0xA0, 0x80], // UTF-8-encoded surrogate
        [UInt8(ascii: "4"), 0xC0, 0xAF], // overlong '/'
    ])
    func malformedFrames(bytes: [UInt8]) {
        #expect(throws: EngineDecodingError.self) { try EnginePacket.decode(textFrame: ByteBuffer(bytes: bytes)) }
    }

    @Test func pollingEncodesWithRecordSeparatorAndBase64() {
        let body = PollingPayload.encode([
            EnginePacket.message("hello"), EnginePacket(.ping), EnginePacket.message(binary: ByteBuffer(bytes: [1, 2, 3, 4])),
        ])
        #expect(String(buffer: body) == "4hello\u{1e}2\u{1e}bAQIDBA==")
    }

    @Test func pollingDecodesMixedPayload() throws {
        let packets = try PollingPayload.decode(ByteBuffer(string: "4hello\u{1e}3\u{1e}bAQIDBA==\u{1e}4€"))
        #expect(packets.count == 4)
        #expect(packets[0] == .message("hello"))
        #expect(packets[1].type == .pong)
        #expect(packets[2].isBinary && Array(packets[2].wire.readableBytesView) == [1, 2, 3, 4])
        #expect(packets[3].text == "€")
    }

    @Test("malformed polling bodies are refused", arguments: [
        "", "\u{1e}", "4a\u{1e}", "4a\u{1e}\u{1e}4b", "9", "b!!!!", "bAQI=D", "x4",
    ])
    func malformedPolling(body: String) {
        #expect(throws: EngineDecodingError.self) { try PollingPayload.decode(ByteBuffer(string: body)) }
    }

    @Test func pollingRefusesInvalidUTF8() {
        var body = ByteBuffer(string: "4ok\u{1e}4")
        body.writeBytes([0xFF])
        #expect(throws: EngineDecodingError.self) { try PollingPayload.decode(body) }
    }

    @Test("base64 round-trips every length", arguments: 0..<12)
    func base64RoundTrip(length: Int) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let encoded = Base64.encode(bytes)
        #expect(encoded.count % 4 == 0)
        #expect(Base64.decode(Array(encoded.utf8)) == bytes)
    }

    @Test func base64KnownValuesAndErrors() {
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.decode(Array("Zm8".utf8)) == Array("fo".utf8))
        #expect(Base64.decode(Array("Z".utf8)) == nil)
        #expect(Base64.decode(Array("Zm8=Zg==".utf8)) == nil)
        #expect(Base64.decode(Array("Zm-8".utf8)) == nil)
    }
}
