import Foundation
import NIOCore
import ParleyCluster
import SocketIO
import Testing

@Suite("Cluster messages")
struct ClusterMessageTests {
    /// A broadcast with binary attachments crosses the bus as JSON and comes back as the same
    /// packet, with the same selection of sockets, for this node's sockets only.
    @Test func aBinaryBroadcastRoundTripsThroughJSON() throws {
        let bytes = ByteBuffer(bytes: [0, 1, 2, 255, 254])
        let packet = SocketIOPacket(.event, namespace: "/chat", data: ["photo", ["name": "a.png", "bytes": .binary(bytes)], .binary(ByteBuffer(bytes: [9]))])
        let options = BroadcastOptions(rooms: ["r1", "r2"], except: ["s1"], volatile: true)
        let message = ClusterMessage.broadcast(packet, namespace: "/chat", options: options)
        #expect(message.attachments.count == 2)
        let decoded = try JSONDecoder().decode(ClusterMessage.self, from: JSONEncoder().encode(message))
        #expect(decoded == message)
        #expect(try decoded.decodedPacket() == packet.encodedForm())
        #expect(decoded.options == BroadcastOptions(rooms: ["r1", "r2"], except: ["s1"], volatile: true, local: true))
    }

    /// A malformed packet or attachment decodes to nothing instead of a wrong packet.
    @Test func aMalformedBroadcastDecodesToNothing() throws {
        var message = ClusterMessage.broadcast(SocketIOPacket(.event, data: ["hi", .binary(ByteBuffer(bytes: [1]))]), namespace: "/", options: BroadcastOptions())
        message.attachments = ["not base64!"]
        #expect(message.decodedPacket() == nil)
        message.attachments = []
        #expect(message.decodedPacket() == nil)
        message.packet = "9garbage"
        #expect(message.decodedPacket() == nil)
    }
}

extension SocketIOPacket {
    /// The packet as a receiver reassembles it (binary kinds and all).
    func encodedForm() throws -> SocketIOPacket? {
        var assembler = PacketAssembler()
        var result: SocketIOPacket?
        for part in encode() {
            result = try assembler.feed(part.isBinary ? .binary(part.payload) : .text(part.text))
        }
        return result
    }
}
