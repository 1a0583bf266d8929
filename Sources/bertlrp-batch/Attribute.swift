import ArgumentParser
import Foundation
import Inference
import IO
import Pipeline

/// `bertlrp-batch [attribute]`: explanations for every input record, as
/// zstd-compressed JSONL shards (CONTRACT.md sections 2-4, 6).
struct Attribute: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attribute",
        abstract: "Explain every input record (gs, gi, lrp, lat) into zstd-compressed JSONL shards.",
        discussion: """
        Reads TSV or JSONL records from the INPUT files or standard input and writes \
        DIR/part-NNNNN.jsonl.zst in input order, DIR/manifest.json and DIR/errors.jsonl. \
        Exit codes: 0 all records done, 3 some records failed (see errors.jsonl), 2 usage or configuration error.
        """
    )

    @OptionGroup var input: InputOptions

    @Option(help: "Model directory (default: the bundled model; BERTLRP_MODEL overrides).")
    var model: String?

    @Option(help: "Methods, comma-separated: gs, gi, lrp, lat.")
    var methods = "gs,gi,lrp,lat"

    @Option(help: "Classes to explain: predicted, all, a class number, a class name, or gold (the label field).")
    var target = "predicted"

    @Option(name: .customLong("max-seq-length"), help: "Tokens per example, [CLS] and [SEP] included.")
    var maxSeqLength = 128

    @Option(help: "Worker threads (default: the active cores; at most 4 per core).")
    var workers: Int?

    @Option(name: .customLong("shard-size"), help: "Records a shard.")
    var shardSize = 10_000

    @Flag(help: "Finish an interrupted run in the output directory (same command and options).")
    var resume = false

    @Option(help: "Only records with index % N == I (one job of N), as I/N.")
    var partition: String?

    @Option(name: [.short, .customLong("output")], help: "Output directory, or '-' for plain JSONL on standard output.")
    var output = "bertlrp-out"

    @Option(name: .customLong("batch-tokens"), help: .hidden)
    var batchTokens: Int?

    @Option(name: .customLong("max-batch"), help: .hidden)
    var maxBatch = 64

    @Option(help: .hidden)
    var window = 512

    /// Runs the pipeline with a whitespace tokenizer and a fake engine (tests of the pipeline itself).
    @Flag(name: .customLong("fake-engine"), help: .hidden)
    var fakeEngine = false

    func run() throws {
        var exitCode: Int32 = 0
        try exitingOnFailure { exitCode = try execute() }
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    private func execute() throws -> Int32 {
        // Options.
        let methodSet: Methods
        switch Methods.parse(methods) {
        case let .success(m): methodSet = m
        case let .failure(e): throw CommandFailure(e.description)
        }
        guard maxSeqLength >= 3 else { throw CommandFailure("--max-seq-length \(maxSeqLength): at least 3 ([CLS] x [SEP])") }
        guard shardSize >= 1 else { throw CommandFailure("--shard-size \(shardSize): at least 1") }
        if let workers, workers < 1 { throw CommandFailure("--workers \(workers): at least 1") }
        guard (batchTokens ?? 1) >= 1, maxBatch >= 1, window >= 1 else { throw CommandFailure("--batch-tokens, --max-batch and --window must be positive") }
        var part: Partition?
        if let partition {
            guard let p = Partition.parse(partition) else { throw CommandFailure("--partition \(partition): expected I/N with 0 <= I < N") }
            part = p
        }
        let toStdout = output == "-"
        if toStdout && resume { throw CommandFailure("--resume needs an output directory (-o DIR), not standard output") }
        let readerOptions = try input.readerOptions()

        // Model.
        guard let modelURL = model.map({ URL(fileURLWithPath: $0) }) ?? BundledModel.locate() else {
            throw CommandFailure("no model: the bundled model \(BundledModel.relativePath) was not found; name one with --model DIR or BERTLRP_MODEL")
        }
        let (workerCount, capNote) = Threads.capped(workers ?? ProcessInfo.processInfo.activeProcessorCount)
        if let capNote { FileHandle.standardError.write(Data("bertlrp-batch: \(capNote)\n".utf8)) }
        // The workers, the writer and the hashing, before anything is made
        // (the pool checks again when it starts).
        try Threads.check(workerCount + 2)
        // The model's identity for the manifest (SHA-256 of its files) is
        // hashed on the idle second core while the model loads; standard
        // output has no manifest.
        let hashing = toStdout ? nil : Background(name: "bertlrp-hash") { try ModelIdentity.compute(directory: modelURL, labels: []) }
        let loaded: LoadedModel
        do { loaded = try LoadedModel.load(modelURL, fake: fakeEngine, relevance: methodSet.contains(.lrp), workers: workerCount) } catch { throw CommandFailure("\(error)") }
        let targetOption: TargetOption
        switch TargetOption.parse(target, labels: loaded.labels) {
        case let .success(t): targetOption = t
        case let .failure(e): throw CommandFailure(e.description)
        }
        if maxSeqLength > loaded.maxPositions {
            throw CommandFailure("--max-seq-length \(maxSeqLength): \(modelURL.path)/config.json allows at most \(loaded.maxPositions) positions")
        }

        let inputs = input.inputs.isEmpty ? ["-"] : input.inputs
        // Before the output directory is created: a typo must not leave a run behind.
        for path in inputs where path != "-" {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CommandFailure("\(path): cannot read: no such file") }
            guard !isDirectory.boolValue else { throw CommandFailure("\(path): cannot read: is a directory") }
            guard FileManager.default.isReadableFile(atPath: path) else { throw CommandFailure("\(path): cannot read: permission denied") }
        }
        // What the manifest of a directory run records (standard output has none).
        func runIdentity() throws -> RunIdentity {
            var model = try hashing?.value() ?? ModelIdentity.compute(directory: modelURL, labels: [])
            model.labels = loaded.labels
            return RunIdentity(
                tool: "bertlrp-batch \(BertLRPBatch.version)", model: model,
                methods: methodSet.names, targets: targetOption.description, maxSeqLength: maxSeqLength,
                shardSize: shardSize, partition: part?.description, reader: input.manifestDescription)
        }

        // Output.
        let sink: RecordSink
        var startIndex = 0
        var note = ""
        if toStdout {
            sink = StdoutSink()
        } else {
            let dir = URL(fileURLWithPath: output)
            if resume {
                let r = try RunDirectory.resume(dir, identity: runIdentity(), inputs: inputs)
                if r.complete {
                    let m = r.sink.manifest
                    FileHandle.standardError.write(Data("bertlrp-batch: \(output) is complete already: \(m.records) records, \(m.errors) errors in \(m.shards.count) shards\n".utf8))
                    return m.errors > 0 ? 3 : 0
                }
                startIndex = r.startIndex
                if r.startIndex > 0 || r.dropped > 0 {
                    note = " (resumed at index \(r.startIndex)\(r.dropped > 0 ? ", \(r.dropped) unfinished shard(s) redone" : ""))"
                }
                sink = r.sink
            } else {
                sink = try RunDirectory.start(dir, identity: runIdentity(), inputs: inputs)
            }
        }

        let targetsPerExample: Int
        switch targetOption {
        case .all: targetsPerExample = loaded.labels.count
        default: targetsPerExample = 1
        }
        let budget = loaded.batchTokens(methods: methodSet, targetsPerExample: targetsPerExample, longest: maxSeqLength)
        let options = PipelineOptions(
            methods: methodSet, target: targetOption, labels: loaded.labels, maxSeqLength: maxSeqLength,
            workers: workerCount, shardSize: shardSize,
            partition: part, startIndex: startIndex, batchTokens: batchTokens ?? budget, maxBatch: maxBatch, window: window)
        let pipeline = Pipeline(options: options, encoder: loaded.encoder, makeRunner: loaded.makeRunner)
        let reader = RecordReader(inputs: inputs, options: readerOptions)
        let progress = ProgressReporter(stats: pipeline.stats, totalBytes: reader.totalBytes)
        progress.start()
        do {
            try pipeline.run(next: { try reader.next() }, position: { reader.bytesRead }, sink: sink)
        } catch {
            progress.finish(destination: output, note: " (stopped)")
            (sink as? DirectorySink)?.abandon()
            throw error
        }
        progress.finish(destination: output, note: note)
        let errors: Int
        if let d = sink as? DirectorySink { errors = d.manifest.errors } else { errors = (sink as! StdoutSink).errors }
        return errors > 0 ? 3 : 0
    }
}
