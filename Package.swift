// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: bertlrp-batch -> Pipeline (+ IO for convert);
// Pipeline -> Tokenizer, Inference, IO; Inference -> ModelFiles (IO's model files) and CKernels
// (its elementwise C kernels). Only Inference touches BLAS, only IO touches zstd and ISA-L; the
// test stand-ins (PipelineTestSupport) are a target only the tests depend on.
let package = Package(
    name: "bertlrp-batch",
    products: [
        .executable(name: "bertlrp-batch", targets: ["bertlrp-batch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS's header only: Inference opens the library at run time (OpenBLAS.swift).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        // Intel ISA-L: CRC-32C (TF checkpoints) and CRC-32 (zip) with the
        // processor's CRC and carry-less multiply instructions.
        .systemLibrary(name: "CIsal", path: "Sources/CIsal", pkgConfig: "libisal",
                       providers: [.apt(["libisal-dev"])]),
        // config.json, safetensors and mapped files: what the engine reads a model with.
        .target(name: "ModelFiles"),
        .target(name: "IO", dependencies: ["ModelFiles", "CZstd", "CIsal"]),
        .target(name: "Tokenizer"),
        // The forward pass's elementwise kernels (GELU, softmax, LayerNorm, the head's
        // products), compiled for AVX2 and for the baseline, picked at load time.
        .target(name: "CKernels"),
        .target(name: "Inference", dependencies: ["ModelFiles", "COpenBLAS", "CKernels"]),
        .target(name: "Pipeline", dependencies: ["IO", "Tokenizer", "Inference"]),
        // The seed's experiments over finished runs (evaluate, words): beside Pipeline, not over it.
        .target(name: "Analysis", dependencies: ["IO", "Tokenizer", "Inference"]),
        .executableTarget(name: "bertlrp-batch", dependencies: [
            "Pipeline", "Analysis", "IO", "Tokenizer", "Inference",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "IOTests", dependencies: ["IO"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "IO"]),
        // The pipeline's test stand-ins (a whitespace tokenizer, a fake engine): tests only.
        .target(name: "PipelineTestSupport", dependencies: ["Pipeline", "Inference"], path: "Tests/PipelineTestSupport"),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "PipelineTestSupport", "Inference", "Tokenizer", "IO"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Inference", "Tokenizer", "IO"]),
        .testTarget(name: "EndToEndTests", dependencies: ["IO"]),
    ],
    swiftLanguageModes: [.v6]
)
