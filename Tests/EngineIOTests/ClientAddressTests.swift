import NIOCore
import NIOHTTP1
import Testing

@testable import EngineIO

@Suite("The client address a handshake counts against")
struct ClientAddressTests {
    private func address(_ forwarded: [String], from peer: String, trusting proxies: Set<String>) throws -> String? {
        var configuration = EngineConfiguration()
        configuration.trustedProxies = proxies
        let engine = EngineServer(configuration: configuration)
        let headers = HTTPHeaders(forwarded.map { ("X-Forwarded-For", $0) })
        return engine.clientAddress(headers: headers, remoteAddress: try SocketAddress(ipAddress: peer, port: 40000))
    }

    @Test func aPeerNotTrustedIsItselfWhateverItForwards() throws {
        #expect(try address([], from: "192.0.2.1", trusting: []) == "192.0.2.1")
        #expect(try address(["198.51.100.1"], from: "192.0.2.1", trusting: ["127.0.0.1"]) == "192.0.2.1")
        #expect(try address(["198.51.100.1"], from: "::1", trusting: []) == "::1")
    }

    @Test func aTrustedProxyNamesTheLastAddressNotTrusted() throws {
        let proxies: Set<String> = ["127.0.0.1", "10.0.0.2"]
        #expect(try address(["198.51.100.1"], from: "127.0.0.1", trusting: proxies) == "198.51.100.1")
        // What the client wrote comes first; the proxies append what each saw.
        #expect(try address(["6.6.6.6, 198.51.100.1, 10.0.0.2"], from: "127.0.0.1", trusting: proxies) == "198.51.100.1")
        // The header may come in several lines, and with stray spaces and commas.
        #expect(try address(["6.6.6.6", " 198.51.100.7 ,, "], from: "127.0.0.1", trusting: proxies) == "198.51.100.7")
        // Only proxies in it: the first, where the request began.
        #expect(try address(["10.0.0.2, 127.0.0.1"], from: "127.0.0.1", trusting: proxies) == "10.0.0.2")
        // No header: the proxy's own request.
        #expect(try address([], from: "127.0.0.1", trusting: proxies) == "127.0.0.1")
    }
}
