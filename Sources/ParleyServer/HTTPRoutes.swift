import EngineIO
import NIOCore
import ParleyCluster
import Prometheus
import SocketIO

/// The HTTP routes outside the Engine.IO path.
struct HTTPRoutes: Sendable {
    let engine: EngineServer
    let io: SocketIOServer
    let metrics: PrometheusCollectorRegistry
    let accounts: AccountRoutes
    let tutorial3: Tutorial3Routes
    /// The cluster bus, when nodes share a PostgreSQL database.
    let bus: PostgresBus?
    let files = StaticFiles()

    func respond(to request: WebRequest) async -> WebResponse {
        if request.method == .GET || request.method == .HEAD, let file = files.response(for: request.path) { return file }
        if let response = await accounts.respond(to: request) { return response }
        if let response = await tutorial3.respond(to: request) { return response }
        switch (request.method, request.path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            var body = "{\"status\":\"ok\",\"sessions\":\(engine.sessionCount)"
            if let bus {
                // Node ids are ASCII letters, digits, '-' and '_': nothing to escape.
                let nodes = bus.nodes.map { "\"\($0)\"" }.joined(separator: ",")
                body += ",\"node\":\"\(bus.nodeID)\",\"nodes\":[\(nodes)]"
            }
            return WebResponse(contentType: "application/json", body: body + "}")
        case (.GET, "/metrics"):
            return WebResponse(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.emitToString())
        default:
            return .notFound
        }
    }
}
