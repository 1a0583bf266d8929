import ArgumentParser
import Dispatch
import Foundation
import Inference

/// `bertlrp-batch benchmark engine`: throughput of the inference engine for
/// forward only, forward + gs + gi, and forward + all four methods (predicted
/// class), on the bundled model over the SST-2 dev sentences and on a
/// BERT-base-sized model with random weights; plus this machine's sgemm rate
/// measured in the same run and the share of time spent inside sgemm.
struct EngineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Measure the inference engine (examples/s, tokens/s, share of time in sgemm).")

    @Option(help: "Model directory for the first workload (default: the bundled model).")
    var model: String?
    @Option(help: "SST-2 dev file (TSV with a 'sentence' column; default: data/sst2/dev.tsv of the checkout).")
    var data: String?
    @Option(help: "Sentences to use from the data file (0: all).")
    var limit = 0
    @Option(help: "Examples per micro-batch.")
    var batchSize = 8
    @Option(help: "At most this many tokens per micro-batch (0: no limit).")
    var maxBatchTokens = 0
    @Option(help: "Parallel workers, each with its own engine (OpenBLAS then runs 1 thread each).")
    var workers = 1
    @Option(help: "OpenBLAS threads when there is one worker.")
    var threads = 2
    @Option(help: "Passes over the data per measurement (the best is reported).")
    var repeats = 2
    @Option(help: "BERT-base workload: number of texts of --base-tokens tokens.")
    var baseExamples = 16
    @Option(help: "BERT-base workload: tokens per text.")
    var baseTokens = 128
    @Option(help: "BERT-base workload: examples per micro-batch.")
    var baseBatchSize = 4
    @Flag(help: "Skip the BERT-base-sized workload.")
    var skipBase = false
    @Flag(help: "Skip the bundled-model workload.")
    var skipBundled = false

    func validate() throws {
        guard batchSize > 0, workers > 0, threads > 0, repeats > 0, baseExamples > 0, baseTokens > 2, baseBatchSize > 0 else {
            throw ValidationError("--batch-size, --workers, --threads, --repeats and the --base-* options must be positive")
        }
    }

    func run() throws {
        let blasThreads = workers == 1 ? threads : 1
        Engine.setBLASThreads(blasThreads)
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) CPUs; \(workers) worker(s), OpenBLAS \(blasThreads) thread(s) each")
        print(String(format: "sgemm 1024x768x768: %.1f GFLOP/s at %d thread(s)", Engine.measureSgemm(m: 1024, n: 768, k: 768), blasThreads))

        if !skipBundled {
            guard let dir = model.map({ URL(fileURLWithPath: $0) }) ?? BundledModel.locate() else {
                throw ValidationError("no bundled model found; pass --model DIR")
            }
            let bert = try loadModel(dir)
            let dataURL = data.map { URL(fileURLWithPath: $0) } ?? Self.checkout.appendingPathComponent("data/sst2/dev.tsv")
            let vocabURL = dir.appendingPathComponent("vocab.txt")
            var inputs = try CrudeTokenizer(vocab: vocabURL).encodeTSV(dataURL, maxTokens: 128)
            if limit > 0 { inputs = Array(inputs.prefix(limit)) }
            let tokens = inputs.reduce(0) { $0 + $1.ids.count }
            print("\n\(dir.lastPathComponent) (\(bert.config.numLayers) layers, hidden \(bert.config.hiddenSize)): \(inputs.count) sentences of \(dataURL.lastPathComponent), \(tokens) tokens, micro-batches of \(batchSize)")
            print("  (ids from a crude lowercase + punctuation split + greedy WordPiece over vocab.txt, until the real tokenizer lands)")
            measureAll(bert, inputs, batchSize: batchSize, seedFigures: ["forward": "HF 100-104", "forward+gs+gi": "seed fwd+gs 42-46, Captum 33-35", "forward+all4": "seed 11.8-13.2"])
        }
        if !skipBase {
            let config = ModelConfig(hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072,
                                     maxPositions: 512, typeVocabSize: 2, vocabSize: 30522, labels: ["0", "1"])
            let bert = BertModel(randomWithConfig: config)
            var rng = SystemRandomNumberGenerator()
            let inputs = (0..<baseExamples).map { _ in
                EncodedInput(ids: [101] + (0..<(baseTokens - 2)).map { _ in Int32.random(in: 1000..<30000, using: &rng) } + [102],
                             segments: [Int32](repeating: 0, count: baseTokens))
            }
            print("\nBERT-base size (12 layers, hidden 768, 12 heads, 3072), random weights: \(baseExamples) texts of \(baseTokens) tokens, micro-batches of \(baseBatchSize)")
            measureAll(bert, inputs, batchSize: baseBatchSize, seedFigures: ["forward": "HF 5.0", "forward+gs+gi": "seed fwd+gs 2.1, Captum 1.7", "forward+all4": "seed 0.68"])
        }
    }

    private func loadModel(_ dir: URL) throws -> BertModel {
        do { return try BertModel(directory: dir) } catch { throw ValidationError("\(error)") }
    }

    private func measureAll(_ model: BertModel, _ inputs: [EncodedInput], batchSize: Int, seedFigures: [String: String]) {
        let batches = Self.microBatches(inputs, size: batchSize, maxTokens: maxBatchTokens)
        let tokens = inputs.reduce(0) { $0 + $1.ids.count }
        let engines = (0..<workers).map { _ in Engine(model: model) }
        for (name, methods) in [("forward", Methods()), ("forward+gs+gi", Methods([.gs, .gi])), ("forward+all4", Methods.all)] {
            // Warm-up: one micro-batch per engine (buffers grow to size).
            for e in engines { _ = try? e.run(batches[0], methods: methods, targets: .predicted) }
            var best = Double.infinity, gemmShare = 0.0, gflops = 0.0, work = 0.0
            for _ in 0..<repeats {
                engines.forEach { $0.resetCounters(); $0.timing = true }
                let start = DispatchTime.now().uptimeNanoseconds
                if workers == 1 {
                    for b in batches { _ = try? engines[0].run(b, methods: methods, targets: .predicted) }
                } else {
                    let next = Counter()
                    DispatchQueue.concurrentPerform(iterations: workers) { w in
                        while let i = next.take(below: batches.count) {
                            _ = try? engines[w].run(batches[i], methods: methods, targets: .predicted)
                        }
                    }
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                if seconds < best {
                    best = seconds
                    let inGemm = engines.reduce(0) { $0 + $1.gemmSeconds }
                    gemmShare = inGemm / (seconds * Double(workers))
                    work = engines.reduce(0) { $0 + $1.gemmFlops }
                    gflops = work / max(inGemm, 1e-9) * 1e-9
                }
            }
            let line = String(format: "  %-14@ %8.2f ex/s %9.0f tokens/s   %4.1f%% of time in sgemm (%.0f GFLOP/s there, %.3f GFLOP/example)",
                              name, Double(inputs.count) / best, Double(tokens) / best, 100 * gemmShare, gflops,
                              work * 1e-9 / Double(inputs.count))
            print(line + "   [peers: \(seedFigures[name] ?? "-") ex/s]")
        }
    }

    /// The checkout this file was compiled from (for data/sst2/dev.tsv).
    static var checkout: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func microBatches(_ inputs: [EncodedInput], size: Int, maxTokens: Int) -> [[EncodedInput]] {
        var batches: [[EncodedInput]] = [], current: [EncodedInput] = [], tokens = 0
        for input in inputs {
            if !current.isEmpty && (current.count == size || (maxTokens > 0 && tokens + input.ids.count > maxTokens)) {
                batches.append(current); current = []; tokens = 0
            }
            current.append(input); tokens += input.ids.count
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }
}

/// Hands out micro-batch indices to the workers.
private final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func take(below limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// Stand-in for the real tokenizer (issue 2) so that the benchmark runs today:
/// lowercase, split on whitespace and ASCII punctuation, greedy longest-match
/// WordPiece. Close to BERT's for SST-2's already tokenized, lowercased text.
struct CrudeTokenizer {
    let vocab: [Substring: Int32]
    init(vocab url: URL) throws {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ValidationError("\(url.path): cannot read the vocabulary")
        }
        var v: [Substring: Int32] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            v[line] = Int32(i)
        }
        vocab = v
    }

    func encode(_ text: String, maxTokens: Int) -> EncodedInput {
        var words: [String] = [], current = ""
        for ch in text.lowercased() {
            if ch.isWhitespace {
                if !current.isEmpty { words.append(current); current = "" }
            } else if ch.isPunctuation || ch.isSymbol {
                if !current.isEmpty { words.append(current); current = "" }
                words.append(String(ch))
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { words.append(current) }
        var ids: [Int32] = [vocab["[CLS]"] ?? 101]
        let unk = vocab["[UNK]"] ?? 100
        for word in words {
            var start = word.startIndex
            var pieces: [Int32] = []
            while start < word.endIndex {
                var end = word.endIndex
                var found: Int32?
                while end > start {
                    let piece = (start == word.startIndex ? "" : "##") + word[start..<end]
                    if let id = vocab[Substring(piece)] { found = id; break }
                    end = word.index(before: end)
                }
                guard let id = found else { pieces = [unk]; break }
                pieces.append(id)
                start = end
            }
            ids += pieces
        }
        ids = Array(ids.prefix(maxTokens - 1)) + [vocab["[SEP]"] ?? 102]
        return EncodedInput(ids: ids, segments: [Int32](repeating: 0, count: ids.count))
    }

    func encodeTSV(_ url: URL, maxTokens: Int) throws -> [EncodedInput] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ValidationError("\(url.path): cannot read the data file")
        }
        let lines = text.split(separator: "\n")
        guard let header = lines.first?.split(separator: "\t", omittingEmptySubsequences: false),
              let column = header.firstIndex(of: "sentence") else {
            throw ValidationError("\(url.path): no 'sentence' column in the header")
        }
        return lines.dropFirst().compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            return column < fields.count ? encode(String(fields[column]), maxTokens: maxTokens) : nil
        }
    }
}
