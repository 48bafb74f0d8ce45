// A server built on the EngineIO and SocketIO libraries alone, for the interoperability
// tests: every feature of the libraries behind a small event vocabulary, plus a plain
// Engine.IO echo server on a second port and path.
//
//   socketio-testbed --port P [--engine-port Q] [--ping-interval MS] [--ping-timeout MS]
//                    [--max-payload N] [--recovery SECONDS] [--connect-timeout MS]
//                    [--cors ORIGIN] [--buffer BYTES]
//
// It prints "READY <port> <engine-port>" once listening.

import EngineIO
import Foundation
import Logging
import NIOCore
import SocketIO
import Synchronization

let options: [String: String] = {
    var options: [String: String] = [:]
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    while let name = arguments.next() {
        guard name.hasPrefix("--"), let value = arguments.next() else { fatalError("usage: --name value ...") }
        options[String(name.dropFirst(2))] = value
    }
    return options
}()
func option(_ name: String, _ fallback: Int) -> Int { options[name].flatMap(Int.init) ?? fallback }

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = Logger.Level(rawValue: options["log-level"] ?? "warning") ?? .warning
    return handler
}

var engineConfiguration = EngineConfiguration()
engineConfiguration.pingInterval = .milliseconds(Int64(option("ping-interval", 25_000)))
engineConfiguration.pingTimeout = .milliseconds(Int64(option("ping-timeout", 20_000)))
engineConfiguration.maxPayload = option("max-payload", 1_000_000)
engineConfiguration.maxBufferedBytes = option("buffer", 4 << 20)
if let origin = options["cors"] { engineConfiguration.cors = CORSConfiguration(allowedOrigins: [origin]) }
engineConfiguration.allowEIO3 = options["eio3"] == "1"
var ioConfiguration = SocketIOConfiguration()
ioConfiguration.connectTimeout = .milliseconds(Int64(option("connect-timeout", 45_000)))
if let seconds = options["recovery"].flatMap(Int64.init) {
    ioConfiguration.connectionStateRecovery = ConnectionStateRecovery(maxDisconnectionDuration: .seconds(seconds))
}

let engine = EngineServer(configuration: engineConfiguration, logger: Logger(label: "testbed.engine"))
let io = SocketIOServer(engine: engine, configuration: ioConfiguration, logger: Logger(label: "testbed.io"))

io.onConnection { socket in
    // Acks both ways: the client's ack gets the arguments back.
    socket.on("echo") { args, ack in
        if ack.isRequested { ack.send(args) } else { socket.emit("echo", args) }
    }
    // The first half of `order`; the namespace's handler (below) runs after it.
    socket.on("order") { _, _ in socket.data["order"] = ["socket"] }
    // Broadcast to a room, all but the sender.
    socket.on("to-room") { args, ack in
        guard let room = args.first?.stringValue else { return }
        socket.to(room).emit("room-message", Array(args.dropFirst()))
        ack()
    }
    // Broadcast to everyone in a room, sender included.
    socket.on("to-all-in") { args, ack in
        guard let room = args.first?.stringValue else { return }
        io.to(room).emit("room-message", Array(args.dropFirst()))
        ack()
    }
    socket.on("broadcast") { args, ack in
        socket.broadcast.emit("broadcast", args)
        ack()
    }
    // The server asks the client and reports the client's answer.
    socket.on("ask-me") { args, ack in
        do {
            let answer = try await socket.emitWithAck("question", args, timeout: .seconds(5))
            ack.send(answer)
        } catch {
            ack(["error": .string("\(error)")])
        }
    }
    // Like ask-me, with the timeout in milliseconds as the first argument.
    socket.on("ask-me-within") { args, ack in
        let milliseconds = Int64(args.first?.intValue ?? 1000)
        do {
            let answer = try await socket.emitWithAck("question", Array(args.dropFirst()), timeout: .milliseconds(milliseconds))
            ack.send(answer)
        } catch {
            ack(["error": .string("\(error)")])
        }
    }
    // Sends `count` events of `size` bytes to a room, volatile or not.
    socket.on("flood") { args, ack in
        guard let room = args.first?.stringValue else { return }
        let count = args.count > 1 ? args[1].intValue ?? 0 : 0
        let size = args.count > 2 ? args[2].intValue ?? 0 : 0
        let volatile = args.count > 3 ? args[3].boolValue ?? false : false
        let blob = JSONValue.string(String(repeating: "x", count: size))
        let target = volatile ? io.to(room).volatile : io.to(room)
        for index in 0..<count { target.emit("flood", .number(Double(index)), blob) }
        ack()
    }
    socket.on("whoami") { _, ack in
        ack([
            "id": .string(socket.id),
            "recovered": .bool(socket.recovered),
            "rooms": .array(socket.rooms.sorted().map(JSONValue.string)),
            "transport": .string(socket.engineSocket.transport.rawValue),
            "data": .object(socket.data),
        ])
    }
    socket.on("remember") { args, ack in
        socket.data["note"] = args.first ?? .null
        ack()
    }
    socket.on("disconnect-me") { _, _ in socket.disconnect() }
    socket.on("burst-then-close") { args, _ in
        let count = args.first?.intValue ?? 0
        for index in 0..<count { socket.emit("burst", .number(Double(index))) }
        socket.disconnect(close: true)
    }
    socket.on("interleave") { _, _ in
        // From a thread other than the connection's event loop, while that loop is held: a
        // broadcast, an emit to this socket alone, and another broadcast, to arrive in that order.
        let loop = socket.engineSocket.eventLoop
        Thread.detachNewThread {
            let held = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            loop.execute {
                held.signal()
                release.wait()
            }
            held.wait()
            io.to(socket.id).emit("interleaved", .number(0))
            socket.emit("interleaved", .number(1))
            io.to(socket.id).emit("interleaved", .number(2))
            release.signal()
        }
    }
    socket.on("drop-transport") { _, _ in socket.engineSocket.close(reason: .transportError) }
    socket.on("burst") { args, _ in
        let count = args.first?.intValue ?? 0
        for index in 0..<count { socket.emit("burst", .number(Double(index))) }
    }
}

// Handlers of the namespace, shared by every socket.
io.sockets.on("join") { socket, args, ack in
    for room in args.compactMap(\.stringValue) { socket.join(room) }
    ack.send([.array(socket.rooms.sorted().map(JSONValue.string))])
}
io.sockets.on("leave") { socket, args, ack in
    if let room = args.first?.stringValue { socket.leave(room) }
    ack()
}
io.sockets.on("order") { socket, _, ack in
    ack(socket.data["order"] ?? .null, "namespace")
}
// Who left last, and why: the namespace's disconnect handler.
let lastLeft = Mutex<JSONValue>(.null)
io.sockets.onDisconnect { socket, reason in
    lastLeft.withLock { $0 = ["id": .string(socket.id), "reason": .string(reason.rawValue)] }
}
io.sockets.on("last-left") { _, _, ack in ack(lastLeft.withLock { $0 }) }
// Where a handler starts: whether it runs on its connection's event loop.
io.sockets.on("where") { socket, _, ack in ack(.bool(socket.engineSocket.eventLoop.inEventLoop)) }
// A handler that suspends for the given milliseconds before it answers.
io.sockets.on("nap") { _, args, ack in
    try? await Task.sleep(for: .milliseconds(args.first?.intValue ?? 0))
    ack("rested")
}

let admin = io.of("/admin")
admin.use { socket in
    guard socket.handshake.auth["token"] == "secret" else {
        throw ConnectionRefused("not authorized", data: ["code": 401])
    }
}
admin.onConnection { socket in
    socket.emit("welcome", "admin")
    socket.on("echo") { args, ack in ack.send(args) }
}

// The plain Engine.IO echo server.
var echoConfiguration = EngineConfiguration(path: "/engine.io/")
echoConfiguration.pingInterval = .milliseconds(Int64(option("ping-interval", 25_000)))
echoConfiguration.pingTimeout = .milliseconds(Int64(option("ping-timeout", 20_000)))
let echo = EngineServer(configuration: echoConfiguration, logger: Logger(label: "testbed.echo"))
echo.onConnection { socket in
    socket.onMessage { message in
        switch message {
        case .text(let text): socket.send(text)
        case .binary(let bytes): socket.send(binary: bytes)
        }
    }
}

let http = EngineHTTPServer(engine: engine) { request in
    request.path == "/healthz" ? WebResponse(contentType: "text/plain", body: "ok") : .notFound
}
let echoHTTP = EngineHTTPServer(engine: echo)
try await http.start(host: "127.0.0.1", port: option("port", 0))
try await echoHTTP.start(host: "127.0.0.1", port: option("engine-port", 0))
FileHandle.standardOutput.write(Data("READY \(http.localPort ?? 0) \(echoHTTP.localPort ?? 0)\n".utf8))
try await http.run()
