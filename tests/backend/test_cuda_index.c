/* tests/backend/test_cuda_index.c — the CUDA indexing kernels against the CPU backend:
 * index_select, gather, scatter / scatter_add (both the per-line and the sorted path), one_hot,
 * sort / argsort (shared-memory lines, CUB lines, several CUB batches), topk, tril / triu, for
 * every dtype, contiguous and strided, with duplicate indices, ties, NaN, ±inf and ±0; empty and
 * 0-d tensors; offsets past 2^31; bad indices reported like the CPU does; gradients through
 * autograd on the GPU against the CPU's. Values only move in these ops (scatter-add sums in
 * index order on both sides), so every comparison is exact. Without a GPU every test skips. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/autograd.h"
#include "born/cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


static const bn_dtype all_types[] = {BN_F32, BN_F64, BN_F16, BN_BF16, BN_I8,
                                     BN_U8,  BN_I32, BN_I64, BN_BOOL};
#define NTYPES ((int)(sizeof all_types / sizeof all_types[0]))

/* got (on the GPU) equals want (on the CPU) exactly: shape, dtype, values (NaN matches NaN) */
static void expect_equal(const bn_tensor *got, const bn_tensor *want, const char *what)
{
    cr_assert_not_null(got, "%s: %s", what, bn_error_message());
    cr_assert_eq(bn_device_of(got).type, BN_DEVICE_CUDA, "%s: result not on the GPU", what);
    bnt_assert_equal(cpu(got), want, what);
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* Values of dtype dt on the CPU with many ties; floats also hold NaN, ±inf and ±0. */
static bn_tensor *tie_values(bn_shape s, bn_dtype dt, uint64_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.dims[i];
    double *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    cr_assert_not_null(buf);
    uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 12345;
    bool fl = bn_dtype_is_float(dt);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = lcg(&st);
        if (fl) {
            switch (r % 16) {
            case 0: buf[i] = NAN; break;
            case 1: buf[i] = INFINITY; break;
            case 2: buf[i] = -INFINITY; break;
            case 3: buf[i] = -0.0; break;
            case 4: buf[i] = 0.0; break;
            case 5: buf[i] = (double)((r >> 8) % 100000) * 1e-4 - 5; break; /* mostly distinct */
            default: buf[i] = (double)((int64_t)((r >> 8) % 41) - 20) * 0.25; break;
            }
        } else {
            int64_t lo = dt == BN_BOOL ? 0 : dt == BN_U8 ? 0 : dt == BN_I8 ? -100 : -1000;
            int64_t span = dt == BN_BOOL ? 2 : dt == BN_U8 ? 250 : dt == BN_I8 ? 200 : 2000;
            if (r % 3 == 0) span = span < 8 ? span : 8; /* extra ties */
            buf[i] = (double)(lo + (int64_t)((r >> 8) % (uint64_t)span));
        }
    }
    bn_tensor *t = bn_to_dtype(bn_from_data(buf, s, BN_F64), dt);
    free(buf);
    return t;
}

/* indices in [0, hi) of shape s, i64 or i32 */
static bn_tensor *rand_index(bn_shape s, int64_t hi, bn_dtype dt)
{
    return bn_to_dtype(bn_randint(0, hi, s, BN_I64), dt);
}

/* ---- index_select ------------------------------------------------------------------------------ */
Test(cuda_index, index_select_matches_cpu_for_every_dtype_dim_and_layout)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < NTYPES; k++) {
            for (int dim = 0; dim < 3; dim++) {
                for (int it = 0; it < 2; it++) {
                    bn_scope_begin();
                    bn_dtype dt = all_types[k], idt = it ? BN_I32 : BN_I64;
                    bn_tensor *x = tie_values(BN_SHAPE(5, 7, 6), dt, (uint64_t)(k * 10 + dim));
                    /* a permuted view: no dim is contiguous in the kernel's order */
                    bn_tensor *xp = bn_permute(x, (int[]){2, 0, 1}, 3);
                    bn_tensor *xpg = bn_permute(gpu(x), (int[]){2, 0, 1}, 3);
                    /* duplicates; in range for both x and xp */
                    int64_t n = bn_dim(x, dim) < bn_dim(xp, dim) ? bn_dim(x, dim) : bn_dim(xp, dim);
                    bn_tensor *idx = rand_index(BN_SHAPE(11), n, idt);
                    char what[96];
                    snprintf(what, sizeof what, "index_select %s dim %d %s", bn_dtype_name(dt),
                             dim, bn_dtype_name(idt));
                    expect_equal(bn_index_select(gpu(x), dim, gpu(idx)),
                                 bn_index_select(x, dim, idx), what);
                    expect_equal(bn_index_select(xpg, dim, gpu(idx)),
                                 bn_index_select(xp, dim, idx), what);
                    /* a strided index */
                    bn_tensor *is = bn_slice(idx, 0, 1, 11, 3);
                    expect_equal(bn_index_select(xpg, dim, gpu(is)), bn_index_select(xp, dim, is),
                                 what);
                    bn_scope_end();
                }
            }
        }
    });
}

Test(cuda_index, index_select_handles_empty_and_0d)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = tie_values(BN_SHAPE(4, 3), BN_F32, 1);
        bn_tensor *none = bn_zeros(BN_SHAPE(0), BN_I64);
        expect_equal(bn_index_select(gpu(x), 1, gpu(none)), bn_index_select(x, 1, none), "empty");
        bn_tensor *i0 = bn_scalar(2, BN_I64); /* 0-d index */
        expect_equal(bn_index_select(gpu(x), 0, gpu(i0)), bn_index_select(x, 0, i0), "0-d index");
        bn_tensor *s = bn_scalar(7.5, BN_F64); /* 0-d t with a one-element index */
        bn_tensor *z = bn_zeros(BN_SHAPE(1), BN_I64);
        expect_equal(bn_index_select(gpu(s), 0, gpu(z)), bn_index_select(s, 0, z), "0-d t");
        bn_tensor *e = bn_zeros(BN_SHAPE(0, 5), BN_F32); /* empty t, index still checked */
        bn_tensor *i3 = bn_from_data((int64_t[]){1, 4}, BN_SHAPE(2), BN_I64);
        expect_equal(bn_index_select(gpu(e), 1, gpu(i3)), bn_index_select(e, 1, i3), "empty t");
        bn_scope_end();
    });
}

/* ---- gather -------------------------------------------------------------------------------------- */
Test(cuda_index, gather_matches_cpu_for_every_dtype_dim_and_layout)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < NTYPES; k++) {
            for (int dim = 0; dim < 3; dim++) {
                bn_scope_begin();
                bn_dtype dt = all_types[k], idt = dim == 1 ? BN_I32 : BN_I64;
                bn_tensor *x = tie_values(BN_SHAPE(6, 8, 5), dt, (uint64_t)(k * 7 + dim));
                /* index smaller than x in the other dims, larger along dim */
                int64_t is[3] = {4, 6, 3};
                is[dim] = 13;
                bn_tensor *idx =
                    rand_index(BN_SHAPE(is[0], is[1], is[2]), bn_dim(x, dim), idt);
                char what[96];
                snprintf(what, sizeof what, "gather %s dim %d", bn_dtype_name(dt), dim);
                expect_equal(bn_gather(gpu(x), dim, gpu(idx)), bn_gather(x, dim, idx), what);
                /* strided x (transposed dims 0 and 2) and a strided index */
                bn_tensor *xt = bn_transpose(x, 0, 2), *xtg = bn_transpose(gpu(x), 0, 2);
                int64_t ts[3] = {3, 5, 4};
                ts[dim] = 9;
                bn_tensor *it2 = rand_index(BN_SHAPE(ts[2], ts[1], ts[0]), bn_dim(xt, dim), idt);
                bn_tensor *itt = bn_transpose(it2, 0, 2);
                expect_equal(bn_gather(xtg, dim, bn_transpose(gpu(it2), 0, 2)),
                             bn_gather(xt, dim, itt), what);
                bn_scope_end();
            }
        }
        bn_scope_begin();
        bn_tensor *x = tie_values(BN_SHAPE(3, 4), BN_F32, 3);
        bn_tensor *none = bn_zeros(BN_SHAPE(3, 0), BN_I64);
        expect_equal(bn_gather(gpu(x), 1, gpu(none)), bn_gather(x, 1, none), "empty index");
        bn_scope_end();
    });
}

/* ---- scatter / scatter_add -------------------------------------------------------------------- */
typedef struct scatter_case {
    const char *name;
    int64_t out[2], index[2], src[2];
    int dim;
} scatter_case;

/* index lines of length <= 64 or many lines: one thread per line; few long lines: sorted runs */
static const scatter_case scatter_cases[] = {
    {"short lines", {40, 6}, {30, 5}, {31, 6}, 0},
    {"many lines", {20000, 3}, {20000, 8}, {20000, 8}, 1},
    {"one long line", {1, 50}, {1, 5000}, {1, 5000}, 1},
    {"few long lines", {7, 300}, {5, 1000}, {6, 1000}, 1},
    {"few long lines dim 0", {300, 7}, {1000, 5}, {1000, 6}, 0},
};

static void check_scatter(const scatter_case *c, bn_dtype dt, bn_dtype idt, bool strided)
{
    int d = c->dim;
    int64_t size = c->out[d];
    bn_tensor *t = tie_values(BN_SHAPE(c->out[0], c->out[1]), dt, 11);
    bn_tensor *src = tie_values(BN_SHAPE(c->src[0], c->src[1]), dt, 12);
    bn_tensor *idx = rand_index(BN_SHAPE(c->index[0], c->index[1]), size, idt);
    bn_tensor *tg = gpu(t), *sg = gpu(src), *ig = gpu(idx);
    if (strided) { /* every operand a transposed view of a contiguous copy */
        t = bn_transpose(bn_contiguous(bn_transpose(t, 0, 1)), 0, 1);
        tg = bn_transpose(bn_contiguous(bn_transpose(tg, 0, 1)), 0, 1);
        src = bn_transpose(bn_contiguous(bn_transpose(src, 0, 1)), 0, 1);
        sg = bn_transpose(bn_contiguous(bn_transpose(sg, 0, 1)), 0, 1);
        idx = bn_transpose(bn_contiguous(bn_transpose(idx, 0, 1)), 0, 1);
        ig = bn_transpose(bn_contiguous(bn_transpose(ig, 0, 1)), 0, 1);
    }
    char what[128];
    snprintf(what, sizeof what, "scatter %s %s %s%s", c->name, bn_dtype_name(dt),
             bn_dtype_name(idt), strided ? " strided" : "");
    expect_equal(bn_scatter(tg, d, ig, sg), bn_scatter(t, d, idx, src), what);
    snprintf(what, sizeof what, "scatter_add %s %s %s%s", c->name, bn_dtype_name(dt),
             bn_dtype_name(idt), strided ? " strided" : "");
    expect_equal(bn_scatter_add(tg, d, ig, sg), bn_scatter_add(t, d, idx, src), what);
}

Test(cuda_index, scatter_and_scatter_add_match_cpu_on_both_paths)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t c = 0; c < sizeof scatter_cases / sizeof scatter_cases[0]; c++) {
            for (int k = 0; k < NTYPES; k++) {
                bn_scope_begin();
                check_scatter(&scatter_cases[c], all_types[k], BN_I64, false);
                bn_scope_end();
            }
            bn_scope_begin();
            check_scatter(&scatter_cases[c], BN_F32, BN_I32, true);
            check_scatter(&scatter_cases[c], BN_F16, BN_I64, true);
            bn_scope_end();
        }
    });
}

Test(cuda_index, scatter_add_sums_duplicates_in_index_order)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        /* one target, 4096 f32 terms of very different sizes: any other order rounds otherwise */
        bn_scope_begin();
        bn_tensor *src = bn_mul(bn_randn(BN_SHAPE(4096), BN_F32),
                                bn_exp(rand_in(BN_SHAPE(4096), -12, 12, BN_F32)));
        bn_tensor *idx = bn_zeros(BN_SHAPE(4096), BN_I64);
        bn_tensor *t = bn_zeros(BN_SHAPE(3), BN_F32);
        expect_equal(bn_scatter_add(gpu(t), 0, gpu(idx), gpu(src)), bn_scatter_add(t, 0, idx, src),
                     "ordered sum");
        /* the same through many lines of length 64 (the per-line path) */
        bn_tensor *src2 = bn_reshape(src, BN_SHAPE(64, 64));
        bn_tensor *idx2 = bn_zeros(BN_SHAPE(64, 64), BN_I64);
        bn_tensor *t2 = bn_zeros(BN_SHAPE(64, 2), BN_F32);
        expect_equal(bn_scatter_add(gpu(t2), 1, gpu(idx2), gpu(src2)),
                     bn_scatter_add(t2, 1, idx2, src2), "ordered sum per line");
        bn_scope_end();
    });
}

Test(cuda_index, one_hot_matches_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *c = bn_randint(0, 7, BN_SHAPE(5, 9), BN_I64);
        expect_equal(bn_one_hot(gpu(c), 7), bn_one_hot(c, 7), "one_hot");
        expect_equal(bn_one_hot(bn_transpose(gpu(c), 0, 1), 0),
                     bn_one_hot(bn_transpose(c, 0, 1), 0), "one_hot strided, inferred");
        bn_scope_end();
    });
}

/* ---- sort / argsort ------------------------------------------------------------------------------ */
static void check_sort(const bn_tensor *x, const bn_tensor *xg, int dim, bool desc,
                       const char *what)
{
    bn_tensor *wv = NULL, *wi = NULL, *gv = NULL, *gi = NULL;
    cr_assert_eq(bn_sort(x, dim, desc, &wv, &wi), BN_OK, "%s: %s", what, bn_error_message());
    cr_assert_eq(bn_sort(xg, dim, desc, &gv, &gi), BN_OK, "%s: %s", what, bn_error_message());
    expect_equal(gv, wv, what);
    expect_equal(gi, wi, what);
    bn_tensor *gv2 = NULL, *gi2 = NULL; /* one output at a time */
    cr_assert_eq(bn_sort(xg, dim, desc, &gv2, NULL), BN_OK, "%s: %s", what, bn_error_message());
    expect_equal(gv2, wv, what);
    cr_assert_eq(bn_sort(xg, dim, desc, NULL, &gi2), BN_OK, "%s: %s", what, bn_error_message());
    expect_equal(gi2, wi, what);
    expect_equal(bn_argsort(xg, dim, desc), wi, what);
}

Test(cuda_index, sort_matches_cpu_for_every_dtype_direction_and_dim)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < NTYPES; k++) {
            for (int dim = 0; dim < 3; dim++) {
                for (int desc = 0; desc < 2; desc++) {
                    bn_scope_begin();
                    bn_dtype dt = all_types[k];
                    bn_tensor *x = tie_values(BN_SHAPE(5, 300, 4), dt, (uint64_t)(k + 100 * dim));
                    char what[96];
                    snprintf(what, sizeof what, "sort %s dim %d %s", bn_dtype_name(dt), dim,
                             desc ? "descending" : "ascending");
                    check_sort(x, gpu(x), dim, desc, what);
                    /* a permuted view */
                    int perm[3] = {1, 2, 0};
                    check_sort(bn_permute(x, perm, 3), bn_permute(gpu(x), perm, 3), dim, desc,
                               what);
                    bn_scope_end();
                }
            }
        }
    });
}

Test(cuda_index, sort_matches_cpu_for_short_and_long_lines)
{
    NEED_GPU();
    /* 2048 is the last length sorted in shared memory; longer lines go through CUB */
    static const int64_t lens[] = {1, 2, 3, 7, 64, 65, 1000, 2047, 2048, 2049, 5000, 70000};
    BNT_ASSERT_NO_LEAK({
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            static const bn_dtype types[] = {BN_F32, BN_F64, BN_F16, BN_BF16, BN_I64, BN_U8,
                                             BN_BOOL};
            for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
                for (int desc = 0; desc < 2; desc++) {
                    bn_scope_begin();
                    bn_dtype dt = types[k];
                    int64_t n = lens[l];
                    bn_tensor *x = tie_values(BN_SHAPE(n, 3), dt, (uint64_t)(n * 3 + k));
                    char what[96];
                    snprintf(what, sizeof what, "sort %s length %lld %s", bn_dtype_name(dt),
                             (long long)n, desc ? "descending" : "ascending");
                    check_sort(x, gpu(x), 0, desc, what); /* strided lines */
                    bn_tensor *xt = bn_contiguous(bn_transpose(x, 0, 1));
                    check_sort(xt, gpu(xt), 1, desc, what); /* contiguous lines */
                    bn_scope_end();
                }
            }
        }
    });
}

Test(cuda_index, sort_of_long_lines_runs_in_several_batches)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        /* 5600 lines of 3000: more elements than one CUB batch (2^24) */
        bn_scope_begin();
        bn_tensor *x = tie_values(BN_SHAPE(5600, 3000), BN_F32, 77);
        check_sort(x, gpu(x), 1, true, "sort in batches");
        bn_scope_end();
    });
}

Test(cuda_index, sort_handles_empty_and_0d)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *e = bn_zeros(BN_SHAPE(0, 5), BN_F32);
        check_sort(e, gpu(e), 1, false, "empty lines");
        check_sort(e, gpu(e), 0, false, "five lines of length 0");
        bn_tensor *s = bn_scalar(-2.5, BN_F32);
        check_sort(s, gpu(s), 0, true, "0-d");
        bn_scope_end();
    });
}

/* ---- topk ---------------------------------------------------------------------------------------- */
Test(cuda_index, topk_matches_cpu_including_ties)
{
    NEED_GPU();
    static const int64_t lens[] = {1, 7, 300, 5000};
    BNT_ASSERT_NO_LEAK({
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            for (int k = 0; k < NTYPES; k++) {
                bn_scope_begin();
                bn_dtype dt = all_types[k];
                int64_t n = lens[l];
                bn_tensor *x = tie_values(BN_SHAPE(4, n), dt, (uint64_t)(n + 31 * k));
                int64_t ks[] = {0, 1, n < 5 ? n : 5, n};
                for (int q = 0; q < 4; q++) {
                    for (int largest = 0; largest < 2; largest++) {
                        for (int tr = 0; tr < 2; tr++) {
                            const bn_tensor *xc = tr ? bn_transpose(x, 0, 1) : x;
                            bn_tensor *xg = tr ? bn_transpose(gpu(x), 0, 1) : gpu(x);
                            int dim = tr ? 0 : 1;
                            bn_tensor *wv, *wi, *gv, *gi;
                            char what[96];
                            snprintf(what, sizeof what, "topk %s n %lld k %lld %s%s",
                                     bn_dtype_name(dt), (long long)n, (long long)ks[q],
                                     largest ? "largest" : "smallest", tr ? " strided" : "");
                            cr_assert_eq(bn_topk(xc, ks[q], dim, largest, &wv, &wi), BN_OK);
                            cr_assert_eq(bn_topk(xg, ks[q], dim, largest, &gv, &gi), BN_OK,
                                         "%s: %s", what, bn_error_message());
                            expect_equal(gv, wv, what);
                            expect_equal(gi, wi, what);
                            bn_tensor *gi2 = NULL;
                            cr_assert_eq(bn_topk(xg, ks[q], dim, largest, NULL, &gi2), BN_OK);
                            expect_equal(gi2, wi, what);
                        }
                    }
                }
                bn_scope_end();
            }
        }
    });
}

/* ---- tril / triu --------------------------------------------------------------------------------- */
Test(cuda_index, tril_and_triu_match_cpu_for_every_dtype_and_diagonal)
{
    NEED_GPU();
    static const int64_t diags[] = {-100, -7, -2, -1, 0, 1, 3, 7, 100};
    BNT_ASSERT_NO_LEAK({
        for (int k = 0; k < NTYPES; k++) {
            bn_scope_begin();
            bn_dtype dt = all_types[k];
            bn_tensor *x = tie_values(BN_SHAPE(2, 3, 6, 5), dt, (uint64_t)k);
            bn_tensor *xg = gpu(x);
            for (size_t q = 0; q < sizeof diags / sizeof diags[0]; q++) {
                char what[96];
                snprintf(what, sizeof what, "tril/triu %s diagonal %lld", bn_dtype_name(dt),
                         (long long)diags[q]);
                expect_equal(bn_tril(xg, diags[q]), bn_tril(x, diags[q]), what);
                expect_equal(bn_triu(xg, diags[q]), bn_triu(x, diags[q]), what);
                /* transposed matrices and a sliced batch */
                bn_tensor *xt = bn_transpose(x, 2, 3), *xtg = bn_transpose(xg, 2, 3);
                expect_equal(bn_tril(xtg, diags[q]), bn_tril(xt, diags[q]), what);
                expect_equal(bn_triu(bn_slice(xtg, 1, 0, 3, 2), diags[q]),
                             bn_triu(bn_slice(xt, 1, 0, 3, 2), diags[q]), what);
            }
            bn_scope_end();
        }
        bn_scope_begin();
        bn_tensor *e = bn_zeros(BN_SHAPE(0, 3), BN_F32);
        expect_equal(bn_tril(gpu(e), 0), bn_tril(e, 0), "empty");
        bn_scope_end();
    });
}

/* ---- large offsets --------------------------------------------------------------------------------- */
Test(cuda_index, indexing_reaches_past_2_31_elements)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        int64_t n = ((int64_t)1 << 31) + 16;
        bn_tensor *x = bn_zeros(BN_SHAPE(n), BN_U8);
        bn_tensor *tail = bn_slice(x, 0, n - 16, n, 1);
        cr_assert_eq(bn_copy_(tail, bn_to_dtype(bn_arange(1, 17, 1, BN_I64), BN_U8)), BN_OK);
        bn_tensor *xg = gpu(x);
        cr_assert_not_null(xg, "%s", bn_error_message());
        bn_tensor *idx = bn_from_data((int64_t[]){n - 1, n - 16, 5, n - 9}, BN_SHAPE(4), BN_I64);
        expect_equal(bn_index_select(xg, 0, gpu(idx)), bn_index_select(x, 0, idx),
                     "index_select past 2^31");
        expect_equal(bn_gather(xg, 0, gpu(idx)), bn_gather(x, 0, idx), "gather past 2^31");
        bn_tensor *src = bn_full(BN_SHAPE(4), 200, BN_U8);
        bn_tensor *got = bn_scatter(xg, 0, gpu(idx), gpu(src));
        cr_assert_not_null(got, "%s", bn_error_message());
        expect_equal(bn_slice(got, 0, n - 32, n, 1),
                     bn_slice(bn_scatter(x, 0, idx, src), 0, n - 32, n, 1), "scatter past 2^31");
        bn_scope_end();
    });
}

/* ---- bad indices ---------------------------------------------------------------------------------- */
Test(cuda_index, out_of_range_indices_are_reported_like_the_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(4, 5), BN_F32));
        bn_tensor *i1 = gpu(bn_from_data((int64_t[]){0, 5, 2}, BN_SHAPE(3), BN_I64));
        cr_assert_null(bn_index_select(x, 1, i1));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "index 5 is out of range", "size 5",
                         NULL);
        bn_tensor *i2 = gpu(bn_from_data((int32_t[]){1, 0, -1, 3}, BN_SHAPE(4, 1), BN_I32));
        cr_assert_null(bn_gather(x, 0, i2));
        bnt_assert_error(BN_ERR_ARG, "bn_gather", "index -1 is out of range", "size 4", NULL);
        /* scatter on the per-line path and on the sorted path */
        bn_tensor *i3 = gpu(bn_from_data((int64_t[]){1, 9, 0}, BN_SHAPE(1, 3), BN_I64));
        bn_tensor *s3 = gpu(bn_ones(BN_SHAPE(1, 3), BN_F32));
        cr_assert_null(bn_scatter(x, 1, i3, s3));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter", "index 9 is out of range", NULL);
        bn_tensor *good = bn_randint(0, 5, BN_SHAPE(1, 3000), BN_I64);
        bn_tensor *bad = bn_slice(good, 1, 1700, 1701, 1);
        cr_assert_eq(bn_copy_(bad, bn_full(BN_SHAPE(1, 1), 1234, BN_I64)), BN_OK);
        bn_tensor *s4 = gpu(bn_ones(BN_SHAPE(1, 3000), BN_F32));
        cr_assert_null(bn_scatter_add(x, 1, gpu(good), s4));
        bnt_assert_error(BN_ERR_ARG, "bn_scatter_add", "index 1234 is out of range", NULL);
        bn_tensor *empty = gpu(bn_zeros(BN_SHAPE(0, 5), BN_F32));
        cr_assert_null(bn_index_select(empty, 0, gpu(bn_zeros(BN_SHAPE(1), BN_I64))));
        bnt_assert_error(BN_ERR_ARG, "bn_index_select", "index 0 is out of range", NULL);
        /* the device stays usable */
        bn_tensor *ok = gpu(bn_from_data((int64_t[]){4, 0}, BN_SHAPE(2), BN_I64));
        cr_assert_not_null(bn_index_select(x, 1, ok), "%s", bn_error_message());
        bn_scope_end();
    });
}

Test(cuda_index, bad_arguments_fail_before_the_kernel)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *x = gpu(bn_randn(BN_SHAPE(4, 5), BN_F32));
        bn_tensor *fi = gpu(bn_zeros(BN_SHAPE(2), BN_F32));
        cr_assert_null(bn_index_select(x, 0, fi));
        bnt_assert_error(BN_ERR_DTYPE, "bn_index_select", "index must be i64 or i32", NULL);
        bn_tensor *ci = bn_zeros(BN_SHAPE(2), BN_I64); /* on the CPU */
        cr_assert_null(bn_index_select(x, 0, ci));
        bnt_assert_error(BN_ERR_DEVICE, "bn_index_select", NULL);
        bn_tensor *v = NULL;
        cr_assert_eq(bn_topk(x, 6, 1, true, &v, NULL), BN_ERR_ARG);
        cr_assert_null(v);
        bnt_assert_error(BN_ERR_ARG, "bn_topk", "k 6", NULL);
        cr_assert_null(bn_tril(gpu(bn_zeros(BN_SHAPE(3), BN_F32)), 0));
        bnt_assert_error(BN_ERR_SHAPE, "bn_tril", NULL);
        bn_scope_end();
    });
}

/* ---- gradients: autograd on the GPU against the CPU --------------------------------------------- */
typedef bn_tensor *(*op_fn)(const bn_tensor *x, const bn_tensor *index);

static bn_tensor *op_index_select(const bn_tensor *x, const bn_tensor *i)
{
    return bn_index_select(x, 1, i);
}
static bn_tensor *op_gather(const bn_tensor *x, const bn_tensor *i) { return bn_gather(x, 1, i); }
static bn_tensor *op_sort(const bn_tensor *x, const bn_tensor *i)
{
    (void)i;
    bn_tensor *v = NULL;
    return bn_sort(x, 1, true, &v, NULL) == BN_OK ? v : NULL;
}
static bn_tensor *op_topk(const bn_tensor *x, const bn_tensor *i)
{
    (void)i;
    bn_tensor *v = NULL;
    return bn_topk(x, 3, 0, false, &v, NULL) == BN_OK ? v : NULL;
}
static bn_tensor *op_tril(const bn_tensor *x, const bn_tensor *i)
{
    (void)i;
    return bn_tril(x, -1);
}
static bn_tensor *op_triu(const bn_tensor *x, const bn_tensor *i)
{
    (void)i;
    return bn_triu(x, 1);
}

/* d sum(op(x) * w) / dx on the GPU equals the CPU's (f64; repeated indices sum in order) */
static void check_grad(const char *what, op_fn op, bn_shape xs, const bn_tensor *index)
{
    bn_tensor *x = bn_randn(xs, BN_F64);
    bn_tensor *xg = gpu(x);
    cr_assert_eq(bn_set_requires_grad(x, true), BN_OK);
    cr_assert_eq(bn_set_requires_grad(xg, true), BN_OK);
    bn_tensor *y = op(x, index);
    cr_assert_not_null(y, "%s: %s", what, bn_error_message());
    bn_tensor *w = bn_randn(bn_shape_of(y), BN_F64);
    cr_assert_eq(bn_backward(bn_sum(bn_mul(y, w), BN_ALL, false)), BN_OK);
    bn_tensor *yg = op(xg, index ? gpu(index) : NULL);
    cr_assert_not_null(yg, "%s: %s", what, bn_error_message());
    expect_equal(yg, bn_detach(y), what);
    cr_assert_eq(bn_backward(bn_sum(bn_mul(yg, gpu(w)), BN_ALL, false)), BN_OK, "%s: %s", what,
                 bn_error_message());
    bn_tensor *gg = bn_grad(xg);
    cr_assert_not_null(gg, "%s: no gradient on the GPU input", what);
    bnt_assert_close(cpu(gg), bn_grad(x), 1e-12, 1e-12, what);
}

Test(cuda_index, gradients_on_the_gpu_match_the_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        check_grad("index_select", op_index_select, BN_SHAPE(5, 6),
                   bn_from_data((int64_t[]){4, 0, 4, 2}, BN_SHAPE(4), BN_I64));
        check_grad("gather", op_gather, BN_SHAPE(4, 6), bn_randint(0, 6, BN_SHAPE(4, 9), BN_I64));
        check_grad("sort", op_sort, BN_SHAPE(4, 7), NULL);
        check_grad("sort long lines", op_sort, BN_SHAPE(2, 3000), NULL);
        check_grad("topk", op_topk, BN_SHAPE(8, 5), NULL);
        check_grad("tril", op_tril, BN_SHAPE(3, 4, 5), NULL);
        check_grad("triu", op_triu, BN_SHAPE(3, 4, 5), NULL);
        bn_scope_end();
    });
}

Test(cuda_index, scatter_gradients_on_the_gpu_match_the_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int add = 0; add < 2; add++) {
            bn_scope_begin();
            /* src larger than index: its extra elements get zero gradient */
            bn_tensor *t = bn_randn(BN_SHAPE(5, 6), BN_F64), *src = bn_randn(BN_SHAPE(4, 7), BN_F64);
            bn_tensor *idx = bn_randint(0, 5, BN_SHAPE(3, 6), BN_I64);
            bn_tensor *tg = gpu(t), *sg = gpu(src);
            bn_tensor *leaves[4] = {t, src, tg, sg};
            for (int i = 0; i < 4; i++) cr_assert_eq(bn_set_requires_grad(leaves[i], true), BN_OK);
            bn_tensor *y = add ? bn_scatter_add(t, 0, idx, src) : bn_scatter(t, 0, idx, src);
            bn_tensor *yg =
                add ? bn_scatter_add(tg, 0, gpu(idx), sg) : bn_scatter(tg, 0, gpu(idx), sg);
            const char *what = add ? "scatter_add" : "scatter";
            cr_assert_not_null(yg, "%s: %s", what, bn_error_message());
            bn_tensor *w = bn_randn(BN_SHAPE(5, 6), BN_F64);
            cr_assert_eq(bn_backward(bn_sum(bn_mul(y, w), BN_ALL, false)), BN_OK);
            cr_assert_eq(bn_backward(bn_sum(bn_mul(yg, gpu(w)), BN_ALL, false)), BN_OK, "%s: %s",
                         what, bn_error_message());
            for (int i = 0; i < 2; i++) {
                bn_tensor *gg = bn_grad(leaves[2 + i]);
                cr_assert_not_null(gg, "%s: no gradient on GPU input %d", what, i);
                bnt_assert_close(cpu(gg), bn_grad(leaves[i]), 1e-12, 1e-12, what);
            }
            bn_scope_end();
        }
    });
}
