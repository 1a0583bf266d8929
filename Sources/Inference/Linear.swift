import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The one place that calls BLAS. Row-major throughout; weights are `[out, in]`
/// as in the checkpoints, so `y = x · Wᵀ` is `gemm(x, W, transB: true)`.
/// Each engine owns one `Linear`, which also times its calls (the benchmark
/// reports the share of time spent inside sgemm).
final class Linear {
    private let sgemm = OpenBLAS.library.sgemm
    var timing = false
    private(set) var nanoseconds: UInt64 = 0
    private(set) var flops: Double = 0
    private(set) var calls = 0

    func resetCounters() { nanoseconds = 0; flops = 0; calls = 0 }

    /// `C[m, n] = alpha · op(A) · op(B) + beta · C`, op = transpose when asked.
    /// `A` is `[m, k]` (or `[k, m]` transposed), `B` is `[k, n]` (or `[n, k]`).
    @inline(__always)
    func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
              alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
              b: UnsafePointer<Float>, ldb: Int,
              beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // BLAS leaves C·beta; make the empty product explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let start = timing ? Linear.now() : 0
        sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        if timing {
            nanoseconds &+= Linear.now() &- start
            flops += 2 * Double(m) * Double(n) * Double(k)
            calls += 1
        }
    }

    /// `y[rows, out] = x[rows, in] · Wᵀ (+ b)`.
    @inline(__always)
    func dense(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
               bias: UnsafePointer<Float>?, outFeatures: Int, into y: UnsafeMutablePointer<Float>) {
        if let bias {
            for r in 0..<rows { (y + r * outFeatures).update(from: bias, count: outFeatures) }
        }
        gemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
             b: weight, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: y, ldc: outFeatures)
    }

    /// OpenBLAS threads for the whole process (one parallel layer only:
    /// several engines at 1 thread each, or one engine with several threads).
    static func setThreads(_ n: Int) { OpenBLAS.library.setThreads(Int32(max(1, n))) }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

extension Engine {
    /// This machine's sgemm rate (GFLOP/s) for `[m, k] · [k, n]`, best of a few runs,
    /// at the current OpenBLAS thread count.
    public static func measureSgemm(m: Int, n: Int, k: Int, seconds: Double = 1) -> Double {
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        for i in 0..<(m * k) { a.p[i] = Float(i % 7) * 0.1 }
        for i in 0..<(k * n) { b.p[i] = Float(i % 5) * 0.1 }
        let blas = Linear()
        var best = 0.0
        let until = Linear.now() + UInt64(seconds * 1e9)
        repeat {
            let start = Linear.now()
            blas.gemm(transB: true, m: m, n: n, k: k, a: a.p, lda: k, b: b.p, ldb: k, c: c.p, ldc: n)
            let t = Double(Linear.now() - start) * 1e-9
            best = max(best, 2 * Double(m) * Double(n) * Double(k) / t * 1e-9)
        } while Linear.now() < until
        return best
    }
}
