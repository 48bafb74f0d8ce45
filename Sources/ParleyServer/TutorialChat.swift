import SocketIO

/// The first tutorial's protocol: `login(name)`, `join(roomName)`, and `chat(message)`, which
/// sends `message` with `{user, message}` to every socket in the sender's room, the sender
/// included.
enum TutorialChat {
    static func install(on io: SocketIOServer) {
        io.onConnection { socket in
            socket.on("login") { args, _ in
                socket.data["name"] = args.first
            }
            socket.on("join") { args, _ in
                guard let room = args.first?.stringValue else { return }
                socket.data["roomName"] = .string(room)
                socket.join(room)
            }
            socket.on("chat") { args, _ in
                guard let room = socket.data["roomName"]?.stringValue else { return }
                var payload = JSONObject()
                payload["user"] = socket.data["name"]
                payload["message"] = args.first
                io.to(room).emit("message", .object(payload))
            }
        }
    }
}
