import EngineIO
import NIOCore
import Testing

@testable import SocketIO

@Suite("Socket.IO packet codec")
struct SocketIOPacketTests {
    func wire(_ packet: SocketIOPacket) -> [String] {
        packet.encode().map { $0.isBinary ? "<\(Array($0.wire.readableBytesView))>" : String(buffer: $0.wire) }
    }

    @Test func encodesEveryType() {
        #expect(wire(SocketIOPacket(.connect)) == ["40"])
        #expect(wire(SocketIOPacket(.connect, namespace: "/admin", data: ["token": "123"])) == [#"40/admin,{"token":"123"}"#])
        #expect(wire(SocketIOPacket(.connect, data: ["sid": "abc"])) == [#"40{"sid":"abc"}"#])
        #expect(wire(SocketIOPacket(.disconnect, namespace: "/admin")) == ["41/admin,"])
        #expect(wire(.event("hello", [1])) == [#"42["hello",1]"#])
        #expect(wire(.event("hello", ["x"], namespace: "/admin", id: 12)) == [#"42/admin,12["hello","x"]"#])
        #expect(wire(SocketIOPacket(.ack, id: 13, data: ["bar"])) == [#"4313["bar"]"#])
        #expect(wire(SocketIOPacket(.connectError, data: ["message": "Invalid namespace"])) == [#"44{"message":"Invalid namespace"}"#])
    }

    @Test func encodesBinaryAsAttachmentsInOrder() {
        let event = SocketIOPacket.event("upload", [.binary(ByteBuffer(bytes: [1, 2])), ["nested": .binary(ByteBuffer(bytes: [3]))]], namespace: "/files", id: 7)
        #expect(wire(event) == [
            #"452-/files,7["upload",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]"#,
            "<[1, 2]>", "<[3]>",
        ])
        let ack = SocketIOPacket(.ack, id: 3, data: [.binary(ByteBuffer(bytes: [9]))])
        #expect(wire(ack) == [#"461-3[{"_placeholder":true,"num":0}]"#, "<[9]>"])
    }

    @Test func decodesEveryType() throws {
        #expect(try SocketIOPacket.decode("0").packet == SocketIOPacket(.connect))
        #expect(try SocketIOPacket.decode(#"0/admin,{"token":"x"}"#).packet == SocketIOPacket(.connect, namespace: "/admin", data: ["token": "x"]))
        #expect(try SocketIOPacket.decode("1/admin,").packet == SocketIOPacket(.disconnect, namespace: "/admin"))
        #expect(try SocketIOPacket.decode("1").packet == SocketIOPacket(.disconnect))
        let event = try SocketIOPacket.decode(#"2/chat,99["msg",{"a":1}]"#).packet
        #expect(event.eventName == "msg")
        #expect(event.id == 99)
        #expect(event.namespace == "/chat")
        #expect(event.arguments == [["a": 1]])
        #expect(try SocketIOPacket.decode(#"31["ok"]"#).packet == SocketIOPacket(.ack, id: 1, data: ["ok"]))
        #expect(try SocketIOPacket.decode(#"4{"message":"no"}"#).packet.kind == .connectError)
        let binary = try SocketIOPacket.decode(#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        #expect(binary.attachments == 2)
        #expect(binary.packet.kind == .binaryEvent)
        #expect(try SocketIOPacket.decode("2[7]").packet.eventName == "7")
    }

    /// Socket.IO packet texts, as carried after the Engine.IO `4`.
    @Test("malformed packets are refused", arguments: [
        "", "7", "x", "2", "2{}", "2[]", "2[1", "2[\"connect\"]", "2[null]", "2[{}]", "3", "3{}", "1[1]",
        "0[]", "0\"x\"", "4", "4[1]", "5[\"x\"]", "5-[\"x\"]", "a-[\"x\"]", "51x[\"x\"]", "599-[\"x\"]",
        "2/admin,[\"x\"", "299999999999999999999999[\"x\"]",
    ])
    func malformed(text: String) {
        #expect(throws: SocketIODecodingError.self) { try SocketIOPacket.decode(text) }
    }

    @Test("lenient where the reference parser is", arguments: ["2 [\"x\"]", "2[\"x\"] ", "0/admin"])
    func lenient(text: String) throws {
        _ = try SocketIOPacket.decode(text)
    }

    @Test func assemblerRebuildsBinaryPackets() throws {
        var assembler = PacketAssembler()
        #expect(try assembler.feed(.text(#"52-7["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#)) == nil)
        #expect(assembler.isAssembling)
        #expect(try assembler.feed(.binary(ByteBuffer(bytes: [0]))) == nil)
        let packet = try #require(try assembler.feed(.binary(ByteBuffer(bytes: [1]))))
        #expect(packet.arguments == [.binary(ByteBuffer(bytes: [1])), .binary(ByteBuffer(bytes: [0]))])
        #expect(packet.id == 7)
        #expect(!assembler.isAssembling)
        #expect(try assembler.feed(.text(#"2["plain"]"#))?.eventName == "plain")
    }

    @Test func assemblerRefusesOutOfOrderInput() throws {
        var unexpected = PacketAssembler()
        #expect(throws: SocketIODecodingError.self) { try unexpected.feed(.binary(ByteBuffer(bytes: [1]))) }
        var interrupted = PacketAssembler()
        _ = try interrupted.feed(.text(#"51-["up",{"_placeholder":true,"num":0}]"#))
        #expect(throws: SocketIODecodingError.self) { try interrupted.feed(.text(#"2["x"]"#)) }
        var badIndex = PacketAssembler()
        _ = try badIndex.feed(.text(#"51-["up",{"_placeholder":true,"num":5}]"#))
        #expect(throws: SocketIODecodingError.self) { try badIndex.feed(.binary(ByteBuffer(bytes: [1]))) }
        var tooMany = PacketAssembler(maxAttachments: 2)
        #expect(throws: SocketIODecodingError.self) { try tooMany.feed(.text(#"53-["up"]"#)) }
    }

    @Test func roundTripsThroughTheAssembler() throws {
        let original = SocketIOPacket.event("mix", ["text", 2, .binary(ByteBuffer(bytes: [5, 6])), ["deep": [.binary(ByteBuffer(bytes: [7]))]]], namespace: "/n", id: 3)
        var assembler = PacketAssembler()
        var result: SocketIOPacket?
        for packet in original.encode() {
            result = try assembler.feed(packet.isBinary ? .binary(packet.wire) : .text(packet.text))
        }
        var expected = original
        expected.kind = .binaryEvent
        #expect(result == expected)
    }
}
