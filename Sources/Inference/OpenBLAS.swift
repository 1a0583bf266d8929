import COpenBLAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS, opened the first time the engine needs it rather than linked.
///
/// Why: OpenBLAS starts a pool of one thread per processor when it loads,
/// unless OPENBLAS_NUM_THREADS says otherwise, and idle pool threads spin for
/// a while. Our parallel layer is the workers, one BLAS thread each, so the
/// library is opened with OPENBLAS_NUM_THREADS=1 (and OMP_NUM_THREADS=1, for
/// Debian's OpenMP build) unless the user set them, and the environment is
/// put back right after: no pool is ever started unless asked for
/// (`setThreads`), and the commands that compute nothing (convert, merge,
/// tokenize) never load BLAS at all. The library is the one Debian's
/// alternatives name `libopenblas.so.0` (libopenblas-dev installs the
/// pthread build).
///
/// Debian's sequential build (`openblas-serial`) is not safe to call from
/// several threads at once: two threads each running the same sgemm 100,000
/// times got 14 wrong results (the pthread and OpenMP builds at one thread:
/// none). With that build the engine runs one worker (`threadSafe`).
public enum OpenBLAS {
    struct Library: @unchecked Sendable {
        let sgemm: cblas_sgemm_function
        let setThreads: openblas_set_num_threads_function
        /// 0 sequential, 1 pthreads, 2 OpenMP.
        let parallel: Int32
    }

    public static let soname = "libopenblas.so.0"

    private static let opened: Result<Library, ModelError> = open()

    /// Opens the library (once). Call it before starting threads of your own:
    /// it sets and restores environment variables. Throws when OpenBLAS is
    /// not installed.
    public static func load() throws(ModelError) { _ = try opened.get() }

    /// The library, opened on first use. Every engine comes after a `load`
    /// (BertModel's initializers call it); a missing library is then a crash
    /// with the same line.
    static var library: Library {
        switch opened {
        case let .success(library): return library
        case let .failure(error): fatalError("\(error)")
        }
    }

    /// Whether several threads may call BLAS at once (not with the
    /// sequential build). True when OpenBLAS cannot be opened: that error
    /// comes with the model.
    public static var threadSafe: Bool { (try? opened.get())?.parallel != 0 }

    private static func open() -> Result<Library, ModelError> {
        var restore: [String] = []
        for name in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"] where getenv(name) == nil {
            setenv(name, "1", 0)
            restore.append(name)
        }
        let handle = dlopen(soname, RTLD_LAZY | RTLD_LOCAL)
        for name in restore { unsetenv(name) }
        guard let handle else {
            let reason = dlerror().map { String(cString: $0) } ?? "cannot be opened"
            return .failure(.unreadable(file: soname, detail: "\(reason); install libopenblas-dev (scripts/setup)"))
        }
        func symbol<T>(_ name: String, as type: T.Type) -> T? {
            dlsym(handle, name).map { unsafeBitCast($0, to: type) }
        }
        guard let sgemm = symbol("cblas_sgemm", as: cblas_sgemm_function.self),
              let setThreads = symbol("openblas_set_num_threads", as: openblas_set_num_threads_function.self),
              let parallel = symbol("openblas_get_parallel", as: openblas_get_parallel_function.self) else {
            return .failure(.unreadable(file: soname, detail: "not OpenBLAS: cblas_sgemm, openblas_set_num_threads or openblas_get_parallel is missing"))
        }
        return .success(Library(sgemm: sgemm, setThreads: setThreads, parallel: parallel()))
    }
}
