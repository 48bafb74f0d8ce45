import EngineIO
import NIOCore
import NIOWebSocket
import SocketIO
import Synchronization

/// The client's state: one connection, one namespace, handlers and pending acks.
final class ClientCore: Sendable {
    let namespace: String
    let auth: JSONObject

    private struct PendingAck {
        let continuation: CheckedContinuation<[JSONValue], any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var channel: (any Channel)?
        var socketID: String?
        var closed = false
        var connectWaiter: CheckedContinuation<Void, any Error>?
        var connectResult: Result<Void, SocketIOClientError>?
        var handlers: [String: [@Sendable ([JSONValue], Acknowledgement) -> Void]] = [:]
        var anyHandlers: [@Sendable (String, [JSONValue]) -> Void] = []
        var disconnectHandlers: [@Sendable (String) -> Void] = []
        var pendingAcks: [Int: PendingAck] = [:]
        var nextAckID = 0
        var assembler = PacketAssembler()
    }

    private let state = Mutex(State())

    init(namespace: String, auth: JSONObject) {
        self.namespace = namespace
        self.auth = auth
    }

    var socketID: String? { state.withLock { $0.socketID } }
    var isConnected: Bool { state.withLock { $0.socketID != nil && !$0.closed } }

    func on(_ event: String, _ handler: @escaping @Sendable ([JSONValue], Acknowledgement) -> Void) {
        state.withLock { $0.handlers[event, default: []].append(handler) }
    }

    func onAny(_ handler: @escaping @Sendable (String, [JSONValue]) -> Void) {
        state.withLock { $0.anyHandlers.append(handler) }
    }

    func onDisconnect(_ handler: @escaping @Sendable (String) -> Void) {
        state.withLock { $0.disconnectHandlers.append(handler) }
    }

    // MARK: Connecting

    func waitForConnect(channel: any Channel, timeout: TimeAmount) async throws {
        state.withLock { $0.channel = channel }
        let timer = channel.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self else { return }
            self.settleConnect(.failure(.timeout))
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let settled = state.withLock { state -> Result<Void, SocketIOClientError>? in
                if let result = state.connectResult { return result }
                state.connectWaiter = continuation
                return nil
            }
            if let settled { continuation.resume(with: settled.mapError { $0 as any Error }) }
        }
    }

    private func settleConnect(_ result: Result<Void, SocketIOClientError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard state.connectResult == nil else { return nil }
            state.connectResult = result
            defer { state.connectWaiter = nil }
            return state.connectWaiter
        }
        waiter?.resume(with: result.mapError { $0 as any Error })
        if case .failure(let error) = result { close(reason: "\(error)") }
    }

    // MARK: Receiving

    /// Handles one Engine.IO packet from the server.
    func receive(_ packet: EnginePacket, channel: any Channel) {
        switch packet.type {
        case .open:
            var connect = SocketIOPacket(.connect, namespace: namespace)
            if auth.count > 0 { connect.data = .object(auth) }
            write(connect.encode(), to: channel)
        case .ping:
            write([EnginePacket(.pong)], to: channel)
        case .close:
            close(reason: "transport close")
        case .message:
            receive(packet.isBinary ? .binary(packet.wire) : .text(packet.text))
        case .pong, .upgrade, .noop:
            break
        }
    }

    private func receive(_ message: EngineMessage) {
        let decoded = state.withLock { state in
            Result { () throws(SocketIODecodingError) -> SocketIOPacket? in try state.assembler.feed(message) }
        }
        guard case .success(let packet?) = decoded else {
            if case .failure(let error) = decoded { close(reason: "parse error: \(error.reason)") }
            return
        }
        guard packet.namespace == namespace else { return }
        switch packet.kind {
        case .connect:
            let sid = packet.data?["sid"]?.stringValue
            state.withLock { $0.socketID = sid }
            settleConnect(.success(()))
        case .connectError:
            settleConnect(.failure(.refused(packet.data ?? .null)))
        case .disconnect:
            close(reason: "io server disconnect")
        case .event, .binaryEvent:
            guard let name = packet.eventName else { return }
            let (handlers, anyHandlers) = state.withLock { ($0.handlers[name] ?? [], $0.anyHandlers) }
            let ack = Acknowledgement.answering(packet) { [weak self] reply in self?.send(reply) }
            for handler in anyHandlers { handler(name, packet.arguments) }
            for handler in handlers { handler(packet.arguments, ack) }
        case .ack, .binaryAck:
            guard let id = packet.id else { return }
            resolveAck(id, .success(packet.arguments))
        }
    }

    // MARK: Sending

    func send(_ packet: SocketIOPacket) {
        guard let channel = state.withLock({ $0.closed ? nil : $0.channel }) else { return }
        write(packet.encode(), to: channel)
    }

    private func write(_ packets: [EnginePacket], to channel: any Channel) {
        channel.eventLoop.execute {
            for packet in packets {
                let frame = WebSocketFrame(
                    fin: true, opcode: packet.isBinary ? .binary : .text, maskKey: .random(), data: packet.wire
                )
                channel.write(frame, promise: nil)
            }
            channel.flush()
        }
    }

    func emitWithAck(_ event: String, _ args: [JSONValue], timeout: TimeAmount) async throws -> [JSONValue] {
        try await withCheckedThrowingContinuation { continuation in
            let registered = state.withLock { state -> (Int, any Channel)? in
                guard !state.closed, state.socketID != nil, let channel = state.channel else { return nil }
                let id = state.nextAckID
                state.nextAckID += 1
                state.pendingAcks[id] = PendingAck(continuation: continuation)
                return (id, channel)
            }
            guard let (id, channel) = registered else {
                continuation.resume(throwing: SocketIOClientError.notConnected)
                return
            }
            let timer = channel.eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self else { return }
                self.resolveAck(id, .failure(SocketIOClientError.timeout))
            }
            state.withLock { $0.pendingAcks[id]?.timer = timer }
            write(SocketIOPacket.event(event, args, namespace: namespace, id: id).encode(), to: channel)
        }
    }

    private func resolveAck(_ id: Int, _ result: Result<[JSONValue], any Error>) {
        guard let pending = state.withLock({ $0.pendingAcks.removeValue(forKey: id) }) else { return }
        pending.timer?.cancel()
        pending.continuation.resume(with: result)
    }

    // MARK: Closing

    func disconnect() {
        if isConnected { send(SocketIOPacket(.disconnect, namespace: namespace)) }
        close(reason: "io client disconnect")
    }

    /// Ends the connection once: pending acks fail, disconnect handlers run.
    func close(reason: String) {
        let taken = state.withLock { state -> (any Channel, [PendingAck], [@Sendable (String) -> Void])?? in
            guard !state.closed else { return .none }
            state.closed = true
            let acks = Array(state.pendingAcks.values)
            state.pendingAcks.removeAll()
            let handlers = state.disconnectHandlers
            state.disconnectHandlers.removeAll()
            state.handlers.removeAll()
            state.anyHandlers.removeAll()
            return .some(state.channel.map { ($0, acks, handlers) })
        }
        guard let taken else { return }
        if state.withLock({ $0.connectResult == nil }) { settleConnect(.failure(.transport(reason))) }
        guard let (channel, acks, handlers) = taken else { return }
        for ack in acks {
            ack.timer?.cancel()
            ack.continuation.resume(throwing: SocketIOClientError.transport(reason))
        }
        channel.eventLoop.execute {
            var data = channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .normalClosure)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
            channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
        }
        for handler in handlers { handler(reason) }
    }
}
