import ArgumentParser
import Foundation
import IO
import Tokenizer

/// `bertlrp-batch benchmark tokenizer`: our tokenizer's single-thread
/// throughput on the SST-2 dev sentences, side by side with Hugging Face's
/// `tokenizers` (run through python3 when it is installed) in the same session.
struct TokenizerBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokenizer throughput (single thread), ours and Hugging Face tokenizers side by side.",
        discussion: """
        Each repetition tokenizes every sentence --passes times; the table gives the best \
        repetition and the median. Tokens are counted with [CLS]/[SEP]. The Hugging Face \
        figures come from `python3` with the `tokenizers` package (pip install tokenizers), \
        run with RAYON_NUM_THREADS=1 on the same sentences and the same tokenizer.json; \
        they are skipped when it is not installed.
        """)

    @Option(help: ArgumentHelp("Model directory whose tokenizer to measure (default: the bundled model).", valueName: "dir"))
    var model: String?

    @Option(help: ArgumentHelp("Sentences to tokenize (TSV with a header or JSONL; default: data/sst2/dev.tsv of the checkout).", valueName: "file"))
    var data: String?

    @Option(help: "Repetitions (the best and the median are reported).")
    var repetitions = 7

    @Option(help: "Passes over the sentences in each repetition.")
    var passes = 20

    @Option(help: ArgumentHelp("Python interpreter for the Hugging Face baseline.", valueName: "path"))
    var python = "python3"

    @Flag(help: "Skip the Hugging Face baseline.")
    var noHf = false

    func validate() throws {
        if repetitions < 1 || passes < 1 { throw ValidationError("--repetitions and --passes must be at least 1") }
    }

    func run() throws {
        guard let modelDir = model.map({ URL(fileURLWithPath: $0) }) ?? BundledModel.locate() else {
            throw CommandFailure("the bundled model was not found; give --model DIR")
        }
        let dataPath: String
        if let data {
            dataPath = data
        } else {
            let checkout = modelDir.deletingLastPathComponent().deletingLastPathComponent()
            dataPath = checkout.appendingPathComponent("data/sst2/dev.tsv").path
        }
        let tokenizer: BertTokenizer
        do {
            tokenizer = try BertTokenizer.load(modelDirectory: modelDir)
        } catch {
            throw CommandFailure("\(error)")
        }
        var texts: [String] = []
        do {
            let reader = RecordReader(inputs: [dataPath])
            while let item = try reader.next() {
                if case let .record(r) = item { texts.append(r.text) }
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        guard !texts.isEmpty else { throw CommandFailure("\(dataPath): no sentences") }

        // Ours.
        let workspace = TokenizerWorkspace()
        var tokensPerPass = 0
        for t in texts { tokensPerPass += tokenizer.encode(t, workspace: workspace).ids.count }
        var rows: [Row] = []
        rows.append(Row(name: "ours: encode (ids, segments, offsets)", seconds: measure {
            var n = 0
            for _ in 0..<passes { for t in texts { n &+= tokenizer.encode(t, workspace: workspace).ids.count } }
            return n
        }))
        rows.append(Row(name: "ours: encode + token strings", seconds: measure {
            var n = 0
            for _ in 0..<passes {
                for t in texts { n &+= tokenizer.tokens(tokenizer.encode(t, workspace: workspace).ids).count }
            }
            return n
        }))

        // Hugging Face, same sentences, same tokenizer.json.
        var hfNote: String?
        if !noHf {
            do {
                let hf = try runHuggingFace(modelDir: modelDir, texts: texts)
                if hf.tokens != tokensPerPass {
                    hfNote = "note: HF counted \(hf.tokens) tokens a pass, ours \(tokensPerPass)"
                }
                rows.append(Row(name: "HF tokenizers \(hf.version): encode, one call a sentence", seconds: hf.encode))
                rows.append(Row(name: "HF tokenizers \(hf.version): encode_batch, 1 thread", seconds: hf.encodeBatch))
            } catch {
                hfNote = "Hugging Face baseline skipped: \(error)"
            }
        }

        let sentences = Double(texts.count * passes)
        let tokens = Double(tokensPerPass * passes)
        print("Tokenizer throughput, single thread")
        print("data:    \(dataPath): \(texts.count) sentences, \(tokensPerPass) tokens with [CLS]/[SEP]")
        print("model:   \(modelDir.path)")
        print("machine: \(Self.machine())")
        print("runs:    \(repetitions) repetitions x \(passes) passes; best (median)")
        print("")
        let header = "implementation".padding(toLength: 52, withPad: " ", startingAt: 0)
            + "sentences/s".leftPadded(22) + "tokens/s".leftPadded(24) + "us/sentence".leftPadded(14)
        print(header)
        print(String(repeating: "-", count: header.count))
        for row in rows {
            let sorted = row.seconds.sorted()
            let best = sorted[0], median = sorted[sorted.count / 2]
            func pair(_ perSecond: (Double) -> Double) -> String {
                "\(Self.format(perSecond(best))) (\(Self.format(perSecond(median))))"
            }
            print(row.name.padding(toLength: 52, withPad: " ", startingAt: 0)
                  + pair { sentences / $0 }.leftPadded(22)
                  + pair { tokens / $0 }.leftPadded(24)
                  + String(format: "%.2f", best / sentences * 1e6).leftPadded(14))
        }
        if let hfNote { print("\n" + hfNote) }
        if let oursBest = rows.first?.seconds.min(), let hfBatch = rows.last?.seconds.min(), rows.count == 4 {
            print(String(format: "\nours / HF encode_batch: %.2fx the speed", hfBatch / oursBest))
        }
    }

    private struct Row {
        var name: String
        var seconds: [Double]
    }

    /// Wall-clock seconds of each repetition, after one warm-up run.
    private func measure(_ body: () -> Int) -> [Double] {
        var sink = body()
        var out: [Double] = []
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            sink &+= body()
            out.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        if sink == -1 { print("") }  // keep the work observable
        return out
    }

    private struct HFResult: Decodable {
        var version: String
        var tokens: Int
        var encode: [Double]
        var encodeBatch: [Double]
    }

    private static let hfScript = """
    import json, sys, time
    import tokenizers
    from tokenizers import Tokenizer
    path, data, reps, passes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    texts = [json.loads(l) for l in open(data, encoding="utf-8")]
    tok = Tokenizer.from_file(path)
    tok.no_truncation(); tok.no_padding()
    tokens = sum(len(e.ids) for e in tok.encode_batch(texts))
    def run_encode():
        n = 0
        for _ in range(passes):
            for t in texts:
                n += len(tok.encode(t).ids)
        return n
    def run_batch():
        n = 0
        for _ in range(passes):
            for e in tok.encode_batch(texts):
                n += len(e.ids)
        return n
    def measure(f):
        f(); out = []
        for _ in range(reps):
            s = time.perf_counter(); f(); out.append(time.perf_counter() - s)
        return out
    print(json.dumps({"version": tokenizers.__version__, "tokens": tokens,
                      "encode": measure(run_encode), "encodeBatch": measure(run_batch)}))
    """

    private func runHuggingFace(modelDir: URL, texts: [String]) throws -> HFResult {
        let tokenizerJSON = modelDir.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerJSON.path) else {
            throw CommandFailure("\(modelDir.path) has no tokenizer.json")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bertlrp-tokbench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let dataFile = dir.appendingPathComponent("texts.jsonl")
        var lines: [UInt8] = []
        for t in texts { JSONText.appendString(t, to: &lines); lines.append(0x0A) }
        try Data(lines).write(to: dataFile)
        let script = dir.appendingPathComponent("bench.py")
        try Data(Self.hfScript.utf8).write(to: script)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script.path, tokenizerJSON.path, dataFile.path, String(repetitions), String(passes)]
        var env = ProcessInfo.processInfo.environment
        env["RAYON_NUM_THREADS"] = "1"
        env["RAYON_RS_NUM_CPUS"] = "1"
        env["TOKENIZERS_PARALLELISM"] = "false"
        process.environment = env
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let last = String(decoding: errors, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "exit \(process.terminationStatus)"
            throw CommandFailure("\(python): \(last)")
        }
        return try JSONDecoder().decode(HFResult.self, from: output)
    }

    static func format(_ x: Double) -> String {
        if x >= 1e6 { return String(format: "%.2fM", x / 1e6) }
        if x >= 1e3 { return String(format: "%.1fk", x / 1e3) }
        return String(format: "%.0f", x)
    }

    static func machine() -> String {
        var cpu = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":", maxSplits: 1).last {
            cpu = name.trimmingCharacters(in: .whitespaces)
        }
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(load)"
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
