import EngineIO
import Logging
import ParleyCore
import NIOCore
import ParleyServer
import SocketIO
import SocketIOClient

/// Runs `body` against a real Parley server on a free loopback port, then shuts it down.
func withParley(
    configure: (inout ParleyConfiguration) -> Void = { _ in },
    setUp: (ParleyApplication) -> Void = { _ in },
    _ body: (ParleyApplication, String) async throws -> Void
) async throws {
    var configuration = ParleyConfiguration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.database = ":memory:"
    configuration.chat.passwordHasher = .forTesting
    configure(&configuration)
    var logger = Logger(label: "parley.test")
    logger.logLevel = .warning
    let app = try await buildApplication(configuration: configuration, logger: logger)
    setUp(app)
    try await app.start()
    let url = "http://127.0.0.1:\(app.port ?? 0)"
    do {
        try await body(app, url)
    } catch {
        await app.shutdown()
        throw error
    }
    await app.shutdown()
}

/// A connected client of `url`.
func connectedClient(_ url: String, namespace: String = "/", auth: JSONObject = [:]) async throws -> SocketIOClient {
    var configuration = SocketIOClientConfiguration()
    configuration.namespace = namespace
    configuration.auth = auth
    let client = SocketIOClient(url: url, configuration: configuration)
    try await client.connect()
    return client
}

/// Collects values from handlers running on other threads, and waits for them.
actor Inbox<Value: Sendable> {
    private var values: [Value] = []

    func append(_ value: Value) { values.append(value) }

    /// Waits until at least `count` values arrived (or `timeout` passed) and returns them all.
    func wait(for count: Int, timeout: Duration = .seconds(5)) async -> [Value] {
        let deadline = ContinuousClock.now + timeout
        while values.count < count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return values
    }
}
