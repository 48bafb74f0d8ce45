import EngineIO
import ParleyCore
import SocketIO

/// Delivers the chat service's events through Socket.IO rooms. A chat room `name` is one
/// Socket.IO room per dialect (`room:name/native`, `room:name/tutorial1`, …); an account is
/// `user:id`; a connection is the room of its socket id. Each event is rendered once per dialect
/// (a dialect may render nothing) and each rendering is encoded once by its broadcast.
struct SocketIOEventSink: ChatEventSink {
    let namespace: Namespace
    let dialects: DialectTable
    /// Where the work after a store's commit runs: publishing a stored message on an event loop
    /// leaves the store's thread to write, and makes the fan-out's writes to this loop's
    /// connections local. One loop for all, so that messages are published in commit order.
    let committed: LoopInbox

    func afterCommit(_ work: @escaping @Sendable () -> Void) {
        committed.submit(work)
    }

    func subscribe(_ connection: ConnectionID, to audience: Audience) {
        namespace.adapter.addAll(connection.rawValue, rooms: [room(audience, for: connection)])
    }

    func unsubscribe(_ connection: ConnectionID, from audience: Audience) {
        namespace.adapter.remove(connection.rawValue, from: room(audience, for: connection))
    }

    private func room(_ audience: Audience, for connection: ConnectionID) -> String {
        switch audience {
        case .room(let name): (dialects.dialect(of: connection) ?? .native).room(name)
        case .connection(let id): id.rawValue
        case .user(let id): "user:" + id.rawValue
        }
    }

    func publish(_ event: ChatEvent, to audience: Audience, options: PublishOptions) {
        switch audience {
        case .room(let name):
            for dialect in Dialect.roomDialects {
                emit(event, as: dialect, to: dialect.room(name), options: options)
            }
        case .user(let id):
            emit(event, as: .native, to: "user:" + id.rawValue, options: options)
        case .connection(let id):
            emit(event, as: dialects.dialect(of: id) ?? .native, to: id.rawValue, options: options)
        }
    }

    private func emit(_ event: ChatEvent, as dialect: Dialect, to room: String, options: PublishOptions) {
        // A dialect nobody in the room speaks renders nothing (a chat room's three dialect rooms
        // are rarely all in use).
        guard namespace.adapter.mayReach(BroadcastOptions(rooms: [room])) else { return }
        let rendering: DialectRendering?
        switch dialect {
        case .native: rendering = NativeDialect.render(event).map { DialectRendering(event: $0.0, payload: $0.1) }
        case .tutorial1: rendering = Tutorial1Dialect.render(event)
        case .tutorial2: rendering = Tutorial2Dialect.render(event)
        case .tutorial3, .tutorial4: rendering = nil
        }
        guard let rendering else { return }
        var target = namespace.to(room)
        if let except = options.except { target = target.except(except.rawValue) }
        if rendering.skipsAuthor, let author = options.author { target = target.except(author.rawValue) }
        if options.volatile { target = target.volatile }
        target.emit(rendering.event, rendering.payload)
    }
}

/// How one dialect shows one domain event.
struct DialectRendering {
    var event: String
    var payload: JSONValue
    /// Whether the connection that caused the event does not get it.
    var skipsAuthor = false
}
