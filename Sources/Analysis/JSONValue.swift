import Foundation
import IO

/// A JSON document with its keys in the order written (docs/CONTRACT.md section
/// 7's layouts read top-down); numbers in Swift's shortest round-trip form,
/// non-finite ones as null.
public indirect enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.text() == b.text() }

    public static func numbers(_ xs: [Double]) -> JSONValue { .array(xs.map { .number($0) }) }

    /// Pretty-printed with two-space indentation; arrays of scalars on one line.
    public func text() -> String {
        var out: [UInt8] = []
        write(&out, indent: 0)
        out.append(0x0a)
        return String(decoding: out, as: UTF8.self)
    }

    /// On one line without spaces (a document embedded in a page).
    public func compactText() -> String {
        var out: [UInt8] = []
        write(&out, indent: -1)
        return String(decoding: out, as: UTF8.self)
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    /// `indent` -1: compact.
    private func write(_ out: inout [UInt8], indent: Int) {
        if indent < 0, case let .array(items) = self {
            out.append(0x5B)
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(0x2C) }
                v.write(&out, indent: -1)
            }
            out.append(0x5D)
            return
        }
        if indent < 0, case let .object(fields) = self {
            out.append(0x7B)
            for (i, (k, v)) in fields.enumerated() {
                if i > 0 { out.append(0x2C) }
                JSONText.appendString(k, to: &out)
                out.append(0x3A)
                v.write(&out, indent: -1)
            }
            out.append(0x7D)
            return
        }
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .int(i): out.append(contentsOf: String(i).utf8)
        case let .number(x): out.append(contentsOf: (x.isFinite ? "\(x)" : "null").utf8)
        case let .string(s): JSONText.appendString(s, to: &out)
        case let .array(items):
            if items.allSatisfy(\.isScalar) {
                out.append(0x5B)
                for (i, v) in items.enumerated() {
                    if i > 0 { out.append(contentsOf: ", ".utf8) }
                    v.write(&out, indent: indent)
                }
                out.append(0x5D)
                return
            }
            out.append(contentsOf: "[\n".utf8)
            for (i, v) in items.enumerated() {
                out.append(contentsOf: [UInt8](repeating: 0x20, count: indent + 2))
                v.write(&out, indent: indent + 2)
                out.append(contentsOf: (i + 1 < items.count ? ",\n" : "\n").utf8)
            }
            out.append(contentsOf: [UInt8](repeating: 0x20, count: indent))
            out.append(0x5D)
        case let .object(fields):
            if fields.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(contentsOf: "{\n".utf8)
            for (i, (k, v)) in fields.enumerated() {
                out.append(contentsOf: [UInt8](repeating: 0x20, count: indent + 2))
                JSONText.appendString(k, to: &out)
                out.append(contentsOf: ": ".utf8)
                v.write(&out, indent: indent + 2)
                out.append(contentsOf: (i + 1 < fields.count ? ",\n" : "\n").utf8)
            }
            out.append(contentsOf: [UInt8](repeating: 0x20, count: indent))
            out.append(0x7D)
        }
    }
}
