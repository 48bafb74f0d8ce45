import EngineIO
import Foundation
import NIOHTTP1
import ParleyCore
import SocketIO

/// Tutorial 3's REST routes, on real Parley accounts, with the tutorial's answers (plain text).
///
/// The tutorial had no sessions: anyone could send or accept friend requests in anyone's name.
/// Here `/login` and `/register` also set an HttpOnly session cookie, which the tutorial's
/// same-origin page sends back by itself, and the friend routes act only for the account that
/// cookie belongs to.
struct Tutorial3Routes: Sendable {
    let service: ChatService
    /// Sign-ins and registrations by client address, shared with the REST API's.
    let signIns: SignInLimiter

    static let cookieName = "parley_t3"

    func respond(to request: WebRequest) async -> WebResponse? {
        guard request.method == .POST else { return nil }
        switch request.path {
        case "/register", "/login":
            if let seconds = signIns.secondsToWait(for: request, now: service.now) {
                var response = Self.text(SignInLimiter.refusal(seconds), status: .tooManyRequests)
                response.headers.replaceOrAdd(name: "Retry-After", value: String(seconds))
                return response
            }
            return request.path == "/register" ? await register(request) : await login(request)
        case "/friend_request": return await friendRequest(request)
        case "/friend_request/confirmed": return await confirm(request)
        default: return nil
        }
    }

    private static func text(_ body: String, status: HTTPResponseStatus = .ok, cookie token: String? = nil) -> WebResponse {
        var response = WebResponse(status: status, contentType: "text/html; charset=utf-8", body: body)
        if let token {
            response.headers.add(name: "Set-Cookie", value: "\(cookieName)=\(token); Path=/; HttpOnly; SameSite=Lax")
        }
        return response
    }

    private func register(_ request: WebRequest) async -> WebResponse {
        let form = Self.form(request)
        guard let handle = form["handle"], let password = form["password"] else {
            return Self.text("handle and password are required", status: .badRequest)
        }
        do {
            let (_, token) = try await service.register(handle: handle, password: password)
            return Self.text("success", cookie: token)
        } catch where error.code == .handleTaken {
            return Self.text("User already found")
        } catch {
            return Self.text(error.message, status: AccountRoutes.status(for: error.code))
        }
    }

    private func login(_ request: WebRequest) async -> WebResponse {
        let form = Self.form(request)
        guard let handle = form["handle"], let password = form["password"],
              let (_, token) = try? await service.login(handle: handle, password: password)
        else { return Self.text("User has not registered") }
        return Self.text("success", cookie: token)
    }

    /// The account of the session cookie, if it is `handle`'s.
    private func signedIn(as handle: String?, _ request: WebRequest) async -> Identity? {
        guard let handle, let token = Self.cookie(request), let identity = try? await service.authenticate(token: token),
              identity.name.lowercased() == handle.lowercased()
        else { return nil }
        return identity
    }

    private func friendRequest(_ request: WebRequest) async -> WebResponse {
        let form = Self.form(request)
        guard let me = await signedIn(as: form["my_handle"], request) else {
            return Self.text("Please log in as my_handle first", status: .unauthorized)
        }
        guard let friend = form["friend_handle"] else { return Self.text("friend_handle is required", status: .badRequest) }
        do {
            switch try await service.friendRequest(with: friend, of: me)?.status {
            case .accepted?: return Self.text("Friend request already accepted")
            case .pending?: return Self.text("Friend request already sent ")
            case .rejected?, nil:
                _ = try await service.requestFriend(friend, from: me)
                return Self.text("success")
            }
        } catch {
            return Self.text(error.message, status: AccountRoutes.status(for: error.code))
        }
    }

    private func confirm(_ request: WebRequest) async -> WebResponse {
        let form = Self.form(request)
        guard let me = await signedIn(as: form["my_handle"], request) else {
            return Self.text("Please log in as my_handle first", status: .unauthorized)
        }
        guard let friend = form["friend_handle"] else { return Self.text("friend_handle is required", status: .badRequest) }
        do {
            if try await service.friendRequest(with: friend, of: me)?.status == .accepted {
                return Self.text("Friend request already accepted")
            }
            if form["confirm"] == "Yes" {
                _ = try await service.acceptFriend(friend, by: me)
            } else {
                try await service.rejectFriend(friend, by: me)
            }
            return Self.text("success")
        } catch {
            return Self.text(error.message, status: AccountRoutes.status(for: error.code))
        }
    }

    /// The fields of a JSON or form-encoded body, as strings (a JSON number as its digits, so
    /// that a number password matches the same number later).
    static func form(_ request: WebRequest) -> [String: String] {
        guard let text = String(validating: request.body.readableBytesView, as: UTF8.self) else { return [:] }
        if let object = (try? JSONValue(parsing: text))?.objectValue {
            var fields: [String: String] = [:]
            for (key, value) in object {
                switch value {
                case .string(let string): fields[key] = string
                case .number, .bool: fields[key] = value.json
                default: continue
                }
            }
            return fields
        }
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (part: Substring) in part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(part) }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    static func cookie(_ request: WebRequest) -> String? {
        for header in request.headers[canonicalForm: "Cookie"] {
            for item in header.split(separator: ";") {
                let parts = item.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == cookieName {
                    return String(parts[1]).trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
