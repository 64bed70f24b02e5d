/* tests/unit/test_info.c — version, build facts, thread count and CPU feature detection. The
 * features are checked against the kernel's own view in /proc/cpuinfo (no fixture file: the
 * reference is the machine itself). */
#include "bn_test.h"

#include "born/born.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define COMPILED_WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COMPILED_WITH_ASAN 1
#endif
#endif
#ifndef COMPILED_WITH_ASAN
#define COMPILED_WITH_ASAN 0
#endif

Test(info, cpu_features_agree_with_proc_cpuinfo)
{
#if !defined(__x86_64__) && !defined(__i386__)
    cr_skip("/proc/cpuinfo flags are x86 names (under qemu-user it is the host's file)");
#endif
    char *flags = bnt_cpuinfo_flags();
    if (!flags) cr_skip("no x86 flags line in /proc/cpuinfo on this machine");
    bn_cpu_features f = bn_cpu_features_detect();
    for (int i = 0; i < BN_CPU_FEATURE_COUNT; i++) {
        const char *name = bn_cpu_feature_name(i);
        bool want = bnt_has_word(flags, name); /* neon and sve never appear on x86 */
        cr_expect_eq(bn_cpu_feature_has(&f, i), want, "feature %s: born says %d, cpuinfo says %d",
                     name, bn_cpu_feature_has(&f, i), want);
    }
    free(flags);
    bnt_assert_no_error("bn_cpu_feature_has");
}

Test(info, cpu_features_struct_fields_match_the_named_list)
{
    bn_cpu_features f = bn_cpu_features_detect();
    cr_assert_str_eq(bn_cpu_feature_name(2), "avx2");
    cr_assert_eq(bn_cpu_feature_has(&f, 2), f.avx2);
    cr_assert_str_eq(bn_cpu_feature_name(5), "avx512f");
    cr_assert_eq(bn_cpu_feature_has(&f, 5), f.avx512f);
    cr_assert_str_eq(bn_cpu_feature_name(10), "avx512_bf16");
    cr_assert_eq(bn_cpu_feature_has(&f, 10), f.avx512_bf16);
    cr_assert_str_eq(bn_cpu_feature_name(11), "amx_tile");
    cr_assert_eq(bn_cpu_feature_has(&f, 11), f.amx);
    cr_assert_str_eq(bn_cpu_feature_name(BN_CPU_FEATURE_COUNT - 1), "sve");
    cr_assert_eq(bn_cpu_feature_has(&f, BN_CPU_FEATURE_COUNT - 1), f.sve);
}

Test(info, cpu_features_are_consistent_with_each_other)
{
    bn_cpu_features f = bn_cpu_features_detect();
    /* each implies the state or base extension it builds on */
    if (f.avx2 || f.fma || f.f16c || f.avx_vnni) cr_expect(f.avx);
    if (f.avx512bw || f.avx512vl || f.avx512_vnni || f.avx512_bf16) cr_expect(f.avx512f);
    if (f.avx512f) cr_expect(f.avx2);
#if defined(__x86_64__)
    cr_expect(!f.neon && !f.sve);
    cr_expect(f.sse42, "every x86-64 machine born runs on in practice has SSE4.2");
#elif defined(__aarch64__)
    cr_expect(f.neon);
#endif
}

Test(info, cpu_feature_name_rejects_index_out_of_range)
{
    BNT_ASSERT_NO_LEAK({
        cr_assert_null(bn_cpu_feature_name(BN_CPU_FEATURE_COUNT));
        bnt_assert_error(BN_ERR_ARG, "bn_cpu_feature_name", "feature index 14", "0..13", NULL);
        cr_assert_null(bn_cpu_feature_name(-1));
        bnt_assert_error(BN_ERR_ARG, "bn_cpu_feature_name", "-1", NULL);
    });
}

Test(info, cpu_feature_has_rejects_null_and_bad_index)
{
    bn_cpu_features f = bn_cpu_features_detect();
    BNT_ASSERT_NO_LEAK({
        cr_assert(!bn_cpu_feature_has(NULL, 0));
        bnt_assert_error(BN_ERR_ARG, "bn_cpu_feature_has", "argument f is NULL", NULL);
        cr_assert(!bn_cpu_feature_has(&f, 99));
        bnt_assert_error(BN_ERR_ARG, "bn_cpu_feature_has", "feature index 99", NULL);
    });
}

Test(info, version_matches_the_headers)
{
    cr_assert_str_eq(bn_version(), BN_VERSION_STRING);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", BN_VERSION_MAJOR, BN_VERSION_MINOR, BN_VERSION_PATCH);
    cr_assert_str_eq(bn_version(), want);
}

Test(info, build_info_describes_this_build)
{
    bn_build_info b = bn_build_info_get();
    cr_assert_str_eq(b.version, BN_VERSION_STRING);
    cr_assert_not_null(b.compiler);
    cr_assert(strlen(b.compiler) > 0);
    cr_assert_not_null(b.build_type);
    cr_assert(strlen(b.build_type) > 0);
    cr_assert_str_eq(b.backends, "cpu");
    cr_assert_eq(b.sanitize, COMPILED_WITH_ASAN, "sanitize %d but the test has ASan %d", b.sanitize,
                 COMPILED_WITH_ASAN);
#ifdef _OPENMP
    cr_assert(b.openmp, "the library links OpenMP (the test inherits its flags)");
#endif
#if defined(__clang__)
    cr_assert(strstr(b.compiler, "Clang") != NULL, "compiler is %s", b.compiler);
#elif defined(__GNUC__)
    cr_assert(strstr(b.compiler, "GNU") != NULL, "compiler is %s", b.compiler);
#endif
}

Test(info, set_num_threads_changes_num_threads)
{
    int before = bn_num_threads();
    cr_assert_geq(before, 1);
    cr_assert_eq(bn_set_num_threads(1), BN_OK);
    cr_assert_eq(bn_num_threads(), 1);
#ifdef _OPENMP
    cr_assert_eq(bn_set_num_threads(3), BN_OK);
    cr_assert_eq(bn_num_threads(), 3);
#endif
    cr_assert_eq(bn_set_num_threads(before), BN_OK);
    cr_assert_eq(bn_num_threads(), before);
    bnt_assert_no_error("bn_set_num_threads");
}

Test(info, set_num_threads_rejects_less_than_one)
{
    int before = bn_num_threads();
    BNT_ASSERT_NO_LEAK({
        cr_assert_eq(bn_set_num_threads(0), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_set_num_threads", "n must be >= 1", "got 0", NULL);
        cr_assert_eq(bn_set_num_threads(-4), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_set_num_threads", "got -4", NULL);
    });
    cr_assert_eq(bn_num_threads(), before, "a rejected call leaves the count alone");
}
