#include <isa-l/crc.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

// ISA-L's AVX-512 CRC routines return without `vzeroupper`. The dirty upper
// register state they leave makes every later SSE instruction on the thread
// slow (measured here: the converter's float16 loops ran 3x slower after a
// checksum). The wrappers below clear it after each call.
__attribute__((target("avx"))) static inline void bertlrp_zeroupper(void) { _mm256_zeroupper(); }

static inline int bertlrp_has_avx(void) {
    static volatile int known = -1; // idempotent: a race stores the same value
    if (known < 0) {
        unsigned a, b, c, d;
        known = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_AVX);
    }
    return known;
}
#define BERTLRP_CLEAN_UPPER() do { if (bertlrp_has_avx()) bertlrp_zeroupper(); } while (0)
#else
#define BERTLRP_CLEAN_UPPER() do { } while (0)
#endif

/// zlib's crc32(crc, buf, len).
static inline uint32_t bertlrp_crc32(uint32_t crc, const unsigned char *buf, uint64_t len) {
    uint32_t r = crc32_gzip_refl(crc, (unsigned char *)buf, len);
    BERTLRP_CLEAN_UPPER();
    return r;
}

/// CRC-32C on the raw register (no inversion in or out), as ISA-L's iSCSI CRC.
static inline uint32_t bertlrp_crc32c_raw(uint32_t reg, const unsigned char *buf, int len) {
    uint32_t r = crc32_iscsi((unsigned char *)buf, len, reg);
    BERTLRP_CLEAN_UPPER();
    return r;
}
