import Foundation
import Inference
import IO
@testable import Pipeline
import PipelineTestSupport
import XCTest

/// A fresh temporary directory, removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bertlrp-pipeline-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

let testLabels = ["negative", "positive"]

/// Runs the pipeline with the fakes over `input` (a file path) into `sink`.
@discardableResult
func runPipeline(input: String, sink: RecordSink, options: PipelineOptions, readerOptions: RecordReaderOptions = RecordReaderOptions(),
                 delayPerToken: Int = 0) throws -> PipelineStats {
    let n = options.labels.count
    let pipeline = Pipeline(options: options, encoder: WhitespaceEncoder(),
                            makeRunner: { FakeRunner(numClasses: n, microsecondsPerToken: delayPerToken) })
    // As the command does: a directory run records its input's content and marks.
    let reader = TrackedReader(RecordReader(inputs: [input], options: readerOptions))
    (sink as? DirectorySink)?.inputProgress = reader.progress
    try pipeline.run(next: { try reader.next() }, sink: sink)
    return pipeline.stats
}

/// Collects what a sink receives, for in-process checks.
final class MemorySink: RecordSink, @unchecked Sendable {
    var lines: [String] = []
    var indices: [Int] = []
    var errors: [BadRecord] = []
    var finished = false
    func write(line: [UInt8], index: Int) throws {
        lines.append(String(decoding: line, as: UTF8.self))
        indices.append(index)
    }
    func write(error: BadRecord) throws { errors.append(error) }
    func finish() throws { finished = true }
}

/// All record lines of a run directory's shards, in name order.
func shardLines(_ dir: URL) throws -> [String] {
    let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        .filter { $0.hasPrefix("part-") && $0.hasSuffix(".jsonl.zst") }.sorted()
    var out: [String] = []
    for n in names {
        let bytes = try Zstd.decompress(Array(try Data(contentsOf: dir.appendingPathComponent(n))))
        out += String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }
    return out
}

func sst2Path() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("data/sst2/dev.tsv").path
}

func testIdentity(methods: Methods = .all, partition: String? = nil, shardSize: Int = 100, modelHash: String = "m1") -> RunIdentity {
    RunIdentity(tool: "test", model: ModelIdentity(path: "model", hash: modelHash, files: [:], labels: testLabels),
                methods: methods.names, targets: "predicted", maxSeqLength: 128, shardSize: shardSize,
                partition: partition, reader: [:])
}
