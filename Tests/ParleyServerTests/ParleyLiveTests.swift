import EngineIO
import NIOCore
import ParleyServer
import SocketIO
import Testing

@testable import SocketIOClient

@Suite("The real server, with the Swift client")
struct ParleyLiveTests {
    @Test func tutorialChatReachesTheWholeRoomSenderIncluded() async throws {
        try await withParley { _, url in
            let one = try await connectedClient(url)
            let two = try await connectedClient(url)
            let outsider = try await connectedClient(url)
            let inbox = Inbox<(String, JSONValue)>()
            for (name, client) in [("one", one), ("two", two), ("outsider", outsider)] {
                client.on("message") { args, _ in Task { await inbox.append((name, args.first ?? .null)) } }
            }
            one.emit("login", "one")
            one.emit("join", "test")
            two.emit("login", "two")
            two.emit("join", "test")
            outsider.emit("join", "elsewhere")
            try await Task.sleep(for: .milliseconds(200))
            one.emit("chat", "hello")
            let received = await inbox.wait(for: 2)
            try await Task.sleep(for: .milliseconds(200))
            #expect(received.count == 2)
            #expect(Set(received.map(\.0)) == ["one", "two"])
            for (_, payload) in received {
                #expect(payload == ["user": "one", "message": "hello"])
            }
            for client in [one, two, outsider] { client.disconnect() }
        }
    }

    @Test func acksBothWaysBinaryAndRooms() async throws {
        try await withParley(setUp: { app in
            let lab = app.io.of("/lab")
            lab.onConnection { socket in
                socket.on("echo") { args, ack in ack.send(args) }
                socket.on("ask") { args, ack in
                    let answer = try? await socket.emitWithAck("question", args, timeout: .seconds(2))
                    ack.send(answer ?? ["no answer"])
                }
                socket.on("join") { args, ack in
                    if let room = args.first?.stringValue { socket.join(room) }
                    ack()
                }
                socket.on("shout") { args, _ in
                    if let room = args.first?.stringValue { socket.to(room).emit("shout", Array(args.dropFirst())) }
                }
            }
        }) { _, url in
            let a = try await connectedClient(url, namespace: "/lab")
            let b = try await connectedClient(url, namespace: "/lab")
            let bytes = ByteBuffer(bytes: [0, 1, 2, 254, 255])
            #expect(try await a.emitWithAck("echo", "text", 3, ["nested": .binary(bytes)]) == ["text", 3, ["nested": .binary(bytes)]])
            a.on("question") { args, ack in ack(["answered": .array(args)]) }
            #expect(try await a.emitWithAck("ask", "why?") == [["answered": ["why?"]]])
            _ = try await a.emitWithAck("join", "r")
            _ = try await b.emitWithAck("join", "r")
            let heard = Inbox<[JSONValue]>()
            a.on("shout") { args, _ in Task { await heard.append(args) } }
            b.on("shout") { args, _ in Task { await heard.append(args) } }
            a.emit("shout", "r", "hey")
            let shouts = await heard.wait(for: 1)
            try await Task.sleep(for: .milliseconds(200))
            // Broadcast from a socket: everyone in the room but the sender.
            #expect(await heard.wait(for: 1) == [["hey"]])
            #expect(shouts.count == 1)
            a.disconnect()
            b.disconnect()
        }
    }

    @Test func middlewareRefusalAndUnknownNamespace() async throws {
        try await withParley(setUp: { app in
            app.io.of("/private").use { socket in
                guard socket.handshake.auth["key"] == "open sesame" else {
                    throw ConnectionRefused("wrong key", data: ["hint": "try again"])
                }
            }
        }) { _, url in
            await #expect(throws: SocketIOClientError.refused(["message": "wrong key", "data": ["hint": "try again"]])) {
                _ = try await connectedClient(url, namespace: "/private", auth: ["key": "nope"])
            }
            await #expect(throws: SocketIOClientError.refused(["message": "Invalid namespace"])) {
                _ = try await connectedClient(url, namespace: "/nowhere")
            }
            let allowed = try await connectedClient(url, namespace: "/private", auth: ["key": "open sesame"])
            #expect(allowed.isConnected)
            allowed.disconnect()
        }
    }

    @Test func disconnectReasonsReachBothSides() async throws {
        let reasons = Inbox<String>()
        try await withParley(setUp: { app in
            app.io.of("/watch").onConnection { socket in
                socket.onDisconnect { reason in await reasons.append(reason.rawValue) }
                socket.on("kick") { _, _ in socket.disconnect() }
            }
        }) { app, url in
            let leaving = try await connectedClient(url, namespace: "/watch")
            leaving.disconnect()
            #expect(await reasons.wait(for: 1) == ["client namespace disconnect"])
            let kicked = try await connectedClient(url, namespace: "/watch")
            let clientSide = Inbox<String>()
            kicked.onDisconnect { reason in Task { await clientSide.append(reason) } }
            kicked.emit("kick")
            #expect(await clientSide.wait(for: 1) == ["io server disconnect"])
            #expect(await reasons.wait(for: 2) == ["client namespace disconnect", "server namespace disconnect"])
            let stayer = try await connectedClient(url, namespace: "/watch")
            stayer.onDisconnect { reason in Task { await clientSide.append(reason) } }
            await app.shutdown()
            #expect(await reasons.wait(for: 3).last == "server shutting down")
            #expect(await clientSide.wait(for: 2).last == "transport close")
        }
    }

    @Test func emitWithAckTimesOutWhenTheServerNeverAnswers() async throws {
        try await withParley { _, url in
            let client = try await connectedClient(url)
            await #expect(throws: SocketIOClientError.timeout) {
                _ = try await client.emitWithAck("nobody-answers-this", timeout: .milliseconds(200))
            }
            client.disconnect()
            await #expect(throws: SocketIOClientError.notConnected) {
                _ = try await client.emitWithAck("after", timeout: .milliseconds(200))
            }
        }
    }

    @Test func clientURLParsing() throws {
        #expect(throws: SocketIOClientError.invalidURL("https://x")) { try SocketIOClient.parse("https://x") }
        #expect(try SocketIOClient.parse("http://h:81/") == ("h", 81))
        #expect(try SocketIOClient.parse("ws://h") == ("h", 80))
        #expect(throws: SocketIOClientError.self) { try SocketIOClient.parse("http://h:0") }
    }
}
