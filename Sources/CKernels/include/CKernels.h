#ifndef BERTLRP_CKERNELS_H
#define BERTLRP_CKERNELS_H

// The forward pass's elementwise kernels (called by Inference's LayerNorm.swift,
// Activations.swift and Engine+Head.swift), in C so that each is compiled twice, for
// x86-64-v3 (AVX2: eight lanes a register) and for the baseline, and the
// processor's version is picked when the library loads (GCC/Clang
// `target_clones`, an ifunc). Same formulas as before, without fused
// multiply-adds (kernels.c), so both versions round each operation alike;
// only the order of the sums differs from the Swift loops they replaced.
// Pointer arguments are row-major; lengths are element counts.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// GELU with erf, `y = x · ½(1 + erf(x/√2))`; with `derivative` (may be NULL),
/// also `gelu'(x) = ½(1 + erf(x/√2)) + x · φ(x)`. erf: Eigen/XLA's rational
/// approximation (x clamped to ±4); exp: Cephes' polynomial.
void bertlrp_gelu(const float *x, float *y, float *derivative, ptrdiff_t count);

/// Softmax of one row in place: `row[j] = exp(row[j] − max) / Σ`.
void bertlrp_softmax_row(float *row, ptrdiff_t count);

/// LayerNorm per row: `t = x + residual` (residual may be NULL),
/// `xhat = (t − mean)/√(var + eps)`, `y = γ · xhat + β`; keeps `xhat [rows, width]`
/// and `rstd [rows]` = 1/√(var + eps). Mean and variance in double.
void bertlrp_layer_norm(const float *x, const float *residual, ptrdiff_t rows, ptrdiff_t width,
                        const float *gamma, const float *beta, float eps,
                        float *xhat, float *rstd, float *y);

/// `y[out] = W[out, in] · x[in] + b[out]` in double (the classifier head's
/// pooler and classifier, per example).
void bertlrp_dense_f64(const float *weight, const float *bias, const double *x,
                       ptrdiff_t in_features, ptrdiff_t out_features, double *y);

#ifdef __cplusplus
}
#endif
#endif
