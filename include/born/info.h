/* born/info.h — what this build of born is and what the machine under it can do: version,
 * build facts, CPU features (the SIMD paths the CPU backend may pick), the thread count.
 * `born info` prints all of it. */
#ifndef BORN_INFO_H
#define BORN_INFO_H

#include "born/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0", the same as BN_VERSION_STRING of the headers the library was built with. */
BN_API const char *bn_version(void);

/* ---- CPU features ------------------------------------------------------------------------ */
/* What the CPU supports AND the operating system enables: on x86 the AVX and AVX-512 flags
 * are only set when XCR0 says the OS saves that register state (XGETBV), AMX only when the
 * tile state is enabled. On aarch64 neon is always set and sve comes from AT_HWCAP. Flags of
 * the other architecture are false. */
typedef struct bn_cpu_features {
    bool sse42, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512_vnni, avx_vnni, avx512_bf16;
    bool amx; /* AMX tiles (AMX-TILE) */
    bool neon, sve;
} bn_cpu_features;

/* Asks the CPU (CPUID / getauxval) each time it is called; cheap, but not free under a VM:
 * callers on a hot path keep the result. */
BN_API bn_cpu_features bn_cpu_features_detect(void);

/* The flags above in order, by the names Linux uses in /proc/cpuinfo ("sse4_2", "avx", …,
 * "avx512_bf16", "amx_tile", "neon", "sve"); BN_CPU_FEATURE_COUNT of them. */
#define BN_CPU_FEATURE_COUNT 14
/* Name of feature i (0 <= i < BN_CPU_FEATURE_COUNT); NULL with BN_ERR_ARG for another i. */
BN_API const char *bn_cpu_feature_name(int i);
/* Whether f has feature i; false with BN_ERR_ARG for a NULL f or an i out of range. */
BN_API bool bn_cpu_feature_has(const bn_cpu_features *f, int i);

/* ---- the build ----------------------------------------------------------------------------- */
typedef struct bn_build_info {
    const char *version;    /* "0.1.0" */
    const char *compiler;   /* CMake's compiler id and version: "GNU 12.2.0" */
    const char *build_type; /* "Release", "Debug", … */
    bool openmp;            /* the CPU backend runs on OpenMP threads */
    bool sanitize;          /* built with ASan + UBSan */
    const char *backends;   /* the backends compiled in, comma-separated: "cpu" */
} bn_build_info;

BN_API bn_build_info bn_build_info_get(void);

/* ---- threads --------------------------------------------------------------------------------- */
/* Threads the CPU backend uses for the next parallel kernel started by this thread (OpenMP's
 * omp_get_max_threads(): OMP_NUM_THREADS or the core count); 1 without OpenMP. */
BN_API int bn_num_threads(void);
/* Sets that number (omp_set_num_threads) for kernels started by the calling thread. n < 1 is
 * BN_ERR_ARG; n > 1 in a build without OpenMP is BN_ERR_UNSUPPORTED. */
BN_API bn_status bn_set_num_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
