import EngineIO
import NIOCore
import NIOHTTP1
import ParleyCore
import SocketIO
import Synchronization

/// The REST API for accounts: register, log in, log out, and who am I.
struct AccountRoutes: Sendable {
    let service: ChatService
    /// Sign-ins and registrations by client address, shared with tutorial 3's routes.
    let signIns: SignInLimiter

    func respond(to request: WebRequest) async -> WebResponse? {
        switch (request.method, request.path) {
        case (.POST, "/api/register"), (.POST, "/api/login"):
            if let seconds = signIns.secondsToWait(for: request, now: service.now) {
                var response = Self.json(.tooManyRequests, ["error": [
                    "code": .string(ChatError.Code.rateLimited.rawValue), "message": .string(SignInLimiter.refusal(seconds)),
                ]])
                response.headers.replaceOrAdd(name: "Retry-After", value: String(seconds))
                return response
            }
            return await signIn(request)
        default:
            return await other(request)
        }
    }

    private func signIn(_ request: WebRequest) async -> WebResponse {
        if request.path == "/api/register" {
            return await handle {
                let body = try Self.body(request)
                let (identity, token) = try await service.register(handle: try body.string("handle"), password: try body.string("password"))
                return (.created, ["user": NativeDialect.user(identity), "token": .string(token)])
            }
        }
        return await handle {
            let body = try Self.body(request)
            let (identity, token) = try await service.login(handle: try body.string("handle"), password: try body.string("password"))
            return (.ok, ["user": NativeDialect.user(identity), "token": .string(token)])
        }
    }

    private func other(_ request: WebRequest) async -> WebResponse? {
        switch (request.method, request.path) {
        case (.POST, "/api/logout"):
            return await handle {
                try await service.logout(token: try Self.bearer(request))
                return (.ok, ["ok": true])
            }
        case (.GET, "/api/me"):
            return await handle {
                let identity = try await service.authenticate(token: try Self.bearer(request))
                return (.ok, ["user": NativeDialect.user(identity)])
            }
        case (.GET, "/api/guest-name"):
            return Self.json(.ok, ["name": .string(Names.generatedGuestName())])
        case (_, "/api/register"), (_, "/api/login"), (_, "/api/logout"), (_, "/api/me"), (_, "/api/guest-name"):
            return Self.json(.methodNotAllowed, ["error": ["code": "method_not_allowed", "message": "Method not allowed."]])
        default:
            return nil
        }
    }

    private func handle(_ run: () async throws -> (HTTPResponseStatus, JSONValue)) async -> WebResponse {
        do {
            let (status, body) = try await run()
            return Self.json(status, body)
        } catch let error as ChatError {
            return Self.json(Self.status(for: error.code), ["error": ["code": .string(error.code.rawValue), "message": .string(error.message)]])
        } catch {
            return Self.json(.internalServerError, ["error": ["code": "internal_error", "message": "The server could not complete this."]])
        }
    }

    static func status(for code: ChatError.Code) -> HTTPResponseStatus {
        switch code {
        case .badCredentials, .unauthorized: .unauthorized
        case .handleTaken: .conflict
        case .internalError: .internalServerError
        default: .badRequest
        }
    }

    static func json(_ status: HTTPResponseStatus, _ body: JSONValue) -> WebResponse {
        WebResponse(status: status, contentType: "application/json", body: body.json)
    }

    /// The request body as a JSON object.
    static func body(_ request: WebRequest) throws(ChatError) -> NativeChat.Request {
        guard let text = String(validating: request.body.readableBytesView, as: UTF8.self),
              let value = try? JSONValue(parsing: text), let object = value.objectValue
        else {
            throw ChatError(.invalidArgument, "The body must be a JSON object.")
        }
        return NativeChat.Request(object: object)
    }

    /// The token of an `Authorization: Bearer …` header.
    static func bearer(_ request: WebRequest) throws(ChatError) -> String {
        guard let header = request.headers.first(name: "Authorization"), header.lowercased().hasPrefix("bearer ") else {
            throw ChatError(.unauthorized, "Send the token as Authorization: Bearer <token>.")
        }
        return String(header.dropFirst("bearer ".count).drop { $0 == " " })
    }
}

/// Token buckets by client address, for every route that signs in or registers (each costs a
/// slow password hash): the REST API's and tutorial 3's share one budget per address. Once the
/// table holds 4,096 addresses, buckets that have refilled are swept out (at most once per
/// refill time), so that it holds the addresses of the last minute or two, not every one seen.
final class SignInLimiter: Sendable {
    private let limit: RateLimit?
    /// The client address of a request: the peer's, or the one a trusted proxy forwards.
    private let clientAddress: @Sendable (WebRequest) -> String?
    private let table = Mutex(Table())

    private struct Table {
        var buckets: [String: TokenBucket] = [:]
        /// When the table may next be swept of refilled buckets: once per refill time at most,
        /// so that many addresses at once cost one sweep a minute, not one per attempt.
        var nextSweep: Timestamp = 0
    }

    init(limit: RateLimit?, clientAddress: @escaping @Sendable (WebRequest) -> String?) {
        self.limit = limit
        self.clientAddress = clientAddress
    }

    /// What a refused attempt is told.
    static func refusal(_ seconds: Int64) -> String {
        "Too many sign-in attempts from your address; try again in \(seconds) s."
    }

    /// Takes a token for the address of `request` at `now` (milliseconds): `nil` when the attempt
    /// may go ahead, else how many whole seconds to wait. A request of unknown address goes ahead.
    func secondsToWait(for request: WebRequest, now: Timestamp) -> Int64? {
        take(for: clientAddress(request), now: now).map { ($0 + 999) / 1000 }
    }

    private func take(for address: String?, now: Timestamp) -> Timestamp? {
        guard let limit, let address else { return nil }
        return table.withLock { table in
            // A bucket idle long enough to be full again is the same as a new one.
            if table.buckets.count >= 4096, now >= table.nextSweep {
                let refill = Timestamp((limit.burst / limit.perSecond * 1000).rounded(.up))
                table.buckets = table.buckets.filter { now - $0.value.lastTaken < refill }
                table.nextSweep = now + refill
            }
            return table.buckets[address, default: TokenBucket(limit)].take(now: now)
        }
    }
}
