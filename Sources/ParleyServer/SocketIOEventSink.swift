import ParleyCore
import SocketIO

/// Delivers the chat service's events through Socket.IO rooms: a chat room `name` is the
/// Socket.IO room `room:name`, an account is `user:id`, a connection is the room of its socket
/// id. Each event is
/// rendered once per audience by the native dialect and encoded once by the broadcast.
struct SocketIOEventSink: ChatEventSink {
    let namespace: Namespace

    static func room(_ audience: Audience) -> String {
        switch audience {
        case .room(let name): "room:" + name
        case .connection(let id): id.rawValue
        case .user(let id): "user:" + id.rawValue
        }
    }

    func subscribe(_ connection: ConnectionID, to audience: Audience) {
        namespace.adapter.addAll(connection.rawValue, rooms: [Self.room(audience)])
    }

    func unsubscribe(_ connection: ConnectionID, from audience: Audience) {
        namespace.adapter.remove(connection.rawValue, from: Self.room(audience))
    }

    func publish(_ event: ChatEvent, to audience: Audience, options: PublishOptions) {
        let (name, payload) = NativeDialect.render(event)
        var target = namespace.to(Self.room(audience))
        if let except = options.except { target = target.except(except.rawValue) }
        if options.volatile { target = target.volatile }
        target.emit(name, payload)
    }
}
