import Foundation
import ModelFiles

/// The converter's side of config.json: finding the source's config and
/// writing the model directory's.
extension BertConfig {
    /// The converter's config: `explicit`, else `config.json` or `bert_config.json` in `dir`.
    static func load(_ explicit: URL?, beside dir: String) throws -> BertConfig {
        let fm = FileManager.default
        let path: String
        if let explicit {
            path = explicit.path
            guard fm.fileExists(atPath: path) else { throw ConversionError.badConfig(file: path, reason: "no such config file") }
        } else {
            let candidates = ["config.json", "bert_config.json"].map { (dir as NSString).appendingPathComponent($0) }
            guard let found = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
                throw ConversionError.badConfig(file: dir, reason: "no config.json or bert_config.json beside the checkpoint; give --config")
            }
            path = found
        }
        do { return try read(file: path) } catch let e as Invalid {
            throw ConversionError.badConfig(file: e.file, reason: e.reason)
        }
    }

    /// The source's fields plus what the contract requires, with the class names.
    func write(to path: String, labels: [String]) throws {
        var out = fields
        out["model_type"] = "bert"
        out["architectures"] = ["BertForSequenceClassification"]
        if out["layer_norm_eps"] == nil { out["layer_norm_eps"] = 1e-12 }
        if out["hidden_act"] == nil { out["hidden_act"] = "gelu" }
        var id2label: [String: String] = [:]
        var label2id: [String: Int] = [:]
        for (i, name) in labels.enumerated() {
            id2label[String(i)] = name
            label2id[name] = i
        }
        out["id2label"] = id2label
        out["label2id"] = label2id
        out.removeValue(forKey: "num_labels")
        do {
            var data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            data.append(0x0A)
            try CheckpointConverter.writeFile(data, to: path)
        } catch let error as ConversionError {
            throw error
        } catch {
            throw ConversionError.output(path: path, reason: "cannot write: \(systemReason(error))")
        }
    }
}
