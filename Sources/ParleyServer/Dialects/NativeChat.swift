import Foundation
import NIOCore
import ParleyCore
import SocketIO
import Synchronization

/// Binds the native event API to the chat service: who a socket is (from its CONNECT auth),
/// and one handler per command.
enum NativeChat {
    /// The key under which a socket's identity is kept in its data.
    static let identityKey = "parley.identity"

    static func install(on namespace: Namespace, service: ChatService, dialects: DialectTable) {
        // Who is connecting: `{token}` for an account, `{name}` or nothing for a guest.
        namespace.use { socket in
            let auth = socket.handshake.auth
            let identity: Identity
            do {
                if let token = auth["token"] {
                    guard let token = token.stringValue else { throw ChatError(.unauthorized, "The token is not valid.") }
                    identity = try await service.authenticate(token: token)
                } else if let name = auth["name"], !name.isNull {
                    guard let name = name.stringValue else { throw ChatError(.invalidName, "name must be a string.") }
                    identity = try service.guest(name: name)
                } else {
                    identity = try service.guest(name: nil)
                }
            } catch let error as ChatError {
                throw ConnectionRefused(error.message, data: ["code": .string(error.code.rawValue)])
            }
            socket.data[identityKey] = NativeDialect.user(identity)
        }
        namespace.onConnection { socket in
            guard let identity = identity(of: socket) else { return }
            let connection = ConnectionID(rawValue: socket.id)
            let limits = ConnectionLimits(service: service)
            await service.connected(identity, on: connection)
            socket.onDisconnect { _ in
                service.disconnected(connection)
                dialects.forget(connection)
            }
            let command = { (event: String, limit: ConnectionLimits.Bucket?, run: @escaping @Sendable (Request) async throws -> JSONObject) in
                NativeChat.command(socket, event, limit: limit, dialects: dialects, run)
            }

            socket.on("me", in: .native, table: dialects) { _, ack in
                ack(NativeDialect.success(["user": NativeDialect.user(identity)]))
            }
            command("room:join", limits.joins) { request in
                let room = try request.string("room")
                let (stored, members) = try await service.join(room, as: identity, on: connection)
                let retention = try await service.retention(of: .room(stored.name))
                return ["room": NativeDialect.room(stored, retention: retention), "members": .array(NativeDialect.sortedByName(members).map(NativeDialect.user))]
            }
            command("room:retention", nil) { request in
                try await service.setRetention(try request.retention(), ofRoom: try request.string("room"), by: identity)
                return [:]
            }
            command("dm:retention", nil) { request in
                try await service.setRetention(try request.retention(), withFriend: try request.string("with"), by: identity)
                return [:]
            }
            command("room:leave", nil) { request in
                try await service.leave(try request.string("room"), as: identity, on: connection)
                return [:]
            }
            command("room:members", nil) { request in
                let room = try request.string("room")
                return ["members": .array(NativeDialect.sortedByName(try service.members(of: room, on: connection)).map(NativeDialect.user))]
            }
            command("message:send", limits.messages) { request in
                let stored = try await service.send(
                    try request.optionalString("text") ?? "", image: try request.optionalBinary("image"), to: try request.string("room"),
                    clientID: try request.optionalString("clientId"), from: identity, on: connection
                )
                return ["message": NativeDialect.message(stored)]
            }
            command("history:get", nil) { request in
                let before = try request.optionalInteger("before").map(Int64.init)
                let limit = try request.optionalInteger("limit")
                if let handle = try request.optionalString("with") {
                    let page = try await service.directHistory(with: handle, before: before, limit: limit, for: identity)
                    return ["messages": .array(page.messages.map { NativeDialect.message($0) }), "more": .bool(page.more)]
                }
                let page = try await service.history(of: try request.string("room"), before: before, limit: limit, for: identity, on: connection)
                return ["messages": .array(page.messages.map { NativeDialect.message($0) }), "more": .bool(page.more)]
            }
            command("dm:send", limits.messages) { request in
                let (stored, recipient) = try await service.sendDirect(
                    try request.optionalString("text") ?? "", image: try request.optionalBinary("image"), to: try request.string("to"),
                    clientID: try request.optionalString("clientId"), from: identity
                )
                return ["message": NativeDialect.message(stored, to: recipient)]
            }
            command("image:get", nil) { request in
                guard let id = try request.optionalInteger("id") else { throw ChatError(.invalidArgument, "id must be a message id.") }
                let image = try await service.image(ofMessage: Int64(id), for: identity, on: connection)
                return ["type": .string(image.type), "data": .binary(ByteBuffer(bytes: image.data ?? Data()))]
            }
            command("message:delivered", nil) { request in
                try await service.delivered(try request.ids("ids"), by: identity)
                return [:]
            }
            command("message:read", nil) { request in
                try await service.read(try request.ids("ids"), by: identity, on: connection)
                return [:]
            }
            command("typing", limits.messages) { request in
                try await service.typing(
                    in: try request.optionalString("room"), to: try request.optionalString("to"),
                    isTyping: try request.optionalBool("typing") ?? true, from: identity, on: connection
                )
                return [:]
            }
            command("friend:request", limits.joins) { request in
                ["status": .string(try await service.requestFriend(try request.string("handle"), from: identity).rawValue)]
            }
            command("room:clear", nil) { request in
                ["deleted": .number(Double(try await service.clearHistory(of: try request.string("room"), by: identity)))]
            }
            command("room:remove", nil) { request in
                try await service.remove(UserID(rawValue: try request.string("user")), from: try request.string("room"), by: identity)
                return [:]
            }
            command("friend:accept", nil) { request in
                ["user": NativeDialect.user(try await service.acceptFriend(try request.string("handle"), by: identity))]
            }
            command("friend:reject", nil) { request in
                try await service.rejectFriend(try request.string("handle"), by: identity)
                return [:]
            }
            command("friend:list", nil) { _ in
                NativeDialect.friends(try await service.friends(of: identity))
            }
            command("block", nil) { request in
                try await service.block(try request.string("handle"), by: identity)
                return [:]
            }
            command("unblock", nil) { request in
                try await service.unblock(try request.string("handle"), by: identity)
                return [:]
            }
        }
    }

    static func identity(of socket: Socket) -> Identity? {
        guard let value = socket.data[identityKey], let id = value["id"]?.stringValue, let name = value["name"]?.stringValue,
              let kind = value["kind"]?.stringValue.flatMap(Identity.Kind.init(rawValue:))
        else { return nil }
        return Identity(id: UserID(rawValue: id), name: name, kind: kind)
    }

    /// Registers a command: its first argument must be an object; the ack gets
    /// `{"ok": true, …}` or `{"ok": false, "error": {code, message}}`.
    static func command(
        _ socket: Socket, _ event: String, limit: ConnectionLimits.Bucket?, dialects: DialectTable,
        _ run: @escaping @Sendable (Request) async throws -> JSONObject
    ) {
        socket.on(event, in: .native, table: dialects) { args, ack in
            let reply: JSONValue
            do {
                try limit?.take()
                guard let object = args.first?.objectValue else {
                    throw ChatError(.invalidArgument, "\(event) takes an object as its argument.")
                }
                reply = NativeDialect.success(try await run(Request(object: object)))
            } catch let error as ChatError {
                reply = NativeDialect.failure(error)
            } catch {
                reply = NativeDialect.failure(ChatError(.internalError, "The server could not complete this."))
            }
            ack(reply)
        }
    }

    /// A command's argument object, with typed field access that refuses wrong types clearly.
    struct Request: Sendable {
        let object: JSONObject

        func string(_ key: String) throws(ChatError) -> String {
            guard let value = object[key]?.stringValue else { throw ChatError(.invalidArgument, "\(key) must be a string.") }
            return value
        }

        func optionalString(_ key: String) throws(ChatError) -> String? {
            guard let value = object[key], !value.isNull else { return nil }
            guard let string = value.stringValue else { throw ChatError(.invalidArgument, "\(key) must be a string.") }
            return string
        }

        /// The `policy` field: `keep`, `until-delivered` or `none`.
        func retention() throws(ChatError) -> RetentionPolicy {
            guard let policy = RetentionPolicy(rawValue: try string("policy")) else {
                throw ChatError(.invalidArgument, "policy is keep, until-delivered or none.")
            }
            return policy
        }

        func optionalBinary(_ key: String) throws(ChatError) -> Data? {
            guard let value = object[key], !value.isNull else { return nil }
            guard let bytes = value.binaryValue else { throw ChatError(.invalidArgument, "\(key) must be binary data.") }
            return Data(bytes.readableBytesView)
        }

        func optionalBool(_ key: String) throws(ChatError) -> Bool? {
            guard let value = object[key], !value.isNull else { return nil }
            guard let bool = value.boolValue else { throw ChatError(.invalidArgument, "\(key) must be true or false.") }
            return bool
        }

        func ids(_ key: String) throws(ChatError) -> [Int64] {
            guard let values = object[key]?.arrayValue else { throw ChatError(.invalidArgument, "\(key) must be a list of message ids.") }
            var ids: [Int64] = []
            for value in values {
                guard let id = value.intValue else { throw ChatError(.invalidArgument, "\(key) must be a list of message ids.") }
                ids.append(Int64(id))
            }
            return ids
        }

        func optionalInteger(_ key: String) throws(ChatError) -> Int? {
            guard let value = object[key], !value.isNull else { return nil }
            guard let number = value.intValue else { throw ChatError(.invalidArgument, "\(key) must be an integer.") }
            return number
        }
    }
}

/// The rate limits of one connection.
final class ConnectionLimits: Sendable {
    /// One token bucket, checked against the service's clock.
    final class Bucket: Sendable {
        private let bucket: Mutex<TokenBucket>
        private let service: ChatService

        init(_ limit: RateLimit, service: ChatService) {
            self.bucket = Mutex(TokenBucket(limit))
            self.service = service
        }

        /// Takes a token, or refuses with `rate_limited` and how long to wait.
        func take() throws(ChatError) {
            let now = service.now
            if let wait = bucket.withLock({ $0.take(now: now) }) {
                throw ChatError(.rateLimited, "Too many requests; try again in \(wait) ms.")
            }
        }
    }

    let messages: Bucket
    let joins: Bucket

    init(service: ChatService) {
        messages = Bucket(service.configuration.messageRate, service: service)
        joins = Bucket(service.configuration.joinRate, service: service)
    }
}
