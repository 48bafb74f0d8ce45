import EngineIO
import NIOCore
import NIOHTTP1
import ParleyCore
import SocketIO

/// The REST API for accounts: register, log in, log out, and who am I.
struct AccountRoutes: Sendable {
    let service: ChatService

    func respond(to request: WebRequest) async -> WebResponse? {
        switch (request.method, request.path) {
        case (.POST, "/api/register"):
            return await handle {
                let body = try Self.body(request)
                let (identity, token) = try await service.register(handle: try body.string("handle"), password: try body.string("password"))
                return (.created, ["user": NativeDialect.user(identity), "token": .string(token)])
            }
        case (.POST, "/api/login"):
            return await handle {
                let body = try Self.body(request)
                let (identity, token) = try await service.login(handle: try body.string("handle"), password: try body.string("password"))
                return (.ok, ["user": NativeDialect.user(identity), "token": .string(token)])
            }
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
