import Foundation
import Inference

/// Paths relative to this file: Tests/InferenceTests/ -> the checkout.
enum Fixtures {
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let reference = checkout.appendingPathComponent("Tests/Fixtures/reference")
    static let tinyBert = checkout.appendingPathComponent("Tests/Fixtures/tiny-bert/hf")
    static let miniLM = checkout.appendingPathComponent("models/minilm-sst2")
}

/// One record of a reference file (Tests/Fixtures/reference/README.md).
struct ReferenceRecord {
    struct Scores {
        var logits: [Double]
        var lat: [Double]
        var gs: [[Double]]   // [class][T]
        var gi: [[Double]]
        var lrp: [[Double]]
    }
    var id: String
    var input: EncodedInput
    var f64: Scores
    var f32: Scores

    static func load(_ name: String) throws -> [ReferenceRecord] {
        let text = try String(contentsOf: Fixtures.reference.appendingPathComponent(name), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            func scores(_ key: String) -> Scores {
                let d = o[key] as! [String: Any]
                let logits = d["logits"] as! [Double]
                let classes = logits.indices
                return Scores(logits: logits, lat: d["lat"] as! [Double],
                              gs: classes.map { d["gs_\($0)"] as! [Double] },
                              gi: classes.map { d["gi_\($0)"] as! [Double] },
                              lrp: classes.map { d["lrp_\($0)"] as! [Double] })
            }
            return ReferenceRecord(
                id: o["id"] as! String,
                input: EncodedInput(ids: (o["input_ids"] as! [Int]).map(Int32.init),
                                    segments: (o["token_type_ids"] as! [Int]).map(Int32.init)),
                f64: scores("f64"), f32: scores("f32"))
        }
    }
}

/// docs/CONTRACT.md section 5: largest absolute difference / largest absolute reference value.
func relativeError<T: BinaryFloatingPoint>(_ got: [T], _ reference: [Double]) -> Double {
    precondition(got.count == reference.count, "length \(got.count) vs reference \(reference.count)")
    var diff = 0.0, scale = 0.0
    for (g, r) in zip(got, reference) {
        diff = max(diff, abs(Double(g) - r))
        scale = max(scale, abs(r))
    }
    return scale == 0 ? diff : diff / scale
}
