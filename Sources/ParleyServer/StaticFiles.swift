import EngineIO
import Foundation
import NIOCore

/// The files shipped with Parley (package resources), read once at start and served from memory.
struct StaticFiles: Sendable {
    private let files: [String: WebResponse]

    /// The files of `Resources/public`, by URL path.
    init() {
        var files: [String: WebResponse] = [:]
        let routes: [(path: String, resource: String, type: String)] = [
            ("/socket.io/socket.io.js", "socket.io.js", "application/javascript; charset=utf-8"),
            ("/", "index.html", "text/html; charset=utf-8"),
            ("/app.js", "app.js", "application/javascript; charset=utf-8"),
            ("/e2e.js", "e2e.js", "application/javascript; charset=utf-8"),
            ("/app.css", "app.css", "text/css; charset=utf-8"),
            ("/widget.js", "widget.js", "application/javascript; charset=utf-8"),
            ("/widget.html", "widget.html", "text/html; charset=utf-8"),
            ("/widget-app.js", "widget-app.js", "application/javascript; charset=utf-8"),
        ]
        for route in routes {
            guard let url = Bundle.module.url(forResource: route.resource, withExtension: nil, subdirectory: "public"),
                  let data = try? Data(contentsOf: url)
            else { continue }
            var response = WebResponse(status: .ok, headers: ["Content-Type": route.type], body: ByteBuffer(bytes: data))
            response.headers.add(name: "Cache-Control", value: "no-cache")
            files[route.path] = response
        }
        self.files = files
    }

    /// The file at `path`, if Parley ships one there.
    func response(for path: String) -> WebResponse? {
        files[path]
    }
}
