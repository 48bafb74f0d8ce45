import Synchronization

/// The callback of an event whose sender asked for an acknowledgement. Call it at most once;
/// later calls, and calls when no ack was asked for, do nothing.
///
/// ```swift
/// socket.on("chat") { args, ack in
///     ack("stored", 42)
/// }
/// ```
public struct Acknowledgement: Sendable {
    private let sender: Sender?

    final class Sender: Sendable {
        let used = Atomic<Bool>(false)
        let send: @Sendable ([JSONValue]) -> Void
        init(_ send: @escaping @Sendable ([JSONValue]) -> Void) { self.send = send }
    }

    /// An acknowledgement that calls `send` the first time it is called; `nil` for an event
    /// whose sender asked for none. Servers and clients build one per incoming event.
    public init(_ send: (@Sendable ([JSONValue]) -> Void)?) {
        self.sender = send.map(Sender.init)
    }

    /// An acknowledgement that nobody asked for.
    public static let none = Acknowledgement(nil)

    /// Whether the sender asked for an acknowledgement.
    public var isRequested: Bool { sender != nil }

    /// Sends the acknowledgement with these arguments.
    public func callAsFunction(_ args: JSONValue...) {
        send(args)
    }

    /// Sends the acknowledgement with these arguments.
    public func send(_ args: [JSONValue]) {
        guard let sender, !sender.used.exchange(true, ordering: .relaxed) else { return }
        sender.send(args)
    }
}

extension Acknowledgement {
    /// The acknowledgement of an incoming event: when the sender gave an ack id, calling it sends
    /// an ACK packet with that id through `send`; otherwise ``none``.
    public static func answering(_ event: SocketIOPacket, send: @escaping @Sendable (SocketIOPacket) -> Void) -> Acknowledgement {
        guard let id = event.id else { return .none }
        let namespace = event.namespace
        return Acknowledgement { args in
            send(SocketIOPacket(.ack, namespace: namespace, id: id, data: .array(args)))
        }
    }
}
