/// An immutable description of a broadcast: which rooms, which exceptions, which flags.
/// Each modifier returns a new value; ``emit(_:_:)`` encodes the packet once and the adapter
/// writes the same bytes to every recipient.
///
/// ```swift
/// io.to("lobby").except("muted").emit("notice", "hello")
/// socket.broadcast.volatile.emit("typing", ["user": "ana"])
/// ```
public struct BroadcastOperator: Sendable {
    let namespace: Namespace
    /// Whom the broadcast reaches.
    public private(set) var options: BroadcastOptions

    init(namespace: Namespace, options: BroadcastOptions = BroadcastOptions()) {
        self.namespace = namespace
        self.options = options
    }

    /// Also targets the members of `rooms`.
    public func to(_ rooms: String...) -> BroadcastOperator {
        to(Set(rooms))
    }

    /// Also targets the members of `rooms`.
    public func to(_ rooms: Set<String>) -> BroadcastOperator {
        var copy = self
        copy.options.rooms.formUnion(rooms)
        return copy
    }

    /// Same as ``to(_:)-(String...)``.
    public func `in`(_ rooms: String...) -> BroadcastOperator {
        to(Set(rooms))
    }

    /// Leaves out the members of `rooms` (a socket id leaves out that socket).
    public func except(_ rooms: String...) -> BroadcastOperator {
        except(Set(rooms))
    }

    /// Leaves out the members of `rooms`.
    public func except(_ rooms: Set<String>) -> BroadcastOperator {
        var copy = self
        copy.options.except.formUnion(rooms)
        return copy
    }

    /// Marks the packet as droppable for clients that cannot take it at once.
    public var volatile: BroadcastOperator {
        var copy = self
        copy.options.volatile = true
        return copy
    }

    /// Only reaches sockets of this node.
    public var local: BroadcastOperator {
        var copy = self
        copy.options.local = true
        return copy
    }

    /// Emits an event to every selected socket.
    public func emit(_ event: String, _ args: JSONValue...) {
        emit(event, args)
    }

    /// Emits an event to every selected socket.
    public func emit(_ event: String, _ args: [JSONValue]) {
        namespace.metrics.broadcasts.increment()
        namespace.adapter.broadcast(.event(event, args, namespace: namespace.name), options: options)
    }

    /// The ids of the selected sockets on this node.
    public var socketIDs: Set<String> {
        namespace.adapter.socketIDs(options)
    }

    /// The ids of the selected sockets on every node of a cluster (socket.io's `fetchSockets`,
    /// by id); a node that does not answer within the adapter's timeout is left out.
    public func fetchSocketIDs() async -> Set<String> {
        options.local ? socketIDs : await namespace.adapter.fetchSocketIDs(options)
    }

    /// The selected sockets on this node.
    public var sockets: [Socket] {
        namespace.sockets(ids: socketIDs)
    }

    /// Makes the selected sockets join `rooms`.
    public func socketsJoin(_ rooms: String...) {
        namespace.adapter.addSockets(options, rooms: Set(rooms))
    }

    /// Makes the selected sockets leave `rooms`.
    public func socketsLeave(_ rooms: String...) {
        namespace.adapter.removeSockets(options, rooms: Set(rooms))
    }

    /// Disconnects the selected sockets; with `close`, their whole connections.
    public func disconnectSockets(close: Bool = false) {
        namespace.adapter.disconnectSockets(options, close: close)
    }
}
