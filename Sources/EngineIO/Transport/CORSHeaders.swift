import NIOHTTP1

extension CORSConfiguration {
    /// The CORS headers for a request from `origin`: none when CORS is off or the origin is
    /// not allowed; otherwise the origin reflected, with credentials.
    func headers(origin: String?, preflight: HTTPHeaders? = nil) -> HTTPHeaders {
        guard isEnabled, let origin, allows(origin: origin) else { return [:] }
        var headers: HTTPHeaders = ["Access-Control-Allow-Origin": origin, "Vary": "Origin"]
        if allowCredentials { headers.add(name: "Access-Control-Allow-Credentials", value: "true") }
        if let preflight {
            headers.add(name: "Access-Control-Allow-Methods", value: "GET, POST, OPTIONS")
            if let requested = preflight.first(name: "Access-Control-Request-Headers") {
                headers.add(name: "Access-Control-Allow-Headers", value: requested)
            }
            headers.add(name: "Access-Control-Max-Age", value: "86400")
        }
        return headers
    }
}
