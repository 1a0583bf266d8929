// The forward pass's elementwise kernels; see include/CKernels.h.
#include "CKernels.h"

#include <math.h>
#include <string.h>

// No fused multiply-adds: the AVX2 version rounds each product and sum as the
// baseline one (and as the Swift loops before) do; with contraction, CP-LRP on
// one SST-2 reference example moved past its tolerance (4e-4 against 1e-4).
#pragma clang fp contract(off)

#ifdef BERTLRP_CLONES
// given on the command line (tests of one version)
#elif defined(__x86_64__) && defined(__ELF__)
#define BERTLRP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BERTLRP_CLONES
#endif

typedef float f8 __attribute__((ext_vector_type(8)));
typedef int i8 __attribute__((ext_vector_type(8)));
typedef double d8 __attribute__((ext_vector_type(8)));

// Helpers are macros: a static function taking or returning a 256-bit vector
// would change the ABI of the baseline clone (clang refuses it even inlined).
#define load8(p) ({ f8 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define store8(p, v) do { f8 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)

/// `n` (< 8) elements into the low lanes, `fill` in the rest.
#define load_part(p, n, fill) ({ float a_[8]; for (int k_ = 0; k_ < 8; k_++) a_[k_] = k_ < (n) ? (p)[k_] : (fill); load8(a_); })
#define store_part(p, v, n) do { float a_[8]; store8(a_, (v)); for (ptrdiff_t k_ = 0; k_ < (n); k_++) (p)[k_] = a_[k_]; } while (0)
#define clamp8(x, lo, hi) __builtin_elementwise_min(__builtin_elementwise_max((x), (f8)(lo)), (f8)(hi))

/// Cephes' expf: x = n·ln2 + r, exp(r) by its polynomial, 2ⁿ by the exponent bits.
/// n is rounded to nearest by the 1.5·2²³ shift; m's low mantissa bits hold n.
#define exp8(x0) ({ \
    f8 x = clamp8((x0), -87.0f, 88.0f); \
    f8 m = x * 1.44269504088896341f + 12582912.0f; \
    f8 n = m - 12582912.0f; \
    f8 r = x - n * 0.693359375f + n * 2.12194440e-4f; \
    f8 p = (f8)1.9875691500e-4f; \
    p = p * r + 1.3981999507e-3f; \
    p = p * r + 8.3334519073e-3f; \
    p = p * r + 4.1665795894e-2f; \
    p = p * r + 1.6666665459e-1f; \
    p = p * r + 5.0000001201e-1f; \
    f8 e = p * r * r + r + 1.0f; \
    i8 mi; \
    memcpy(&mi, &m, sizeof mi); \
    i8 bits = (mi - 0x4B400000 + 127) << 23; \
    f8 scale; \
    memcpy(&scale, &bits, sizeof scale); \
    e * scale; })

/// erf by Eigen/XLA's rational approximation (`generic_fast_erf_float`), x clamped to ±4.
#define erf8(x0) ({ \
    f8 x = clamp8((x0), -4.0f, 4.0f); \
    f8 x2 = x * x; \
    f8 p = (f8)-2.72614225801306e-10f; \
    p = p * x2 + 2.77068142495902e-08f; \
    p = p * x2 - 2.10102402082508e-06f; \
    p = p * x2 - 5.69250639462346e-05f; \
    p = p * x2 - 7.34990630326855e-04f; \
    p = p * x2 - 2.95459980854025e-03f; \
    p = p * x2 - 1.60960333262415e-02f; \
    p = p * x; \
    f8 q = (f8)-1.45660718464996e-05f; \
    q = q * x2 - 2.13374055278905e-04f; \
    q = q * x2 - 1.68282697438203e-03f; \
    q = q * x2 - 7.37332916720468e-03f; \
    q = q * x2 - 1.42647390514189e-02f; \
    p / q; })

#define gelu8(v, g, d) do { \
    f8 cdf_ = 0.5f * (1.0f + erf8((v) * 0.70710678118654752f)); \
    (g) = (v) * cdf_; \
    (d) = cdf_ + (v) * (0.39894228040143268f * exp8(-0.5f * (v) * (v))); \
} while (0)

BERTLRP_CLONES
void bertlrp_gelu(const float *x, float *y, float *derivative, ptrdiff_t count) {
    ptrdiff_t i = 0;
    if (derivative) {
        for (; i + 8 <= count; i += 8) {
            f8 g, d, v = load8(x + i);
            gelu8(v, g, d);
            store8(y + i, g);
            store8(derivative + i, d);
        }
        if (i < count) {
            f8 g, d, v = load_part(x + i, count - i, 0);
            gelu8(v, g, d);
            store_part(y + i, g, count - i);
            store_part(derivative + i, d, count - i);
        }
    } else {
        for (; i + 8 <= count; i += 8) {
            f8 v = load8(x + i);
            store8(y + i, v * (0.5f * (1.0f + erf8(v * 0.70710678118654752f))));
        }
        if (i < count) {
            f8 v = load_part(x + i, count - i, 0);
            store_part(y + i, v * (0.5f * (1.0f + erf8(v * 0.70710678118654752f))), count - i);
        }
    }
}

#define hmax8(v) ({ f8 h_ = (v); float m_ = h_[0]; for (int k_ = 1; k_ < 8; k_++) m_ = h_[k_] > m_ ? h_[k_] : m_; m_; })
#define hsum8(v) ({ f8 s_ = (v); ((s_[0] + s_[4]) + (s_[1] + s_[5])) + ((s_[2] + s_[6]) + (s_[3] + s_[7])); })

BERTLRP_CLONES
void bertlrp_softmax_row(float *row, ptrdiff_t t) {
    ptrdiff_t j = 0;
    f8 mv = (f8)-INFINITY;
    for (; j + 8 <= t; j += 8) mv = __builtin_elementwise_max(mv, load8(row + j));
    float m = hmax8(mv);
    for (; j < t; j++) m = row[j] > m ? row[j] : m;
    f8 sv = (f8)0.0f;
    for (j = 0; j + 8 <= t; j += 8) {
        f8 e = exp8(load8(row + j) - m);
        store8(row + j, e);
        sv += e;
    }
    float sum = hsum8(sv);
    if (j < t) {
        f8 e = exp8(load_part(row + j, t - j, -INFINITY) - m);
        for (ptrdiff_t k = 0; k < t - j; k++) sum += e[k];
        store_part(row + j, e, t - j);
    }
    float inv = 1.0f / sum;
    for (j = 0; j + 8 <= t; j += 8) store8(row + j, load8(row + j) * inv);
    for (; j < t; j++) row[j] *= inv;
}

BERTLRP_CLONES
void bertlrp_layer_norm(const float *x, const float *residual, ptrdiff_t rows, ptrdiff_t h,
                        const float *gamma, const float *beta, float eps,
                        float *xhat, float *rstd, float *y) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *xr = x + r * h;
        float *tr = xhat + r * h, *yr = y + r * h;
        ptrdiff_t j = 0;
        d8 acc = (d8)0.0;
        double tail = 0;
        if (residual) {
            const float *rr = residual + r * h;
            for (; j + 8 <= h; j += 8) {
                f8 t = load8(xr + j) + load8(rr + j);
                store8(tr + j, t);
                acc += __builtin_convertvector(t, d8);
            }
            for (; j < h; j++) { tr[j] = xr[j] + rr[j]; tail += tr[j]; }
        } else {
            for (; j + 8 <= h; j += 8) {
                f8 t = load8(xr + j);
                store8(tr + j, t);
                acc += __builtin_convertvector(t, d8);
            }
            for (; j < h; j++) { tr[j] = xr[j]; tail += tr[j]; }
        }
        double mean = (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail) / (double)h;
        d8 sq = (d8)0.0;
        double sqTail = 0;
        for (j = 0; j + 8 <= h; j += 8) {
            d8 dv = __builtin_convertvector(load8(tr + j), d8) - mean;
            sq += dv * dv;
        }
        for (; j < h; j++) { double dv = (double)tr[j] - mean; sqTail += dv * dv; }
        double var = (((sq[0] + sq[4]) + (sq[1] + sq[5])) + ((sq[2] + sq[6]) + (sq[3] + sq[7])) + sqTail) / (double)h;
        double inv = 1.0 / sqrt(var + (double)eps);
        rstd[r] = (float)inv;
        for (j = 0; j + 8 <= h; j += 8) {
            f8 n = __builtin_convertvector((__builtin_convertvector(load8(tr + j), d8) - mean) * inv, f8);
            store8(tr + j, n);
            store8(yr + j, load8(gamma + j) * n + load8(beta + j));
        }
        for (; j < h; j++) {
            float n = (float)(((double)tr[j] - mean) * inv);
            tr[j] = n;
            yr[j] = gamma[j] * n + beta[j];
        }
    }
}

BERTLRP_CLONES
void bertlrp_dense_f64(const float *w, const float *b, const double *x,
                       ptrdiff_t in, ptrdiff_t out, double *y) {
    for (ptrdiff_t o = 0; o < out; o++) {
        const float *wr = w + o * in;
        d8 acc = (d8)0.0;
        ptrdiff_t i = 0;
        for (; i + 8 <= in; i += 8) {
            d8 xv;
            memcpy(&xv, x + i, sizeof xv);
            acc += __builtin_convertvector(load8(wr + i), d8) * xv;
        }
        double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; i < in; i++) s += (double)wr[i] * x[i];
        y[o] = (double)b[o] + s;
    }
}
