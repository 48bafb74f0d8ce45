import ParleyCore
import SocketIO
import Synchronization

/// The client protocols Parley speaks at once on its main namespace: its own, and those of the
/// four tutorials it grew from. A socket speaks one, fixed by the first dialect-specific event
/// it sends; events of other dialects from it are ignored.
enum Dialect: String, Sendable, Hashable, CaseIterable {
    /// docs/PROTOCOL.md.
    case native
    /// Tutorial 1: `login`, `join(roomName)`, `chat` → `message {user, message}`.
    case tutorial1
    /// Tutorial 2: `join({name, room})`, `sendMessage`, `message {user, text}`, `roomData`.
    case tutorial2
    /// Tutorial 3: one global `chat message` relay.
    case tutorial3
    /// Tutorial 4: one global history (`CreateUserData`, `UserEnteredRoom`, `SendMessage`, `ClearChat`).
    case tutorial4

    /// The dialects whose clients share the chat domain's rooms.
    static let roomDialects: [Dialect] = [.native, .tutorial1, .tutorial2]

    /// The Socket.IO room where this dialect's members of chat room `name` listen.
    func room(_ name: String) -> String { "room:\(name)/\(rawValue)" }

    /// The Socket.IO room of every socket of this dialect (for the global chats).
    var everyone: String { "dialect:\(rawValue)" }
}

/// Which dialect each connection speaks.
final class DialectTable: Sendable {
    private let table = Mutex<[ConnectionID: Dialect]>([:])

    /// The connection's dialect, once fixed.
    func dialect(of connection: ConnectionID) -> Dialect? {
        table.withLock { $0[connection] }
    }

    /// Fixes the connection's dialect to `dialect` unless it already speaks another. Returns
    /// whether it speaks `dialect`, and whether this call fixed it.
    func claim(_ connection: ConnectionID, as dialect: Dialect) -> (speaks: Bool, isNew: Bool) {
        table.withLock { table in
            if let fixed = table[connection] { return (fixed == dialect, false) }
            table[connection] = dialect
            return (true, true)
        }
    }

    func forget(_ connection: ConnectionID) {
        table.withLock { _ = $0.removeValue(forKey: connection) }
    }
}

/// An event handler of the namespace that runs only for sockets that speak `dialect` (fixing it
/// if not yet).
extension Namespace {
    func on(_ event: String, in dialect: Dialect, table: DialectTable, _ handler: @escaping SocketEventHandler) {
        on(event) { socket, args, ack in
            guard socket.speaks(dialect, table: table) else { return }
            await handler(socket, args, ack)
        }
    }
}

extension Socket {
    /// Claims the socket for `dialect` (see ``DialectTable/claim(_:as:)``); a socket fixed to
    /// a dialect joins that dialect's room of everyone.
    func speaks(_ dialect: Dialect, table: DialectTable) -> Bool {
        let (speaks, isNew) = table.claim(ConnectionID(rawValue: id), as: dialect)
        if isNew { join(dialect.everyone) }
        return speaks
    }
}
