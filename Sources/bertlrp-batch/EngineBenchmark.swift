import ArgumentParser
import Dispatch
import Foundation
import Inference
import IO
import Pipeline
import Tokenizer

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
    @Option(help: "Parallel workers, each with its own engine (OpenBLAS then runs 1 thread each; default: the cores).")
    var workers = ProcessInfo.processInfo.activeProcessorCount
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
    @Option(help: "Measurements to run, comma-separated: forward, gsgi, all4.")
    var modes = "forward,gsgi,all4"
    @Flag(help: "Skip the BERT-base-sized workload.")
    var skipBase = false
    @Flag(help: "Skip the bundled-model workload.")
    var skipBundled = false

    func validate() throws {
        let known: Set<Substring> = ["forward", "gsgi", "all4"]
        guard modes.split(separator: ",").allSatisfy({ known.contains($0) }) else {
            throw ValidationError("--modes takes forward, gsgi and all4, comma-separated")
        }
        guard batchSize > 0, workers > 0, threads > 0, repeats > 0, baseExamples > 0, baseTokens > 2, baseBatchSize > 0 else {
            throw ValidationError("--batch-size, --workers, --threads, --repeats and the --base-* options must be positive")
        }
        guard workers <= Threads.maxWorkers else {
            throw ValidationError("--workers \(workers): at most \(Threads.maxWorkers) on this machine (4 per processor, 64 in all)")
        }
    }

    func run() throws {
        let blasThreads = workers == 1 ? threads : 1
        Engine.setBLASThreads(blasThreads)
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) CPUs; \(workers) worker(s), OpenBLAS \(blasThreads) thread(s) each")
        print(String(format: "sgemm 1024x768x768: %.1f GFLOP/s at %d thread(s)", Engine.measureSgemm(m: 1024, n: 768, k: 768), blasThreads))

        if !skipBundled {
            guard let dir = model.map({ URL(fileURLWithPath: $0) }) ?? BundledModel.locate() else {
                throw CommandFailure("no bundled model found; pass --model DIR")
            }
            let bert = try loadModel(dir)
            let dataURL = data.map { URL(fileURLWithPath: $0) } ?? Self.checkout.appendingPathComponent("data/sst2/dev.tsv")
            var inputs = try BenchmarkInputs.encode(dataURL, modelDirectory: dir, maxTokens: 128)
            if limit > 0 { inputs = Array(inputs.prefix(limit)) }
            let tokens = inputs.reduce(0) { $0 + $1.ids.count }
            print("\n\(dir.lastPathComponent) (\(bert.config.numLayers) layers, hidden \(bert.config.hiddenSize)): \(inputs.count) sentences of \(dataURL.lastPathComponent), \(tokens) tokens, micro-batches of \(batchSize)")
            try measureAll(bert, inputs, batchSize: batchSize, seedFigures: ["forward": "HF 100-104", "forward+gs+gi": "seed fwd+gs 42-46, Captum 33-35", "forward+all4": "seed 11.8-13.2"])
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
            try measureAll(bert, inputs, batchSize: baseBatchSize, seedFigures: ["forward": "HF 5.0", "forward+gs+gi": "seed fwd+gs 2.1, Captum 1.7", "forward+all4": "seed 0.68"])
        }
    }

    private func loadModel(_ dir: URL) throws -> BertModel {
        do { return try BertModel(directory: dir) } catch { throw CommandFailure("\(error)") }
    }

    private func measureAll(_ model: BertModel, _ inputs: [EncodedInput], batchSize: Int, seedFigures: [String: String]) throws {
        let batches = Self.microBatches(inputs, size: batchSize, maxTokens: maxBatchTokens)
        let tokens = inputs.reduce(0) { $0 + $1.ids.count }
        let engines = (0..<workers).map { _ in Engine(model: model) }
        let wanted = Set(modes.split(separator: ",").map(String.init))
        let all: [(key: String, name: String, methods: Methods)] = [
            ("forward", "forward", []), ("gsgi", "forward+gs+gi", [.gs, .gi]), ("all4", "forward+all4", .all)]
        for (_, name, methods) in all.filter({ wanted.contains($0.key) }) {
            // Warm-up: one micro-batch per engine (buffers grow to size).
            for e in engines { _ = try? e.run(batches[0], methods: methods, targets: .predicted) }
            var best = Double.infinity, gemmShare = 0.0, gflops = 0.0, work = 0.0, bestCPU = Double.infinity
            for _ in 0..<repeats {
                engines.forEach { $0.resetCounters(); $0.timing = true }
                let start = DispatchTime.now().uptimeNanoseconds, cpuStart = Self.cpuSeconds()
                let pool = try WorkerPool<Engine, [EncodedInput]>(states: engines, label: "bertlrp-benchmark") { engine, batch in
                    _ = try? engine.run(batch, methods: methods, targets: .predicted)
                }
                for b in batches { pool.submit(b) }
                pool.finish()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                bestCPU = min(bestCPU, Self.cpuSeconds() - cpuStart)
                if seconds < best {
                    best = seconds
                    let inGemm = engines.reduce(0) { $0 + $1.gemmSeconds }
                    gemmShare = inGemm / (seconds * Double(workers))
                    work = engines.reduce(0) { $0 + $1.gemmFlops }
                    gflops = work / max(inGemm, 1e-9) * 1e-9
                }
            }
            let line = String(format: "  %-14@ %8.2f ex/s %9.0f tokens/s (%7.2f ex per 2 CPU-s)   %4.1f%% of time in sgemm (%.0f GFLOP/s there, %.3f GFLOP/example)",
                              name, Double(inputs.count) / best, Double(tokens) / best, Double(inputs.count) / (bestCPU / 2),
                              100 * gemmShare, gflops, work * 1e-9 / Double(inputs.count))
            print(line + "   [PEERS.md: \(seedFigures[name] ?? "-") ex/s]")
        }
    }

    /// The checkout this file was compiled from (for data/sst2/dev.tsv).
    static var checkout: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// User + system CPU time of this process: with a shared machine, examples
    /// per 2 CPU-seconds compare better across runs than wall-clock figures.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
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


/// The SST-2 sentences as the model sees them: the record reader and the real
/// tokenizer, cut to `maxTokens` as the pipeline does.
enum BenchmarkInputs {
    static func encode(_ url: URL, modelDirectory: URL, maxTokens: Int) throws -> [EncodedInput] {
        let tokenizer = try BertTokenizer.load(modelDirectory: modelDirectory)
        let reader = RecordReader(inputs: [url.path])
        let workspace = TokenizerWorkspace()
        var inputs: [EncodedInput] = []
        while let item = try reader.next() {
            guard case let .record(r) = item else { continue }
            let e = tokenizer.encode(r.text, pair: r.textB, maxSequenceLength: maxTokens, workspace: workspace)
            inputs.append(EncodedInput(ids: e.ids, segments: e.segments))
        }
        return inputs
    }
}
