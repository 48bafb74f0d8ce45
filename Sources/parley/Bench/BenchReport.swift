import Foundation
import SocketIO

/// One step of load, as all workers saw it.
struct StepResult {
    var number = 0
    var messageRate = 0.0
    var offeredDeliveries = 0.0
    var sent = 0, expected = 0, received = 0, lost = 0, duplicated = 0, stray = 0, disconnects = 0
    var deliveriesPerSecond = 0.0
    var p50 = 0.0, p95 = 0.0, p99 = 0.0, max = 0.0
    var serverCPUSeconds: Double?
    /// The part of ``serverCPUSeconds`` spent in the kernel (on loopback, that includes the
    /// receiving side of every TCP segment the server sends).
    var serverSystemCPUSeconds: Double?
    /// Why the step did not pass, in a ceiling run.
    var failure: String?

    init(setting: StepSetting, replies: [JSONValue]) {
        number = setting.number
        messageRate = setting.messageRate
        offeredDeliveries = setting.offeredDeliveries
        var histogram = LatencyHistogram()
        var firstSend = Int64.max
        var lastReceipt: Int64 = 0
        for reply in replies {
            let count = { (key: String) in reply[key]?.intValue ?? 0 }
            sent += count("sent")
            expected += count("expected")
            received += count("received")
            lost += count("lost")
            duplicated += count("duplicated")
            stray += count("stray")
            disconnects += count("disconnects")
            histogram.merge(LatencyHistogram(json: reply["histogram"]))
            if count("sent") > 0 { firstSend = Swift.min(firstSend, Int64(reply["firstSendMicros"]?.numberValue ?? 0)) }
            lastReceipt = Swift.max(lastReceipt, Int64(reply["lastReceiptMicros"]?.numberValue ?? 0))
        }
        // The offered rate in deliveries: messages sent times the members of their rooms.
        if sent > 0 { offeredDeliveries = messageRate * Double(expected) / Double(sent) }
        if received > 0, lastReceipt > firstSend {
            deliveriesPerSecond = Double(received) / (Double(lastReceipt - firstSend) / 1e6)
        }
        p50 = histogram.percentileMs(0.5)
        p95 = histogram.percentileMs(0.95)
        p99 = histogram.percentileMs(0.99)
        max = histogram.maxMs
    }

    init(json: JSONValue) {
        let number = { (key: String) in json[key]?.numberValue ?? 0 }
        self.number = Int(number("step"))
        messageRate = number("messageRate")
        offeredDeliveries = number("offeredDeliveriesPerSecond")
        sent = Int(number("sent"))
        expected = Int(number("expected"))
        received = Int(number("received"))
        lost = Int(number("lost"))
        duplicated = Int(number("duplicated"))
        deliveriesPerSecond = number("deliveriesPerSecond")
        p50 = json["latencyMs"]?["p50"]?.numberValue ?? 0
        p95 = json["latencyMs"]?["p95"]?.numberValue ?? 0
        p99 = json["latencyMs"]?["p99"]?.numberValue ?? 0
        max = json["latencyMs"]?["max"]?.numberValue ?? 0
        serverCPUSeconds = json["serverCPUSeconds"]?.numberValue
        serverSystemCPUSeconds = json["serverSystemCPUSeconds"]?.numberValue
        failure = json["failure"]?.stringValue
    }

    /// Server CPU per delivered message, in microseconds.
    var cpuMicrosPerDelivery: Double? {
        guard let serverCPUSeconds, received > 0 else { return nil }
        return serverCPUSeconds * 1e6 / Double(received)
    }

    /// The kernel's part of ``cpuMicrosPerDelivery``.
    var systemCPUMicrosPerDelivery: Double? {
        guard let serverSystemCPUSeconds, received > 0 else { return nil }
        return serverSystemCPUSeconds * 1e6 / Double(received)
    }

    /// Why this step does not count as sustained, or `nil` when it does.
    func verdict(p99Bound: Double, minDelivered: Double, minKeptUp: Double) -> String? {
        if duplicated > 0 { return "\(duplicated) deliveries duplicated" }
        let delivered = expected > 0 ? Double(expected - lost) / Double(expected) : 0
        if delivered < minDelivered { return String(format: "only %.2f%% delivered", delivered * 100) }
        if p99 > p99Bound { return "p99 \(Table.ms(p99)) over \(Table.ms(p99Bound))" }
        if deliveriesPerSecond < minKeptUp * offeredDeliveries {
            return "fell behind: \(Int(deliveriesPerSecond)) of \(Int(offeredDeliveries)) deliveries/s"
        }
        return nil
    }

    func with(verdict: String?) -> StepResult {
        var copy = self
        copy.failure = verdict
        return copy
    }

    var json: JSONValue {
        var object: JSONObject = [
            "step": .number(Double(number)), "messageRate": .number(messageRate), "offeredDeliveriesPerSecond": .number(offeredDeliveries),
            "sent": .number(Double(sent)), "expected": .number(Double(expected)), "received": .number(Double(received)),
            "lost": .number(Double(lost)), "duplicated": .number(Double(duplicated)), "stray": .number(Double(stray)),
            "disconnects": .number(Double(disconnects)), "deliveriesPerSecond": .number(deliveriesPerSecond),
            "latencyMs": ["p50": .number(p50), "p95": .number(p95), "p99": .number(p99), "max": .number(max)],
        ]
        if let serverCPUSeconds { object["serverCPUSeconds"] = .number(serverCPUSeconds) }
        if let cpuMicrosPerDelivery { object["serverCPUMicrosPerDelivery"] = .number(cpuMicrosPerDelivery) }
        if let serverSystemCPUSeconds { object["serverSystemCPUSeconds"] = .number(serverSystemCPUSeconds) }
        if let systemCPUMicrosPerDelivery { object["serverSystemCPUMicrosPerDelivery"] = .number(systemCPUMicrosPerDelivery) }
        if let failure { object["failure"] = .string(failure) }
        return .object(object)
    }

    /// The one-step table of `fanout`.
    func table(connected opened: BenchRun.Opened) -> String {
        var table = Table(["", "value"])
        table.add(["connected", "\(opened.connected) (\(opened.failures) failed)"])
        table.add(["sent", "\(sent)"])
        table.add(["expected", "\(expected)"])
        table.add(["received", "\(received)"])
        table.add(["lost", "\(lost)"])
        table.add(["duplicated", "\(duplicated)"])
        table.add(["offered/s", String(format: "%.0f deliveries", offeredDeliveries)])
        table.add(["deliveries/s", String(format: "%.0f", deliveriesPerSecond)])
        table.add(["latency p50", Table.ms(p50)])
        table.add(["latency p95", Table.ms(p95)])
        table.add(["latency p99", Table.ms(p99)])
        table.add(["latency max", Table.ms(max)])
        if let cpu = cpuMicrosPerDelivery {
            let kernel = systemCPUMicrosPerDelivery.map { String(format: " (%.1f µs in the kernel)", $0) } ?? ""
            table.add(["server CPU", String(format: "%.1f µs per delivery", cpu) + kernel])
        }
        return table.text
    }

    /// The table of a ceiling run: a row per step.
    static func table(_ steps: [StepResult]) -> String {
        var table = Table(["offered/s", "delivered/s", "delivered", "p50", "p95", "p99", "max", "CPU/delivery", "verdict"])
        for step in steps {
            let delivered = step.expected > 0 ? Double(step.expected - step.lost) / Double(step.expected) * 100 : 0
            table.add([
                String(format: "%.0f", step.offeredDeliveries), String(format: "%.0f", step.deliveriesPerSecond),
                String(format: "%.2f%%", delivered), Table.ms(step.p50), Table.ms(step.p95), Table.ms(step.p99), Table.ms(step.max),
                step.cpuMicrosPerDelivery.map { String(format: "%.1f µs", $0) } ?? "–", step.failure ?? "sustained",
            ])
        }
        return table.text
    }
}

/// A plain-text table with aligned columns.
struct Table {
    private var rows: [[String]]

    init(_ header: [String]) { rows = [header] }

    mutating func add(_ row: [String]) { rows.append(row) }

    var text: String {
        let widths = rows[0].indices.map { column in rows.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
        return rows.enumerated().compactMap { index, row -> String? in
            // A key-value table has an empty first header: leave the header out.
            if index == 0, row.first == "", row.count == 2 { return nil }
            return row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }.joined()
        }.joined(separator: "\n")
    }

    static func ms(_ value: Double) -> String {
        value < 10 ? String(format: "%.2f ms", value) : String(format: "%.0f ms", value)
    }
}

/// An SVG chart of latency (p50 dashed, p99 solid, log scale) against the offered delivery rate,
/// one colour per series.
struct LatencyPlot {
    let series: [(label: String, steps: [StepResult])]
    let bound: Double?

    private static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    private let width = 760.0, height = 440.0
    private let left = 70.0, right = 200.0, top = 40.0, bottom = 60.0

    var svg: String {
        let steps = series.flatMap(\.steps)
        let maxRate = niceCeiling(steps.map(\.offeredDeliveries).max() ?? 1)
        let latencies = steps.flatMap { [$0.p50, $0.p99] }.filter { $0 > 0 } + (bound.map { [$0] } ?? [])
        let low = pow(10, floor(log10(Swift.max(0.01, latencies.min() ?? 0.1))))
        let high = pow(10, ceil(log10(Swift.max(low * 10, latencies.max() ?? 1))))
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ rate: Double) -> Double { left + rate / maxRate * plotWidth }
        func y(_ ms: Double) -> Double {
            top + plotHeight - (log10(Swift.max(ms, low)) - log10(low)) / (log10(high) - log10(low)) * plotHeight
        }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15" font-weight="bold">Delivery latency against offered load</text>

            """
        // Grid and axes.
        var decade = low
        while decade <= high * 1.0001 {
            let py = y(decade)
            out += "<line x1=\"\(left)\" y1=\"\(py)\" x2=\"\(left + plotWidth)\" y2=\"\(py)\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(py + 4)\" text-anchor=\"end\">\(Self.format(ms: decade))</text>\n"
            decade *= 10
        }
        for tick in 0...5 {
            let rate = maxRate * Double(tick) / 5
            let px = x(rate)
            out += "<line x1=\"\(px)\" y1=\"\(top)\" x2=\"\(px)\" y2=\"\(top + plotHeight)\" stroke=\"#eee\"/>"
            out += "<text x=\"\(px)\" y=\"\(top + plotHeight + 18)\" text-anchor=\"middle\">\(Self.format(rate: rate))</text>\n"
        }
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" fill=\"none\" stroke=\"#333\"/>\n"
        out += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 15)\" text-anchor=\"middle\">offered deliveries per second</text>\n"
        out += "<text transform=\"translate(18 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\">latency (ms, log scale)</text>\n"
        if let bound {
            out += "<line x1=\"\(left)\" y1=\"\(y(bound))\" x2=\"\(left + plotWidth)\" y2=\"\(y(bound))\" stroke=\"#999\" stroke-dasharray=\"2 3\"/>"
            out += "<text x=\"\(left + plotWidth - 4)\" y=\"\(y(bound) - 4)\" text-anchor=\"end\" fill=\"#666\">p99 bound \(Self.format(ms: bound))</text>\n"
        }
        // Series.
        for (index, entry) in series.enumerated() {
            let colour = Self.colours[index % Self.colours.count]
            let sorted = entry.steps.sorted { $0.offeredDeliveries < $1.offeredDeliveries }
            for (key, dash) in [(\StepResult.p99, ""), (\StepResult.p50, " stroke-dasharray=\"5 4\"")] {
                let points = sorted.map { "\(x($0.offeredDeliveries)),\(y($0[keyPath: key]))" }.joined(separator: " ")
                out += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"\(dash)/>\n"
            }
            for step in sorted {
                let fill = step.failure == nil ? colour : "white"
                out += "<circle cx=\"\(x(step.offeredDeliveries))\" cy=\"\(y(step.p99))\" r=\"3.5\" fill=\"\(fill)\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>\n"
            }
            let legendY = top + 10 + Double(index) * 36
            out += "<line x1=\"\(width - right + 15)\" y1=\"\(legendY)\" x2=\"\(width - right + 40)\" y2=\"\(legendY)\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(width - right + 46)\" y=\"\(legendY + 4)\">\(Self.escape(entry.label)) p99</text>\n"
            out += "<line x1=\"\(width - right + 15)\" y1=\"\(legendY + 16)\" x2=\"\(width - right + 40)\" y2=\"\(legendY + 16)\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-dasharray=\"5 4\"/>"
            out += "<text x=\"\(width - right + 46)\" y=\"\(legendY + 20)\">\(Self.escape(entry.label)) p50</text>\n"
        }
        let note = top + 10 + Double(series.count) * 36 + 6
        out += "<text x=\"\(width - right + 15)\" y=\"\(note)\" fill=\"#666\">hollow: step not sustained</text>\n"
        out += "</svg>\n"
        return out
    }

    private func niceCeiling(_ value: Double) -> Double {
        let magnitude = pow(10, floor(log10(Swift.max(value, 1))))
        for multiple in [1.0, 2, 2.5, 5, 10] where multiple * magnitude >= value { return multiple * magnitude }
        return 10 * magnitude
    }

    static func format(ms: Double) -> String {
        ms >= 1 ? "\(Int(ms)) ms" : String(format: "%g ms", ms)
    }

    static func format(rate: Double) -> String {
        rate >= 1000 ? String(format: "%gk", rate / 1000) : String(format: "%g", rate)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
