import EngineIO
import NIOCore
import NIOWebSocket
import SocketIO
import Synchronization

/// The protocol a bench client speaks.
enum BenchProtocol: String, Sendable {
    /// The first tutorial's: `login(name)`, `join(room)`, `chat(text)` → `message {user, message}`.
    /// Any Socket.IO chat server written from that tutorial can be measured.
    case tutorial
    /// Parley's native API: `room:join` (acknowledged), `message:send` → `message`.
    case native
}

/// What one bench connection is: its index, its room, and how it speaks.
struct BenchClientSpec: Sendable {
    let index: Int
    let room: String
    let proto: BenchProtocol
    /// Whether to join the room (the `connect` scenario only holds connections).
    let joins: Bool
}

/// One load-generating connection over the WebSocket transport. The Engine.IO and Socket.IO
/// packets it sends are built with the project's codecs; what it receives is read without
/// decoding JSON: a message counts when its frame carries `bench STEP SEQ MICROS`, so that one
/// core can take hundreds of thousands of deliveries a second.
final class BenchConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let spec: BenchClientSpec
    private let tally: StepTally
    /// Called once on the event loop: `nil` once joined (ready to send and receive), or why not.
    /// Returns whether the connection is taken into the run: one that became ready after the
    /// worker gave up on it is closed and counts nothing.
    private let onReady: @Sendable (BenchConnection, String?) -> Bool
    private var context: ChannelHandlerContext?
    private var ready = false
    /// Whether this connection's deliveries count (it was taken into the run).
    private var counted = false

    init(spec: BenchClientSpec, tally: StepTally, onReady: @escaping @Sendable (BenchConnection, String?) -> Bool) {
        self.spec = spec
        self.tally = tally
        self.onReady = onReady
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            receive(frame.unmaskedData)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            fail("the server closed the WebSocket")
            context.close(promise: nil)
        default:
            break
        }
    }

    private func receive(_ bytes: ByteBuffer) {
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        switch first {
        case UInt8(ascii: "4"):  // message
            guard let second = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) else { return }
            switch second {
            case UInt8(ascii: "2"): if counted, let mark = Self.benchMark(in: bytes) { tally.received(mark) }
            case UInt8(ascii: "0"): connected()
            case UInt8(ascii: "3"): if !ready { becameReady() }  // the room:join acknowledgement
            case UInt8(ascii: "4"): fail("connection refused: \(String(buffer: bytes))")
            case UInt8(ascii: "1"): fail("disconnected by the server")
            default: break
            }
        case UInt8(ascii: "0"):  // open: join the main namespace
            var connect = SocketIOPacket(.connect)
            if spec.proto == .native { connect.data = ["name": .string("bench\(spec.index)")] }
            write(connect.encode())
        case UInt8(ascii: "2"):  // ping
            write([EnginePacket(.pong)])
        case UInt8(ascii: "1"):
            fail("the server closed the session")
        default:
            break
        }
    }

    private func connected() {
        guard spec.joins else { return becameReady() }
        switch spec.proto {
        case .tutorial:
            write(SocketIOPacket.event("login", [.string("bench\(spec.index)")]).encode())
            write(SocketIOPacket.event("join", [.string(spec.room)]).encode())
            // The tutorial's join has no answer; the server handles a socket's packets in order.
            becameReady()
        case .native:
            write(SocketIOPacket.event("room:join", [["room": .string(spec.room)]], id: 0).encode())
        }
    }

    private func becameReady() {
        guard !ready else { return }
        ready = true
        counted = onReady(self, nil)
        if !counted { context?.close(promise: nil) }
    }

    private func fail(_ reason: String) {
        guard !ready else { return }
        ready = true
        _ = onReady(self, reason)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail("the connection closed")
        if counted { tally.disconnected() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("\(error)")
        context.close(promise: nil)
    }

    /// Sends a chat message to the connection's room. Call on the connection's event loop.
    func sendChat(_ text: String) {
        switch spec.proto {
        case .tutorial: write(SocketIOPacket.event("chat", [.string(text)]).encode())
        case .native: write(SocketIOPacket.event("message:send", [["room": .string(spec.room), "text": .string(text)]]).encode())
        }
    }

    /// Sends the next message of `step`, recorded in `tally` as expected by every member of the
    /// connection's room, stamped with its send time. Call on the connection's event loop.
    func sendCounted(step: Int, members: [String: Int], tally: StepTally) {
        let sequence = tally.sent(expected: members[spec.room] ?? 0)
        sendChat(BenchMark(step: step, sequence: sequence, sentMicros: BenchMark.nowMicros()).text)
    }

    /// Closes the connection. Call on its event loop.
    func close() {
        context?.close(promise: nil)
    }

    private func write(_ packets: [EnginePacket]) {
        guard let context else { return }
        for packet in packets {
            let frame = WebSocketFrame(fin: true, opcode: packet.isBinary ? .binary : .text, maskKey: .random(), data: packet.wire)
            context.write(wrapOutboundOut(frame), promise: nil)
        }
        context.flush()
    }

    /// The `bench STEP SEQ MICROS` mark in a frame, if it has one.
    static func benchMark(in bytes: ByteBuffer) -> BenchMark? {
        bytes.withUnsafeReadableBytes { raw -> BenchMark? in
            let count = raw.count
            var index = 0
            // "bench " followed by a digit.
            while index + 7 <= count {
                if raw[index] == UInt8(ascii: "b"), raw[index + 1] == UInt8(ascii: "e"), raw[index + 2] == UInt8(ascii: "n"),
                   raw[index + 3] == UInt8(ascii: "c"), raw[index + 4] == UInt8(ascii: "h"), raw[index + 5] == UInt8(ascii: " "),
                   raw[index + 6] >= UInt8(ascii: "0"), raw[index + 6] <= UInt8(ascii: "9") {
                    break
                }
                index += 1
            }
            guard index + 7 <= count else { return nil }
            index += 6
            var numbers: (Int64, Int64, Int64) = (0, 0, 0)
            for slot in 0..<3 {
                var value: Int64 = 0
                var digits = 0
                while index < count, raw[index] >= UInt8(ascii: "0"), raw[index] <= UInt8(ascii: "9") {
                    value = value &* 10 &+ Int64(raw[index] &- UInt8(ascii: "0"))
                    index += 1
                    digits += 1
                }
                guard digits > 0, digits < 19 else { return nil }
                switch slot {
                case 0: numbers.0 = value
                case 1: numbers.1 = value
                default: numbers.2 = value
                }
                if slot < 2 {
                    guard index < count, raw[index] == UInt8(ascii: " ") else { return nil }
                    index += 1
                }
            }
            return BenchMark(step: Int(numbers.0), sequence: Int(numbers.1), sentMicros: numbers.2)
        }
    }
}

/// The mark a bench message carries: its step, its number within the step, and when it was sent
/// (microseconds of the monotonic clock, which all processes of the machine share).
struct BenchMark: Equatable {
    let step: Int
    let sequence: Int
    let sentMicros: Int64

    var text: String { "bench \(step) \(sequence) \(sentMicros)" }

    static func nowMicros() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1000) }
}

/// What was sent and what arrived in the current step, message by message.
final class StepTally: Sendable {
    struct State {
        var step = -1
        /// By sequence number: how many deliveries each message should have, and has had.
        var expected: [Int32] = []
        var received: [Int32] = []
        var sent = 0
        var expectedTotal = 0
        var receivedTotal = 0
        /// Messages that have had all their expected deliveries (duplicates do not make up for
        /// a missing one).
        var complete = 0
        /// Deliveries of earlier steps that came after their step ended, or malformed ones.
        var stray = 0
        var histogram = LatencyHistogram()
        var lastReceiptMicros: Int64 = 0
        var disconnects = 0
    }

    private let state = Mutex(State())

    /// Starts counting step `step`; what arrives for other steps is stray.
    func begin(step: Int) {
        state.withLock { state in
            let disconnects = state.disconnects
            state = State()
            state.step = step
            state.disconnects = disconnects
        }
    }

    /// Records a message sent to `members` receivers; returns its sequence number.
    func sent(expected members: Int) -> Int {
        state.withLock { state in
            let sequence = state.sent
            state.sent += 1
            state.expected.append(Int32(members))
            state.received.append(0)
            if members == 0 { state.complete += 1 }
            state.expectedTotal += members
            return sequence
        }
    }

    func received(_ mark: BenchMark) {
        let now = BenchMark.nowMicros()
        state.withLock { state in
            guard mark.step == state.step, state.received.indices.contains(mark.sequence) else {
                state.stray += 1
                return
            }
            state.received[mark.sequence] += 1
            if state.received[mark.sequence] == state.expected[mark.sequence] { state.complete += 1 }
            state.receivedTotal += 1
            state.histogram.record(micros: now - mark.sentMicros)
            state.lastReceiptMicros = now
        }
    }

    func disconnected() {
        state.withLock { $0.disconnects += 1 }
    }

    func read<T>(_ body: (State) -> T) -> T {
        state.withLock { body($0) }
    }
}
