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
            socket.data[identityKey] = stored(identity)
        }
        // Handlers are the namespace's, not each socket's: an idle connection costs no closures.
        let limits = ConnectionLimits(service: service)
        namespace.onConnection { socket in
            guard let identity = identity(of: socket) else { return }
            await service.connected(identity, on: ConnectionID(rawValue: socket.id))
        }
        namespace.onDisconnect { socket, _ in
            let connection = ConnectionID(rawValue: socket.id)
            service.disconnected(connection)
            limits.forget(connection)
            dialects.forget(connection)
        }
        let command = { (event: String, limit: ConnectionLimits.Kind?, run: @escaping @Sendable (Caller, Request) async throws -> JSONObject) in
            NativeChat.command(namespace, event, limit: limit, limits: limits, dialects: dialects) { caller, request, reply in
                reply(.success(try await run(caller, request)))
            }
        }

        namespace.on("me", in: .native, table: dialects) { socket, _, ack in
            guard let identity = identity(of: socket) else { return }
            ack(NativeDialect.success(["user": NativeDialect.user(identity)]))
        }
        command("room:join", .joins) { caller, request in
            let room = try request.string("room")
            let (stored, members) = try await service.join(room, as: caller.identity, on: caller.connection)
            let retention = try await service.retention(of: .room(stored.name))
            return ["room": NativeDialect.room(stored, retention: retention), "members": .array(NativeDialect.sortedByName(members).map(NativeDialect.user))]
        }
        command("room:retention", nil) { caller, request in
            try await service.setRetention(try request.retention(), ofRoom: try request.string("room"), by: caller.identity)
            return [:]
        }
        command("dm:retention", nil) { caller, request in
            try await service.setRetention(try request.retention(), withFriend: try request.string("with"), by: caller.identity)
            return [:]
        }
        command("room:leave", nil) { caller, request in
            try await service.leave(try request.string("room"), as: caller.identity, on: caller.connection)
            return [:]
        }
        command("room:members", nil) { caller, request in
            let room = try request.string("room")
            return ["members": .array(NativeDialect.sortedByName(try service.members(of: room, on: caller.connection)).map(NativeDialect.user))]
        }
        // Answered once stored; the socket's next command runs while the message commits.
        NativeChat.command(namespace, "message:send", limit: .messages, limits: limits, dialects: dialects) { caller, request, reply in
            try await service.submit(
                try request.optionalString("text") ?? "", image: try request.optionalBinary("image"), to: try request.string("room"),
                clientID: try request.optionalString("clientId"), from: caller.identity, on: caller.connection
            ) { result in
                reply(result.map { ["message": NativeDialect.message($0)] })
            }
        }
        command("history:get", nil) { caller, request in
            let before = try request.optionalInteger("before").map(Int64.init)
            let limit = try request.optionalInteger("limit")
            if let handle = try request.optionalString("with") {
                let page = try await service.directHistory(with: handle, before: before, limit: limit, for: caller.identity)
                return ["messages": .array(page.messages.map { NativeDialect.message($0) }), "more": .bool(page.more)]
            }
            let page = try await service.history(of: try request.string("room"), before: before, limit: limit, for: caller.identity, on: caller.connection)
            return ["messages": .array(page.messages.map { NativeDialect.message($0) }), "more": .bool(page.more)]
        }
        command("dm:send", .messages) { caller, request in
            let (stored, recipient) = try await service.sendDirect(
                try request.optionalString("text") ?? "", image: try request.optionalBinary("image"), encrypted: try request.encrypted(),
                to: try request.string("to"), clientID: try request.optionalString("clientId"), from: caller.identity
            )
            return ["message": NativeDialect.message(stored, to: recipient)]
        }
        command("image:get", nil) { caller, request in
            guard let id = try request.optionalInteger("id") else { throw ChatError(.invalidArgument, "id must be a message id.") }
            let image = try await service.image(ofMessage: Int64(id), for: caller.identity, on: caller.connection)
            return ["type": .string(image.type), "data": .binary(ByteBuffer(bytes: image.data ?? Data()))]
        }
        command("message:delivered", nil) { caller, request in
            try await service.delivered(try request.ids("ids"), by: caller.identity, device: try request.optionalString("device"))
            return [:]
        }
        command("message:read", nil) { caller, request in
            try await service.read(
                try request.ids("ids"), by: caller.identity, device: try request.optionalString("device"), on: caller.connection
            )
            return [:]
        }
        command("typing", .messages) { caller, request in
            try await service.typing(
                in: try request.optionalString("room"), to: try request.optionalString("to"),
                isTyping: try request.optionalBool("typing") ?? true, from: caller.identity, on: caller.connection
            )
            return [:]
        }
        command("friend:request", .joins) { caller, request in
            ["status": .string(try await service.requestFriend(try request.string("handle"), from: caller.identity).rawValue)]
        }
        command("room:clear", nil) { caller, request in
            ["deleted": .number(Double(try await service.clearHistory(of: try request.string("room"), by: caller.identity)))]
        }
        command("room:remove", nil) { caller, request in
            try await service.remove(UserID(rawValue: try request.string("user")), from: try request.string("room"), by: caller.identity)
            return [:]
        }
        command("device:publish", .joins) { caller, request in
            guard let key = try request.optionalBinary("publicKey") else { throw ChatError(.invalidArgument, "publicKey must be binary data.") }
            let device = try await service.publishDevice(try request.string("deviceId"), publicKey: key, by: caller.identity)
            return ["device": NativeDialect.device(device)]
        }
        command("device:list", nil) { caller, request in
            let (user, devices) = try await service.devices(of: try request.string("handle"), for: caller.identity)
            return ["user": NativeDialect.user(user), "devices": .array(devices.map(NativeDialect.device))]
        }
        command("friend:accept", nil) { caller, request in
            ["user": NativeDialect.user(try await service.acceptFriend(try request.string("handle"), by: caller.identity))]
        }
        command("friend:reject", nil) { caller, request in
            try await service.rejectFriend(try request.string("handle"), by: caller.identity)
            return [:]
        }
        command("friend:list", nil) { caller, _ in
            NativeDialect.friends(try await service.friends(of: caller.identity))
        }
        command("block", nil) { caller, request in
            try await service.block(try request.string("handle"), by: caller.identity)
            return [:]
        }
        command("unblock", nil) { caller, request in
            try await service.unblock(try request.string("handle"), by: caller.identity)
            return [:]
        }
    }

    /// A socket's identity as kept in its data (and so across a recovered reconnection):
    /// `[id, name, kind]`, an array rather than an object, which every idle connection would
    /// pay for in keys.
    static func stored(_ identity: Identity) -> JSONValue {
        [.string(identity.id.rawValue), .string(identity.name), .string(identity.kind.rawValue)]
    }

    static func identity(of socket: Socket) -> Identity? {
        guard let fields = socket.data[identityKey]?.arrayValue, fields.count == 3,
              let id = fields[0].stringValue, let name = fields[1].stringValue,
              let kind = fields[2].stringValue.flatMap(Identity.Kind.init(rawValue:))
        else { return nil }
        return Identity(id: UserID(rawValue: id), name: name, kind: kind)
    }

    /// Who sent a command: the socket's identity and connection.
    struct Caller: Sendable {
        let identity: Identity
        let connection: ConnectionID
    }

    /// How a command answers: the fields of a success, or the refusal.
    typealias Reply = @Sendable (Result<JSONObject, ChatError>) -> Void

    /// Registers a command: its first argument must be an object; the ack gets
    /// `{"ok": true, …}` or `{"ok": false, "error": {code, message}}`, from `run`'s call of its
    /// reply (which may come after `run` returns) or from the error it throws.
    static func command(
        _ namespace: Namespace, _ event: String, limit: ConnectionLimits.Kind?, limits: ConnectionLimits, dialects: DialectTable,
        _ run: @escaping @Sendable (Caller, Request, @escaping Reply) async throws -> Void
    ) {
        namespace.on(event, in: .native, table: dialects) { socket, args, ack in
            let reply: Reply = { result in
                switch result {
                case .success(let fields): ack(NativeDialect.success(fields))
                case .failure(let error): ack(NativeDialect.failure(error))
                }
            }
            do {
                guard let identity = identity(of: socket) else { throw ChatError(.unauthorized, "This connection has no identity.") }
                let caller = Caller(identity: identity, connection: ConnectionID(rawValue: socket.id))
                if let limit { try limits.take(limit, on: caller.connection) }
                guard let object = args.first?.objectValue else {
                    throw ChatError(.invalidArgument, "\(event) takes an object as its argument.")
                }
                try await run(caller, Request(object: object), reply)
            } catch let error as ChatError {
                reply(.failure(error))
            } catch {
                reply(.failure(ChatError(.internalError, "The server could not complete this.")))
            }
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

        /// The `e2e` field of an encrypted direct message: `{senderDevice, copies: [{device,
        /// ephemeralPublic, nonce, ciphertext}]}`, the byte fields binary.
        func encrypted() throws(ChatError) -> EncryptedBody? {
            guard let value = object["e2e"], !value.isNull else { return nil }
            guard let fields = value.objectValue else { throw ChatError(.invalidArgument, "e2e must be an object.") }
            let body = Request(object: fields)
            guard let list = fields["copies"]?.arrayValue, (1...2 * ChatService.maxDevices).contains(list.count) else {
                throw ChatError(.invalidArgument, "e2e.copies lists 1 to \(2 * ChatService.maxDevices) sealed copies.")
            }
            var copies: [SealedCopy] = []
            for item in list {
                guard let copy = item.objectValue else { throw ChatError(.invalidArgument, "Each sealed copy is an object.") }
                let fields = Request(object: copy)
                func bytes(_ key: String) throws(ChatError) -> Data {
                    guard let data = try fields.optionalBinary(key) else { throw ChatError(.invalidArgument, "\(key) must be binary data.") }
                    return data
                }
                copies.append(SealedCopy(
                    device: try fields.string("device"), ephemeralPublic: try bytes("ephemeralPublic"), nonce: try bytes("nonce"),
                    ciphertext: try bytes("ciphertext")
                ))
            }
            return EncryptedBody(senderDevice: try body.string("senderDevice"), copies: copies)
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

/// The rate limits of every connection: two token buckets (messages, joins) per connection,
/// made the first time the connection is limited, so a silent connection costs nothing here.
final class ConnectionLimits: Sendable {
    /// Which limit an action counts against.
    enum Kind: Sendable {
        case messages
        case joins
    }

    private struct Buckets {
        var messages: TokenBucket
        var joins: TokenBucket
    }

    private let table = Mutex<[ConnectionID: Buckets]>([:])
    private let service: ChatService

    init(service: ChatService) {
        self.service = service
    }

    /// Takes a token of `kind` for `connection`, or refuses with `rate_limited` and how long to
    /// wait, checked against the service's clock.
    func take(_ kind: Kind, on connection: ConnectionID) throws(ChatError) {
        let now = service.now
        let configuration = service.configuration
        let wait = table.withLock { table -> Timestamp? in
            let fresh = Buckets(messages: TokenBucket(configuration.messageRate), joins: TokenBucket(configuration.joinRate))
            switch kind {
            case .messages: return table[connection, default: fresh].messages.take(now: now)
            case .joins: return table[connection, default: fresh].joins.take(now: now)
            }
        }
        if let wait { throw ChatError(.rateLimited, "Too many requests; try again in \(wait) ms.") }
    }

    /// Drops the buckets of a connection that has gone.
    func forget(_ connection: ConnectionID) {
        table.withLock { _ = $0.removeValue(forKey: connection) }
    }
}
