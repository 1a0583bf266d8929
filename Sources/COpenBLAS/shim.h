#include <cblas.h>

// OpenBLAS is opened at run time (Inference's OpenBLAS.swift), not linked:
// the functions we call, as pointer types taken from the header itself.
typedef __typeof__(cblas_sgemm) *cblas_sgemm_function;
typedef __typeof__(openblas_set_num_threads) *openblas_set_num_threads_function;
typedef __typeof__(openblas_get_parallel) *openblas_get_parallel_function;
