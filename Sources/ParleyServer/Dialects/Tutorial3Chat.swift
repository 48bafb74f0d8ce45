import SocketIO

/// Tutorial 3 (the MEAN chat): one global room where `chat message` is relayed verbatim, its
/// arguments whatever their JSON types, the sender included. Its page may only listen, so the
/// relay reaches every socket not fixed to another dialect.
enum Tutorial3Chat {
    static func install(on io: SocketIOServer, dialects: DialectTable) {
        let others = Set(Dialect.allCases.filter { $0 != .tutorial3 }.map(\.everyone))
        io.sockets.on("chat message", in: .tutorial3, table: dialects) { _, args, _ in
            io.sockets.broadcast.except(others).emit("chat message", args)
        }
    }
}
