/* bench/openblas_sgemm.c — born's f32 matmul beside OpenBLAS's cblas_sgemm (or, with --f64, born's
 * f64 matmul beside cblas_dgemm) in the same process, on the same inputs, alternating the two so
 * both see the same machine load. One JSON line per shape:
 *   {"bench":"vs_openblas","dtype":"f32"|"f64","shape":[M,N,K],"threads":T,"reps":R,
 *    "born_ms":..,"openblas_ms":..,
 *    "born_gflops":..,"openblas_gflops":..,"ratio":openblas_ms/born_ms,"born_min_ms":..,
 *    "openblas_min_ms":..,"min_ratio":..,"max_rel_diff":..}
 * (medians of R runs after a warm-up; ratio > 1: born is faster; the minima say what each
 * reaches when the machine is not shared, which the medians do not on a busy machine).
 *
 * Built by bench/vs_openblas.sh, not by CMake's bench target (it needs -lopenblas):
 *   cc -O2 -DBORN_WITH_OPENBLAS -Iinclude bench/openblas_sgemm.c -Lbuild -lborn -lopenblas
 * Without BORN_WITH_OPENBLAS (the bench glob of CMake) it only says how to run it.
 *
 * usage: vs_openblas [--f64] [--threads T] [--reps R] [M N K]...  (default: 1024, 2048, 4096
 * and the ML shapes; T threads for both libraries, default 1) */
#include "born/born.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef BORN_WITH_OPENBLAS

int main(void)
{
    fprintf(stderr, "openblas_sgemm: built without OpenBLAS; run bench/vs_openblas.sh\n");
    return 0;
}

#else

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

void openblas_set_num_threads(int num_threads); /* OpenBLAS's own extension */

static double born_once(const bn_tensor *a, const bn_tensor *b, bn_tensor **keep)
{
    double t0 = now_ms();
    bn_tensor *c = bn_matmul(a, b);
    double ms = now_ms() - t0;
    if (*keep) bn_release(*keep);
    *keep = bn_scope_keep(c);
    return ms;
}

/* c = a @ b by OpenBLAS, all row-major and contiguous, in f32 or f64 */
static double openblas_once(bool f64, int64_t M, int64_t N, int64_t K, const void *a, const void *b,
                            void *c)
{
    double t0 = now_ms();
    if (f64)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0, a,
                    (int)K, b, (int)N, 0.0, c, (int)N);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, a,
                    (int)K, b, (int)N, 0.0f, c, (int)N);
    return now_ms() - t0;
}

/* Element i of a contiguous f32 or f64 buffer. */
static double value_at(bool f64, const void *p, int64_t i)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* Largest |born - openblas| / (|openblas| + 1) over C: both computed the same product. */
static double max_rel_diff(bool f64, const void *x, const void *y, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double yi = value_at(f64, y, i);
        double d = fabs(value_at(f64, x, i) - yi) / (fabs(yi) + 1.0);
        if (d > m) m = d;
    }
    return m;
}

static void compare(bool f64, int64_t M, int64_t N, int64_t K, int threads, int reps)
{
    bn_set_num_threads(threads);
    openblas_set_num_threads(threads);
    bn_scope_begin();
    bn_dtype dt = f64 ? BN_F64 : BN_F32;
    bn_tensor *a = bn_randn(BN_SHAPE(M, K), dt), *b = bn_randn(BN_SHAPE(K, N), dt);
    bn_tensor *c_born = NULL;
    void *c_blas = malloc((f64 ? sizeof(double) : sizeof(float)) * (size_t)(M * N));
    const void *ad = bn_tensor_data(a), *bd = bn_tensor_data(b);
    double tb[101], to[101];
    if (reps > 101) reps = 101;
    born_once(a, b, &c_born); /* warm-up: page faults, thread start */
    openblas_once(f64, M, N, K, ad, bd, c_blas);
    for (int r = 0; r < reps; r++) {
        tb[r] = born_once(a, b, &c_born);
        to[r] = openblas_once(f64, M, N, K, ad, bd, c_blas);
    }
    if (bn_error_code() != BN_OK || !c_born || !c_blas) {
        fprintf(stderr, "vs_openblas: %s\n", c_blas ? bn_error_message() : "out of memory");
    } else {
        qsort(tb, (size_t)reps, sizeof tb[0], cmp_double);
        qsort(to, (size_t)reps, sizeof to[0], cmp_double);
        double mb = tb[reps / 2], mo = to[reps / 2],
               flops = 2.0 * (double)M * (double)N * (double)K;
        printf("{\"bench\":\"vs_openblas\",\"dtype\":\"%s\",\"shape\":[%lld,%lld,%lld],"
               "\"threads\":%d,\"reps\":%d,\"born_ms\":%.4f,\"openblas_ms\":%.4f,"
               "\"born_gflops\":%.2f,\"openblas_gflops\":%.2f,\"ratio\":%.3f,"
               "\"born_min_ms\":%.4f,\"openblas_min_ms\":%.4f,\"min_ratio\":%.3f,"
               "\"max_rel_diff\":%.2e}\n",
               f64 ? "f64" : "f32", (long long)M, (long long)N, (long long)K, threads, reps, mb, mo,
               flops / (mb * 1e6), flops / (mo * 1e6), mo / mb, tb[0], to[0], to[0] / tb[0],
               max_rel_diff(f64, bn_tensor_data(c_born), c_blas, M * N));
        fflush(stdout);
    }
    free(c_blas);
    bn_scope_end();
}

int main(int argc, char **argv)
{
    static const int64_t defaults[][3] = {
        {1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096},
        {64, 4096, 4096},   {1, 4096, 4096},    {512, 3072, 768},
    };
    int threads = 1, reps = 0, nshapes = 0;
    bool f64 = false;
    int64_t shapes[32][3];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--f64") == 0) {
            f64 = true;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (i + 2 < argc && nshapes < 32) {
            for (int j = 0; j < 3; j++) shapes[nshapes][j] = atoll(argv[i + j]);
            nshapes++;
            i += 2;
        } else {
            fprintf(stderr, "usage: %s [--f64] [--threads T] [--reps R] [M N K]...\n", argv[0]);
            return 2;
        }
    }
    if (nshapes == 0)
        for (; nshapes < (int)(sizeof defaults / sizeof defaults[0]); nshapes++)
            memcpy(shapes[nshapes], defaults[nshapes], sizeof shapes[0]);
    for (int i = 0; i < nshapes; i++) {
        double flops = 2.0 * (double)shapes[i][0] * (double)shapes[i][1] * (double)shapes[i][2];
        int r = reps > 0 ? reps : flops < 1e9 ? 21 : flops < 2e10 ? 9 : 5;
        compare(f64, shapes[i][0], shapes[i][1], shapes[i][2], threads, r);
    }
    return 0;
}

#endif
