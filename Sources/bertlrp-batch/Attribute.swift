import ArgumentParser
import Foundation
import Inference
import IO
import Pipeline

/// `bertlrp-batch [attribute]`: explanations for every input record, as
/// zstd-compressed JSONL shards (docs/CONTRACT.md sections 2-4, 6).
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

    /// The seed's four and AttnLRP, the most faithful method at one backward
    /// pass by `evaluate` on SST-2 dev (README, "Evaluating the explanations").
    @Option(help: "Methods, comma-separated: gs, gi, lrp, lat, ixg, attnlrp, cplrp, ig, rollout (all: the seed's four; default: gs,gi,lrp,lat,attnlrp).",
            transform: parseMethods)
    var methods: Methods = [.gs, .gi, .lrp, .lat, .attnlrp]

    @Option(name: .customLong("ig-steps"), help: "Integrated gradients: Gauss-Legendre steps (1-\(Attribute.maxIGSteps)).")
    var igSteps = 32

    static let maxIGSteps = 1024

    @Option(help: "Classes to explain: predicted, all, a class number, a class name, or gold (the label field).")
    var target = TargetArgument(argument: "predicted")

    @Option(name: .customLong("max-seq-length"), help: "Tokens per example, [CLS] and [SEP] included.")
    var maxSeqLength = 128

    @Option(help: "Texts longer than --max-seq-length: truncate (cut them off) or window (overlapping windows, averaged).")
    var long = LongOption.truncate

    @Option(name: .customLong("window-stride"), help: "--long window: text tokens from one window's start to the next (default: half a window).")
    var windowStride: Int?

    @Option(help: "Worker threads, one engine each with one OpenBLAS thread (default: the active cores; at most 4 per core). With 1, that worker's OpenBLAS uses every core.")
    var workers: Int?

    @Option(name: .customLong("shard-size"), help: "Records a shard.")
    var shardSize = 10_000

    @Flag(help: "Finish an interrupted run in the output directory (same command and options).")
    var resume = false

    @Option(help: "Only records with index % N == I (one job of N), as I/N.", transform: parsePartition)
    var partition: Partition?

    @Option(name: [.short, .customLong("output")], help: "Output directory, or '-' for plain JSONL on standard output.")
    var output = "bertlrp-out"

    @Option(name: .customLong("batch-tokens"), help: .hidden)
    var batchTokens: Int?

    @Option(name: .customLong("max-batch"), help: .hidden)
    var maxBatch = 64

    @Option(help: .hidden)
    var window = 512

    /// The checks that need neither the model nor a file.
    func validate() throws {
        guard igSteps >= 1 && igSteps <= Attribute.maxIGSteps else {
            throw ValidationError("--ig-steps \(igSteps): expected 1 to \(Attribute.maxIGSteps)")
        }
        guard maxSeqLength >= 3 else { throw ValidationError("--max-seq-length \(maxSeqLength): at least 3 ([CLS] x [SEP])") }
        switch long {
        case .truncate:
            if let windowStride { throw ValidationError("--window-stride \(windowStride): only with --long window") }
        case .window:
            if let s = windowStride {
                guard s >= 1 else { throw ValidationError("--window-stride \(s): at least 1") }
                guard s <= maxSeqLength - 2 else {
                    throw ValidationError("--window-stride \(s): larger than the window (--max-seq-length \(maxSeqLength) holds \(maxSeqLength - 2) tokens of text)")
                }
            }
        }
        guard shardSize >= 1 else { throw ValidationError("--shard-size \(shardSize): at least 1") }
        if let workers, workers < 1 { throw ValidationError("--workers \(workers): at least 1") }
        guard (batchTokens ?? 1) >= 1, maxBatch >= 1, window >= 1 else { throw ValidationError("--batch-tokens, --max-batch and --window must be positive") }
        if output == "-" && resume { throw ValidationError("--resume needs an output directory (-o DIR), not standard output") }
    }

    func run() throws {
        if try execute() > 0 { throw CommandFailure.recordsFailed }
    }

    /// The run; the number of bad records.
    private func execute() throws -> Int {
        let longMode: LongMode = long == .truncate ? .truncate : .window(stride: windowStride)
        let toStdout = output == "-"
        let readerOptions = input.readerOptions

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
        let loaded = try LoadedModel.load(modelURL, relevance: methods.contains(.lrp), workers: workerCount, igSteps: igSteps)
        let targetOption = try target.resolve(labels: loaded.labels)
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
        var computedIdentity: RunIdentity?
        func runIdentity() throws -> RunIdentity {
            if let computedIdentity { return computedIdentity }
            var model = try hashing?.value() ?? ModelIdentity.compute(directory: modelURL, labels: [])
            model.labels = loaded.labels
            let identity = RunIdentity(
                tool: "bertlrp-batch \(BertLRPBatch.version)", model: model,
                methods: methods.names.map { $0 == "ig" && igSteps != 32 ? "ig:\(igSteps)" : $0 }, targets: targetOption.description, maxSeqLength: maxSeqLength,
                shardSize: shardSize, partition: partition?.description, reader: input.manifestDescription,
                long: longMode == .truncate ? nil : longMode.description, windowStride: longMode.stride)
            computedIdentity = identity
            return identity
        }

        // Output. Everything that can be checked before the directory is
        // made is checked first: a resumable run's options and inputs, the
        // first record (or header) of every input file.
        let reader = RecordReader(inputs: inputs, options: readerOptions)
        let tracked = TrackedReader(reader)
        let dir = URL(fileURLWithPath: output)
        var plan: RunDirectory.ResumePlan?
        if !toStdout {
            if resume {
                plan = try RunDirectory.plan(dir, identity: runIdentity(), inputs: inputs)
                if let p = plan, p.complete {
                    let m = p.manifest
                    FileHandle.standardError.write(Data("bertlrp-batch: \(output) is complete already: \(m.records) records, \(m.errors) errors in \(m.shards.count) shards\n".utf8))
                    return m.errors
                }
                reader.expectation = plan?.expectation
            } else {
                try RunDirectory.checkInputsOutside(dir, inputs: inputs)
            }
        }
        try checkFirst(try tracked.prefetch())
        try probeInputHeaders(inputs.dropFirst(), options: readerOptions)

        let sink: RecordSink
        var startIndex = 0
        var note = ""
        if toStdout {
            sink = StdoutSink()
        } else if let plan {
            let r = try RunDirectory.resume(plan)
            startIndex = r.startIndex
            if r.startIndex > 0 || r.dropped > 0 {
                note = " (resumed at index \(r.startIndex)\(r.dropped > 0 ? ", \(r.dropped) unfinished shard(s) redone" : ""))"
            }
            r.sink.inputProgress = tracked.progress
            sink = r.sink
        } else {
            let d = try RunDirectory.start(dir, identity: runIdentity(), inputs: inputs)
            d.inputProgress = tracked.progress
            sink = d
        }

        let targetsPerExample: Int
        switch targetOption {
        case .all: targetsPerExample = loaded.labels.count
        default: targetsPerExample = 1
        }
        let budget = loaded.batchTokens(methods: methods, targetsPerExample: targetsPerExample, longest: maxSeqLength)
        let options = PipelineOptions(
            methods: methods, target: targetOption, labels: loaded.labels, maxSeqLength: maxSeqLength,
            workers: workerCount, shardSize: shardSize,
            partition: partition, startIndex: startIndex, batchTokens: batchTokens ?? budget, maxBatch: maxBatch, window: window,
            long: longMode, multiLabel: loaded.config.multiLabel)
        let pipeline = Pipeline(options: options, encoder: loaded.encoder, makeRunner: loaded.makeRunner)
        let progress = ProgressReporter(stats: pipeline.stats, totalBytes: reader.totalBytes)
        progress.start()
        do {
            try pipeline.run(next: { try tracked.next() }, position: { reader.bytesRead }, sink: sink)
        } catch {
            // The cause first; the summary after it, when something was done.
            progress.stop()
            FileHandle.standardError.write(Data("bertlrp-batch: \(error)\n".utf8))
            if let d = sink as? DirectorySink {
                if d.committedShards == 0 && plan == nil {
                    // Nothing committed: nothing a resume could keep, so nothing left behind.
                    d.discard()
                    throw CommandFailure.reported
                }
                d.abandon()
            }
            progress.finish(destination: output, note: " (stopped)")
            throw CommandFailure.reported
        }
        progress.finish(destination: output, note: note)
        if let d = sink as? DirectorySink { return d.manifest.errors }
        return (sink as! StdoutSink).errors
    }

    /// The first record (or header) of each input file after the first (the
    /// first is read by the run itself before the output exists): a TSV
    /// without the text column, a wrong `--format`, a corrupt `.zst` stop the
    /// run before anything is written. Only regular files: a pipe would lose
    /// what is read from it.
    private func probeInputHeaders(_ paths: ArraySlice<String>, options: RecordReaderOptions) throws {
        for path in paths where path != "-" {
            guard let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType,
                  type == .typeRegular else { continue }
            try checkFirst(try RecordReader(inputs: [path], options: options).next())
        }
    }

    /// A `--text-field` that an input's first record (valid JSON) does not
    /// have is a typo until shown otherwise: a usage error, not a run of
    /// bad records in a directory the corrected command could not reuse.
    private func checkFirst(_ item: ReadItem?) throws {
        guard let field = input.textField, case let .bad(b)? = item, b.reason == "missing text field '\(field)'" else { return }
        throw CommandFailure("\(b.input):\(b.line): the first record has no field '\(field)' (--text-field); nothing was written")
    }
}
