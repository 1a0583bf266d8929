import Foundation
import Inference
import Tokenizer

/// What the pipeline needs from a model directory: class names, the
/// tokenizer, and a factory of per-worker engines sharing one immutable model.
public struct LoadedModel: Sendable {
    public var labels: [String]
    public var maxPositions: Int
    public var config: ModelConfig
    public var encoder: TextEncoder
    public var makeRunner: @Sendable () throws -> ExampleRunner

    /// Loads `dir` (CONTRACT.md section 1). `fake`: the whitespace tokenizer and
    /// the fake engine with the model's classes (tests of the pipeline; the
    /// fake's delay per token comes from BERTLRP_FAKE_DELAY_US).
    public static func load(_ dir: URL, fake: Bool) throws -> LoadedModel {
        let config = try ModelConfig.load(dir.appendingPathComponent("config.json"))
        if fake {
            let n = config.labels.count
            let delay = Int(ProcessInfo.processInfo.environment["BERTLRP_FAKE_DELAY_US"] ?? "") ?? 0
            return LoadedModel(labels: config.labels, maxPositions: config.maxPositions, config: config,
                               encoder: WhitespaceEncoder(), makeRunner: { FakeRunner(numClasses: n, microsecondsPerToken: delay) })
        }
        let model = try BertModel(directory: dir)
        let tokenizer = try BertTokenizer.load(modelDirectory: dir)
        // One OpenBLAS thread per worker: the workers are the parallel layer.
        Engine.setBLASThreads(1)
        return LoadedModel(labels: config.labels, maxPositions: config.maxPositions, config: config,
                           encoder: BertTextEncoder(tokenizer: tokenizer), makeRunner: { EngineRunner(model: model) })
    }

    /// The micro-batch budget in tokens that keeps one worker's engine
    /// scratch near `bytesPerWorker`. The engine keeps every layer's
    /// activations for the backward passes; per token about L·(11H + 3I) + 4H
    /// floats forward, L·heads·T for the attention maps, and per target (9H + I)
    /// per backward pass plus 3·max(I, H) + I + 4H for LRP (the engine's own
    /// scratch accounting). MiniLM-L6-H384, all methods, one target: ~400
    /// tokens; BERT-base: one 128-token example. Larger budgets buy nothing:
    /// on SST-2 dev with the bundled model 400 and 1200 tokens ran at the same
    /// speed (48.1 and 47.4 records/s) in 493 MB and 1014 MB of resident memory.
    public func batchTokens(methods: Methods, targetsPerExample: Int, longest: Int, bytesPerWorker: Int = 128 << 20) -> Int {
        let c = config
        let h = c.hiddenSize, i = c.intermediateSize, l = c.numLayers
        var floats = l * (11 * h + 3 * i + 2) + 4 * h + l * c.numHeads * longest
        if methods.needsTargets {
            let passes = (methods.intersection([.gs, .gi]).isEmpty ? 0 : 1) + (methods.contains(.lrp) ? 1 : 0)
            floats += targetsPerExample * passes * (9 * h + i)
            if methods.contains(.lrp) { floats += max(i, 3 * h) + targetsPerExample * (3 * max(i, h) + i + 4 * h) }
        }
        return min(4096, max(128, bytesPerWorker / (4 * max(1, floats))))
    }
}
