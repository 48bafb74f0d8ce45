import Foundation
import ParleyCore
import SocketIO
import Synchronization

/// Tutorial 4 (the React room): one global history that every client gets whole after each
/// change. Kept in memory under a cap (the newest entries), as the tutorial kept it.
final class Tutorial4Chat: Sendable {
    private struct State {
        var history: [JSONValue] = []
        /// Sockets that entered, with their user names.
        var entered: [String: String] = [:]
    }

    private let state = Mutex(State())
    private let cap: Int
    private let io: SocketIOServer

    init(io: SocketIOServer, cap: Int) {
        self.io = io
        self.cap = cap
    }

    private static let adjectives = ["brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "kind", "lucky", "merry", "nimble", "quick", "sunny", "swift", "witty", "wise"]
    private static let names = ["Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "Hedy", "John", "Katherine", "Linus", "Margaret", "Niklaus", "Radia", "Tim"]

    /// A notice entry of the history, in the tutorial's shape.
    private static func notice(_ text: String) -> JSONValue {
        ["message": .string(text), "username": "", "userID": 0, "timeStamp": nil]
    }

    /// Changes the history and sends it whole to every socket of the dialect.
    private func update(_ change: (inout State) -> Void) {
        let history = state.withLock { state -> [JSONValue] in
            change(&state)
            if state.history.count > cap { state.history.removeFirst(state.history.count - cap) }
            return state.history
        }
        io.to(Dialect.tutorial4.everyone).emit("RetrieveChatRoomData", .array(history))
    }

    func install(on namespace: Namespace, dialects: DialectTable) {
        namespace.on("CreateUserData", in: .tutorial4, table: dialects) { socket, _, _ in
            var generator = SystemRandomNumberGenerator()
            let username = "\(Self.adjectives.randomElement(using: &generator)!)_\(Self.names.randomElement(using: &generator)!)"
            socket.emit("SetUserData", ["userID": .string(UUID().uuidString.lowercased()), "username": .string(username)])
        }
        namespace.on("UserEnteredRoom", in: .tutorial4, table: dialects) { [self] socket, args, _ in
            let username = args.first?["username"]?.stringValue ?? ""
            update { state in
                state.history.append(Self.notice("\(username) has entered the chat"))
                state.entered[socket.id] = username
            }
        }
        namespace.on("SendMessage", in: .tutorial4, table: dialects) { [self] _, args, _ in
            update { $0.history.append(args.first ?? .null) }
        }
        namespace.on("ClearChat", in: .tutorial4, table: dialects) { [self] _, _, _ in
            update { $0.history.removeAll() }
        }
        namespace.onDisconnect { [self] socket, _ in
            guard state.withLock({ $0.entered[socket.id] != nil }) else { return }
            update { state in
                if let username = state.entered.removeValue(forKey: socket.id) {
                    state.history.append(Self.notice("\(username) has left the chat"))
                }
            }
        }
    }
}
