import Metrics

/// The Socket.IO layer's counters, reported through swift-metrics.
struct SocketIOMetrics: Sendable {
    let sockets: Meter
    let broadcasts: Counter
    let eventsReceived: Counter

    init(namespace: String) {
        sockets = Meter(label: "socketio_connected_sockets", dimensions: [("namespace", namespace)])
        broadcasts = Counter(label: "socketio_broadcasts_total", dimensions: [("namespace", namespace)])
        eventsReceived = Counter(label: "socketio_events_received_total", dimensions: [("namespace", namespace)])
    }

    /// Counts an error of one kind, such as `parse_error` or `invalid_namespace`.
    static func error(_ kind: String) {
        Counter(label: "socketio_errors_total", dimensions: [("kind", kind)]).increment()
    }
}
