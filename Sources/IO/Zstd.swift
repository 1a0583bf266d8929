import CZstd
import Foundation
import ModelFiles

/// The one file that calls ZSTD_*: streaming compression into any sink
/// (shards), streaming decompression from any byte source (`.zst` inputs),
/// and whole-buffer helpers.
public enum ZstdError: Error, CustomStringConvertible, Equatable {
    case failed(name: String, message: String)
    case truncated(name: String)

    public var description: String {
        switch self {
        case let .failed(name, message): return "\(name): zstd: \(message)"
        case let .truncated(name): return "\(name): zstd: truncated stream (the file ends inside a frame)"
        }
    }
}

@inline(__always)
private func check(_ code: Int, _ name: String) throws -> Int {
    if ZSTD_isError(code) != 0 {
        throw ZstdError.failed(name: name, message: String(cString: ZSTD_getErrorName(code)))
    }
    return code
}

/// Compresses everything written to it into one zstd frame (with a content
/// checksum, so `zstd -t` and `zstdcat` verify it) and hands the compressed
/// bytes to `sink` as they are produced.
public final class ZstdCompressor {
    public typealias Sink = (UnsafeRawBufferPointer) throws -> Void
    private let cctx: OpaquePointer
    private let name: String
    private let sink: Sink
    private var out: [UInt8]
    public private(set) var bytesIn = 0
    public private(set) var bytesOut = 0

    public init(name: String, level: Int32 = 3, sink: @escaping Sink) throws {
        guard let ctx = ZSTD_createCCtx() else { throw ZstdError.failed(name: name, message: "out of memory") }
        self.cctx = ctx
        self.name = name
        self.sink = sink
        self.out = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        _ = try check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level), name)
        _ = try check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1), name)
    }

    deinit { ZSTD_freeCCtx(cctx) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesIn += bytes.count
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size {
            try drive(&input, ZSTD_e_continue)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Ends the frame and flushes everything to the sink.
    public func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try drive(&input, ZSTD_e_end) != 0 {}
    }

    @discardableResult
    private func drive(_ input: inout ZSTD_inBuffer, _ mode: ZSTD_EndDirective) throws -> Int {
        let capacity = out.count
        let (remaining, produced) = try out.withUnsafeMutableBytes { raw -> (Int, Int) in
            var output = ZSTD_outBuffer(dst: raw.baseAddress, size: capacity, pos: 0)
            let r = try check(ZSTD_compressStream2(cctx, &output, &input, mode), name)
            if output.pos > 0 { try sink(UnsafeRawBufferPointer(rebasing: raw[0..<output.pos])) }
            return (r, output.pos)
        }
        bytesOut += produced
        return remaining
    }
}

/// Decompresses a stream of one or more concatenated zstd frames read from
/// `source` (which fills the buffer it is given and returns the count, 0 at
/// the end).
public final class ZstdDecompressor: ByteSource {
    private let dctx: OpaquePointer
    private let name: String
    private var source: ByteSource
    private var inBuf: [UInt8]
    private var inPos = 0
    private var inEnd = 0
    private var sourceDone = false
    private var frameOpen = false

    public init(name: String, source: ByteSource) throws {
        guard let ctx = ZSTD_createDCtx() else { throw ZstdError.failed(name: name, message: "out of memory") }
        self.dctx = ctx
        self.name = name
        self.source = source
        self.inBuf = [UInt8](repeating: 0, count: ZSTD_DStreamInSize())
    }

    deinit { ZSTD_freeDCtx(dctx) }

    public var bytesConsumed: Int64 { source.bytesConsumed }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if inPos == inEnd && !sourceDone {
                let n = try inBuf.withUnsafeMutableBytes { try source.read(into: $0) }
                inPos = 0
                inEnd = n
                if n == 0 { sourceDone = true }
            }
            if inPos == inEnd && sourceDone {
                if frameOpen { throw ZstdError.truncated(name: name) }
                return 0
            }
            let (hint, consumed, produced) = try inBuf.withUnsafeBytes { raw -> (Int, Int, Int) in
                var input = ZSTD_inBuffer(src: raw.baseAddress! + inPos, size: inEnd - inPos, pos: 0)
                var output = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
                let r = try check(ZSTD_decompressStream(dctx, &output, &input), name)
                return (r, input.pos, output.pos)
            }
            inPos += consumed
            frameOpen = hint != 0
            if produced > 0 { return produced }
        }
    }
}

public enum Zstd {
    /// One frame holding `data`.
    public static func compress(_ data: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        var result: [UInt8] = []
        let c = try ZstdCompressor(name: "buffer", level: level) { result.append(contentsOf: $0) }
        try c.write(data)
        try c.finish()
        return result
    }

    /// All frames of `data`, decompressed.
    public static func decompress(_ data: [UInt8], name: String = "buffer") throws -> [UInt8] {
        let d = try ZstdDecompressor(name: name, source: MemorySource(data))
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try d.read(into: $0) }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    /// True when `bytes` begin with the zstd frame magic number.
    public static func hasMagic(_ bytes: some Collection<UInt8>) -> Bool {
        Array(bytes.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD]
    }
}
