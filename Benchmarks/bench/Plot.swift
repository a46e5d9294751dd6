import Foundation

/// A hand-written SVG of two charts: load throughput vs table size (log x), and the worst
/// reader latency per 100 ms slice while each cleanup runs (log y).
enum Plot {
    private static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]
    private static let width = 720.0
    private static let chartHeight = 300.0
    private static let margin = (left: 80.0, right: 230.0, top: 40.0, bottom: 50.0)

    static func svg(_ data: PlotData) -> String {
        let height = 2 * (chartHeight + margin.top + margin.bottom)
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>

            """
        out += chart(
            title: "Point loads (hits): throughput vs table size", xLabel: "rows (log)", yLabel: "loads/s",
            series: data.loads, logX: true, logY: false, top: 0)
        out += chart(
            title: "Worst reader latency per 100 ms during cleanup", xLabel: "seconds since cleanup began",
            yLabel: "µs (log)", series: data.cleanup, logX: false, logY: true, top: chartHeight + margin.top + margin.bottom)
        out += "</svg>\n"
        return out
    }

    private static func chart(
        title: String, xLabel: String, yLabel: String, series: [String: [[Double]]], logX: Bool, logY: Bool, top: Double
    ) -> String {
        let plotWidth = width - margin.left - margin.right
        let x0 = margin.left
        let y0 = top + margin.top
        var out = "<text x=\"\(x0)\" y=\"\(y0 - 14)\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>\n"
        out += "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(plotWidth)\" height=\"\(chartHeight)\" fill=\"none\" stroke=\"#999\"/>\n"
        let points = usable(series.values.flatMap { $0 }, logX: logX, logY: logY)
        guard !points.isEmpty else {
            return out + "<text x=\"\(x0 + 20)\" y=\"\(y0 + 30)\">no data (scenario not run)</text>\n"
        }
        let xs = points.map { scaled($0[0], logX) }
        let ys = points.map { scaled($0[1], logY) }
        var minX = xs.min()!
        var maxX = xs.max()!
        var minY: Double = logY ? ys.min()! : 0
        var maxY: Double = ys.max()!
        if logY {
            minY = minY.rounded(.down)
            maxY = maxY.rounded(.up)
        } else {
            maxY *= 1.1
        }
        if logX {
            minX = minX.rounded(.down)
            maxX = maxX.rounded(.up)
        }
        if maxX == minX { maxX = minX + 1 }
        if maxY == minY { maxY = minY + 1 }
        let xRange = maxX - minX
        let yRange = maxY - minY
        func px(_ v: Double) -> Double {
            let fraction: Double = (scaled(v, logX) - minX) / xRange
            return x0 + fraction * plotWidth
        }
        func py(_ v: Double) -> Double {
            let fraction: Double = (scaled(v, logY) - minY) / yRange
            return y0 + chartHeight - fraction * chartHeight
        }
        // Axes: ticks at powers of ten on log axes, five even steps otherwise.
        let xTicks = ticks(minX, maxX, log: logX)
        let yTicks = ticks(minY, maxY, log: logY)
        for tick in xTicks {
            let x = px(tick)
            out += "<line x1=\"\(x)\" y1=\"\(y0)\" x2=\"\(x)\" y2=\"\(y0 + chartHeight)\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(x)\" y=\"\(y0 + chartHeight + 16)\" text-anchor=\"middle\">\(label(tick))</text>\n"
        }
        for tick in yTicks {
            let y = py(tick)
            out += "<line x1=\"\(x0)\" y1=\"\(y)\" x2=\"\(x0 + plotWidth)\" y2=\"\(y)\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(x0 - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(label(tick))</text>\n"
        }
        out += "<text x=\"\(x0 + plotWidth / 2)\" y=\"\(y0 + chartHeight + 36)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        out += "<text x=\"\(x0 - 60)\" y=\"\(y0 + chartHeight / 2)\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(x0 - 60) \(y0 + chartHeight / 2))\">\(escape(yLabel))</text>\n"
        for (index, name) in series.keys.sorted().enumerated() {
            let color = palette[index % palette.count]
            let line = usable(series[name]!, logX: logX, logY: logY).sorted { $0[0] < $1[0] }
            let path = line.map { "\(Fmt.fixed(px($0[0]), 1)),\(Fmt.fixed(py($0[1]), 1))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            if line.count <= 12 {
                for point in line {
                    out += "<circle cx=\"\(Fmt.fixed(px(point[0]), 1))\" cy=\"\(Fmt.fixed(py(point[1]), 1))\" r=\"3\" fill=\"\(color)\"/>\n"
                }
            }
            let legendY = y0 + 12 + Double(index) * 16
            out += "<line x1=\"\(x0 + plotWidth + 12)\" y1=\"\(legendY - 4)\" x2=\"\(x0 + plotWidth + 30)\" y2=\"\(legendY - 4)\" "
                + "stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(x0 + plotWidth + 34)\" y=\"\(legendY)\">\(escape(name))</text>\n"
        }
        return out
    }

    private static func usable(_ points: [[Double]], logX: Bool, logY: Bool) -> [[Double]] {
        points.filter { point in
            guard point.count == 2 else { return false }
            if logX && point[0] <= 0 { return false }
            if logY && point[1] <= 0 { return false }
            return true
        }
    }

    private static func scaled(_ value: Double, _ log: Bool) -> Double {
        log ? log10(value) : value
    }

    /// Tick values (unscaled): powers of ten on a log axis, six even steps otherwise.
    private static func ticks(_ low: Double, _ high: Double, log: Bool) -> [Double] {
        if log {
            return stride(from: low, through: high, by: 1).map { exponent in pow(10, exponent) }
        }
        return (0...5).map { step in low + (high - low) * Double(step) / 5 }
    }

    private static func label(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude >= 1_000_000 { return Fmt.num(value / 1_000_000) + "M" }
        if magnitude >= 1000 { return Fmt.num(value / 1000) + "k" }
        return Fmt.num(value)
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
