import Metrics

/// The engine's counters, reported through swift-metrics; the application chooses the
/// backend (Parley's is Prometheus, at `/metrics`).
struct EngineMetrics: Sendable {
    let packetsIn = Counter(label: "engineio_packets_received_total")
    let packetsOut = Counter(label: "engineio_packets_sent_total")
    let bytesIn = Counter(label: "engineio_bytes_received_total")
    let bytesOut = Counter(label: "engineio_bytes_sent_total")
    let droppedVolatile = Counter(label: "engineio_volatile_packets_dropped_total")
    let upgrades = Counter(label: "engineio_upgrades_total")
    let pollingSessions = Meter(label: "engineio_open_sessions", dimensions: [("transport", "polling")])
    let webSocketSessions = Meter(label: "engineio_open_sessions", dimensions: [("transport", "websocket")])

    func received(_ packet: EnginePacket) {
        packetsIn.increment()
        bytesIn.increment(by: packet.byteCount)
    }

    /// Counts `packets` sent to `recipients` sessions.
    func sent(_ packets: [EnginePacket], recipients: Int = 1) {
        guard recipients > 0 else { return }
        packetsOut.increment(by: packets.count * recipients)
        var bytes = 0
        for packet in packets { bytes += packet.byteCount }
        bytesOut.increment(by: bytes * recipients)
    }

    func opened(_ transport: EngineTransport) {
        meter(transport).increment()
    }

    func closed(_ transport: EngineTransport) {
        meter(transport).decrement()
    }

    func upgraded() {
        upgrades.increment()
        pollingSessions.decrement()
        webSocketSessions.increment()
    }

    /// Counts an error of one kind, such as `parse_error` or `slow_client`.
    func error(_ kind: String) {
        Counter(label: "engineio_errors_total", dimensions: [("kind", kind)]).increment()
    }

    private func meter(_ transport: EngineTransport) -> Meter {
        transport == .polling ? pollingSessions : webSocketSessions
    }
}
