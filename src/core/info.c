/* core/info.c — the version, the facts of this build (CMake passes them in as BORN_* macros) and
 * the CPU backend's thread count. CPU feature detection lives in backend/cpu/cpu_features.c. */
#include "core/internal.h"

#include "born/info.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Defaults for a build that did not come through CMake (a plain `cc src/...`). */
#ifndef BORN_BUILD_TYPE
#define BORN_BUILD_TYPE "unknown"
#endif
#ifndef BORN_COMPILER
#define BORN_COMPILER "unknown"
#endif
#ifndef BORN_HAVE_OPENMP
#define BORN_HAVE_OPENMP 0
#endif
#ifndef BORN_SANITIZE_BUILD
#define BORN_SANITIZE_BUILD 0
#endif

const char *bn_version(void) { return BN_VERSION_STRING; }

bn_build_info bn_build_info_get(void)
{
    /* An empty CMAKE_BUILD_TYPE reaches us as "" */
    const char *type = BORN_BUILD_TYPE[0] ? BORN_BUILD_TYPE : "unknown";
    return (bn_build_info){
        .version = BN_VERSION_STRING,
        .compiler = BORN_COMPILER,
        .build_type = type,
        .openmp = BORN_HAVE_OPENMP != 0,
        .sanitize = BORN_SANITIZE_BUILD != 0,
        .backends = "cpu",
    };
}

int bn_num_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

bn_status bn_set_num_threads(int n)
{
    if (n < 1) return bn__error(BN_ERR_ARG, "bn_set_num_threads: n must be >= 1, got %d", n);
#ifdef _OPENMP
    omp_set_num_threads(n);
    return BN_OK;
#else
    if (n == 1) return BN_OK;
    return bn__error(BN_ERR_UNSUPPORTED,
                     "bn_set_num_threads: this build has no OpenMP, so it runs on 1 thread "
                     "(asked for %d)",
                     n);
#endif
}
