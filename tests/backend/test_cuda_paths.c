/* tests/backend/test_cuda_paths.c — the CUDA element-wise and reduction kernels' specialised
 * paths against the CPU backend: packed (16-byte) contiguous kernels at every length around the
 * pack size and at unaligned starts, the rank-specialised walks (merged ranks 1 to 4) and the
 * general walk (rank 5 and more), casts between float dtypes, same-dtype copies, and the sums
 * and means of contiguous tensors over outer and inner dims (bias gradients: (N, C, H, W) over
 * N, H, W; (rows, cols) over rows; whole tensors), including shapes cut into many parts. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/autograd.h"
#include "born/cuda.h"

#include <math.h>
#include <stdio.h>

static const bn_dtype float_types[] = {BN_F32, BN_F64, BN_F16, BN_BF16};

static double rtol_of(bn_dtype dt)
{
    return dt == BN_F64 ? 1e-12 : dt == BN_F32 ? 1e-5 : dt == BN_F16 ? 1e-3 : 1e-2;
}

/* ---- packed contiguous kernels ---------------------------------------------------------------- */
Test(cuda_paths, contiguous_ops_at_every_length_and_unaligned_starts)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < 4; k++) {
            bn_dtype dt = float_types[k];
            for (int64_t n = 1; n <= 41; n += (n < 20 ? 1 : 7)) {
                for (int64_t off = 0; off < 3; off++) {
                    bn_scope_begin();
                    /* a slice starting `off` elements in: 16-byte aligned only for off = 0 */
                    bn_tensor *a = rand_in(BN_SHAPE(n + 3), 0.5, 2, dt);
                    bn_tensor *b = rand_in(BN_SHAPE(n + 3), 0.5, 2, dt);
                    bn_tensor *as = bn_narrow(a, 0, off, n), *bs = bn_narrow(b, 0, 3 - off, n);
                    bn_tensor *ga = bn_narrow(gpu(a), 0, off, n),
                              *gb = bn_narrow(gpu(b), 0, 3 - off, n);
                    char what[96];
                    snprintf(what, sizeof what, "%s n %lld off %lld", bn_dtype_name(dt),
                             (long long)n, (long long)off);
                    double r = rtol_of(dt);
                    expect_close(bn_mul(ga, gb), bn_mul(as, bs), r, 0, what);
                    expect_close(bn_div(ga, ga), bn_div(as, as), r, 0, what);
                    expect_close(bn_sub(gb, ga), bn_sub(bs, as), r, r, what);
                    expect_close(bn_exp(ga), bn_exp(as), r, 0, what);
                    expect_close(bn_sqrt(gb), bn_sqrt(bs), r, 0, what);
                    for (size_t j = 0; j < 4; j++) { /* casts, packed when both are aligned */
                        bn_tensor *want = bn_to_dtype(as, float_types[j]);
                        bn_tensor *got = bn_to_dtype(ga, float_types[j]);
                        bnt_assert_equal(cpu(got), want, what);
                    }
                    bnt_assert_equal(cpu(bn_contiguous(ga)), bn_contiguous(as), what);
                    bn_scope_end();
                }
            }
        }
    });
}

Test(cuda_paths, large_contiguous_binary_unary_and_cast)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = rand_in(BN_SHAPE(1000003), -3, 3, BN_F32);
        bn_tensor *b = rand_in(BN_SHAPE(1000003), -3, 3, BN_F32);
        bn_tensor *ga = gpu(a), *gb = gpu(b);
        expect_close(bn_add(ga, gb), bn_add(a, b), 1e-6, 0, "add 1000003");
        expect_close(bn_relu(ga), bn_relu(a), 0, 0, "relu 1000003");
        expect_close(bn_tanh(gb), bn_tanh(b), 1e-5, 1e-7, "tanh 1000003");
        bnt_assert_equal(cpu(bn_to_dtype(ga, BN_BF16)), bn_to_dtype(a, BN_BF16), "to bf16");
        bnt_assert_equal(cpu(bn_to_dtype(bn_to_dtype(ga, BN_F16), BN_F32)),
                         bn_to_dtype(bn_to_dtype(a, BN_F16), BN_F32), "f16 round trip");
        bn_scope_end();
    });
}

/* ---- rank-specialised walks ------------------------------------------------------------------- */
/* a (op) b for a of shape sa and b of shape sb (broadcast against each other), with b also seen
 * through a transposed copy so that no dims merge */
static void check_broadcast(bn_shape sa, bn_shape sb, bn_dtype dt, const char *name)
{
    bn_tensor *a = rand_in(sa, 0.5, 3, dt), *b = rand_in(sb, 0.5, 3, dt);
    char what[96];
    double r = rtol_of(dt);
    snprintf(what, sizeof what, "%s %s add", name, bn_dtype_name(dt));
    expect_close(bn_add(gpu(a), gpu(b)), bn_add(a, b), r, 0, what);
    snprintf(what, sizeof what, "%s %s maximum", name, bn_dtype_name(dt));
    expect_close(bn_maximum(gpu(b), gpu(a)), bn_maximum(b, a), 0, 0, what);
    snprintf(what, sizeof what, "%s %s lt", name, bn_dtype_name(dt));
    bnt_assert_equal(cpu(bn_lt(gpu(a), gpu(b))), bn_lt(a, b), what);
    snprintf(what, sizeof what, "%s %s where", name, bn_dtype_name(dt));
    bn_tensor *c = bn_gt_scalar(a, 1.5);
    bnt_assert_equal(cpu(bn_where(gpu(c), gpu(a), gpu(b))), bn_where(c, a, b), what);
    /* a transposed (non-mergeable) source: the walk with its own strides */
    int last = (int)bn_ndim(a) - 1;
    if (last >= 1) {
        bn_tensor *at = bn_transpose(a, 0, last), *gat = bn_transpose(gpu(a), 0, last);
        snprintf(what, sizeof what, "%s %s transposed exp", name, bn_dtype_name(dt));
        expect_close(bn_exp(gat), bn_exp(at), r, 0, what);
        snprintf(what, sizeof what, "%s %s transposed copy", name, bn_dtype_name(dt));
        bnt_assert_equal(cpu(bn_contiguous(gat)), bn_contiguous(at), what);
        snprintf(what, sizeof what, "%s %s transposed cast", name, bn_dtype_name(dt));
        bnt_assert_equal(cpu(bn_to_dtype(gat, BN_F32)), bn_to_dtype(at, BN_F32), what);
    }
}

Test(cuda_paths, broadcasts_at_merged_ranks_one_to_six)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < 4; k++) {
            bn_dtype dt = float_types[k];
            bn_scope_begin();
            check_broadcast(BN_SHAPE(7, 9), BN_SHAPE(1, 1), dt, "rank 1 (scalar)");
            check_broadcast(BN_SHAPE(33, 65), BN_SHAPE(65), dt, "rank 2 (row bias)");
            check_broadcast(BN_SHAPE(5, 32, 13, 13), BN_SHAPE(1, 32, 1, 1), dt,
                            "rank 3 (channel bias)");
            check_broadcast(BN_SHAPE(3, 4, 5, 6), BN_SHAPE(3, 1, 5, 1), dt, "rank 4");
            check_broadcast(BN_SHAPE(2, 3, 4, 5, 6), BN_SHAPE(1, 3, 1, 5, 1), dt, "rank 5");
            check_broadcast(BN_SHAPE(2, 3, 2, 3, 2, 3), BN_SHAPE(2, 1, 2, 1, 2, 1), dt, "rank 6");
            bn_scope_end();
        }
        bn_scope_begin(); /* integers take the walks too */
        bn_tensor *a = rand_in(BN_SHAPE(4, 6, 5), -50, 50, BN_I32);
        bn_tensor *b = rand_in(BN_SHAPE(1, 6, 1), -50, 50, BN_I32);
        bnt_assert_equal(cpu(bn_add(gpu(a), gpu(b))), bn_add(a, b), "i32 channel add");
        bnt_assert_equal(cpu(bn_to_dtype(gpu(a), BN_I64)), bn_to_dtype(a, BN_I64), "i32 to i64");
        bn_scope_end();
    });
}

/* ---- rows that stay contiguous: 16-byte packs through the walks -------------------------------- */
Test(cuda_paths, permutations_and_row_broadcasts_with_contiguous_rows)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < 4; k++) {
            bn_dtype dt = float_types[k];
            for (int inner = 16; inner <= 72;
                 inner += 56) { /* 16 and 72: multiples of every pack */
                bn_scope_begin();
                char what[96];
                /* the attention heads' layout change: (B, T, H, D) <-> (B, H, T, D) */
                bn_tensor *x = rand_in(BN_SHAPE(2, 5, 3, inner), -2, 2, dt), *gx = gpu(x);
                snprintf(what, sizeof what, "%s heads permute D %d", bn_dtype_name(dt), inner);
                bnt_assert_equal(cpu(bn_contiguous(bn_transpose(gx, 1, 2))),
                                 bn_contiguous(bn_transpose(x, 1, 2)), what);
                /* permuted operands and a bias along rows */
                bn_tensor *y = rand_in(BN_SHAPE(2, 3, 5, inner), -2, 2, dt), *gy = gpu(y);
                bn_tensor *bias = rand_in(BN_SHAPE(inner), -1, 1, dt), *gb = gpu(bias);
                snprintf(what, sizeof what, "%s permuted add D %d", bn_dtype_name(dt), inner);
                expect_close(bn_add(bn_transpose(gx, 1, 2), gy), bn_add(bn_transpose(x, 1, 2), y),
                             rtol_of(dt), rtol_of(dt), what);
                snprintf(what, sizeof what, "%s row bias D %d", bn_dtype_name(dt), inner);
                expect_close(bn_mul(gy, gb), bn_mul(y, bias), rtol_of(dt), 0, what);
                /* a row start off the 16-byte boundary: the element walk */
                bn_tensor *xs = bn_narrow(x, 3, 1, inner - 1),
                          *gxs = bn_narrow(gx, 3, 1, inner - 1);
                snprintf(what, sizeof what, "%s unaligned permute D %d", bn_dtype_name(dt), inner);
                bnt_assert_equal(cpu(bn_contiguous(bn_transpose(gxs, 1, 2))),
                                 bn_contiguous(bn_transpose(xs, 1, 2)), what);
                bn_scope_end();
            }
        }
    });
}

/* ---- sums and means over outer and inner dims ------------------------------------------------- */
/* sum and mean of x over dims (positive inputs: the relative error is meaningful) */
static void check_sums(bn_shape s, const int *dims, int nd, bn_dtype dt, const char *name)
{
    bn_tensor *x = rand_in(s, 0.25, 1.75, dt), *gx = gpu(x);
    /* f16/bf16 results round once more than the CPU's f64 total may: one ulp, plus the inputs' own
     * rounding does not matter (both sides read the same values) */
    double r = dt == BN_F64 ? 1e-12 : dt == BN_F32 ? 2e-6 : dt == BN_F16 ? 1e-3 : 8e-3;
    char what[96];
    for (int keep = 0; keep < 2; keep++) {
        snprintf(what, sizeof what, "%s %s sum keepdim %d", name, bn_dtype_name(dt), keep);
        expect_close(bn_sum_dims(gx, dims, nd, keep), bn_sum_dims(x, dims, nd, keep), r, 0, what);
        snprintf(what, sizeof what, "%s %s mean keepdim %d", name, bn_dtype_name(dt), keep);
        expect_close(bn_mean_dims(gx, dims, nd, keep), bn_mean_dims(x, dims, nd, keep), r, 0, what);
    }
}

Test(cuda_paths, sums_over_outer_and_inner_dims_match_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < 4; k++) {
            bn_dtype dt = float_types[k];
            bn_scope_begin();
            int nhw[3] = {0, 2, 3}, d0[1] = {0}, d1[1] = {1}, last[1] = {-1}, d01[2] = {0, 1};
            int all4[4] = {0, 1, 2, 3}, d04[2] = {0, 4};
            check_sums(BN_SHAPE(64, 32, 26, 26), nhw, 3, dt, "conv bias (many parts)");
            check_sums(BN_SHAPE(3, 5, 11, 11), nhw, 3, dt, "conv bias (one part)");
            check_sums(BN_SHAPE(4099, 77), d0, 1, dt, "rows (columns kernel, parts)");
            check_sums(BN_SHAPE(9, 45), d0, 1, dt, "rows (columns kernel, one part)");
            check_sums(BN_SHAPE(37, 300), last, 1, dt, "last dim");
            check_sums(BN_SHAPE(2050, 121), last, 1, dt, "many short rows (a warp each)");
            check_sums(BN_SHAPE(9, 5000), last, 1, dt, "long rows (a block each)");
            check_sums(BN_SHAPE(4, 129, 33), d01, 2, dt, "leading dims");
            check_sums(BN_SHAPE(2, 3, 50, 70), all4, 4, dt, "everything");
            check_sums(BN_SHAPE(300001), d0, 1, dt, "one long vector (parts)");
            check_sums(BN_SHAPE(6, 2, 1, 3, 40), d04, 2, dt, "prefix and suffix with a 1");
            check_sums(BN_SHAPE(6, 5, 7), d1, 1, dt, "middle only (general kernel)");
            bn_scope_end();
        }
        bn_scope_begin(); /* a sliced (non-contiguous) x takes the general kernel */
        bn_tensor *x = rand_in(BN_SHAPE(40, 64), 0.25, 1.75, BN_F32);
        bn_tensor *xs = bn_slice(x, 1, 0, 64, 2), *gs = bn_slice(gpu(x), 1, 0, 64, 2);
        expect_close(bn_sum(gs, 0, false), bn_sum(xs, 0, false), 2e-6, 0, "sliced columns");
        bn_scope_end();
    });
}

Test(cuda_paths, bias_gradients_of_conv_and_linear_match_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        /* the sums autograd makes for broadcast adds: (N, C, H, W) + (1, C, 1, 1), (R, F) + (F) */
        bn_tensor *y = rand_in(BN_SHAPE(16, 8, 9, 9), -1, 1, BN_F32);
        bn_tensor *bias = rand_in(BN_SHAPE(1, 8, 1, 1), -1, 1, BN_F32);
        bn_tensor *gb = bn_clone(gpu(bias)), *cb = bn_clone(bias);
        cr_assert_eq(bn_set_requires_grad(gb, true), BN_OK);
        cr_assert_eq(bn_set_requires_grad(cb, true), BN_OK);
        bn_tensor *w = rand_in(BN_SHAPE(16, 8, 9, 9), -1, 1, BN_F32);
        cr_assert_eq(bn_backward(bn_sum(bn_mul(bn_add(gpu(y), gb), gpu(w)), BN_ALL, false)), BN_OK,
                     "%s", bn_error_message());
        cr_assert_eq(bn_backward(bn_sum(bn_mul(bn_add(y, cb), w), BN_ALL, false)), BN_OK, "%s",
                     bn_error_message());
        expect_close(bn_grad(gb), bn_grad(cb), 1e-5, 1e-6, "conv-style bias grad");
        bn_scope_end();
    });
}

/* ---- fused activation gradients --------------------------------------------------------------- */
Test(cuda_paths, activation_gradients_match_cpu)
{
    NEED_GPU();
    typedef bn_tensor *(*act_fn)(const bn_tensor *);
    static const act_fn ops[] = {bn_gelu, bn_gelu_tanh, bn_silu, bn_relu};
    static const char *const names[] = {"gelu", "gelu_tanh", "silu", "relu"};
    BNT_ASSERT_NO_LEAK({
        for (size_t k = 0; k < 4; k++) {
            for (int o = 0; o < 4; o++) {
                bn_scope_begin();
                bn_dtype dt = float_types[k];
                bn_tensor *x = rand_in(BN_SHAPE(33, 129), -4, 4, dt);
                bn_tensor *g = rand_in(BN_SHAPE(33, 129), -1, 1, dt);
                bn_tensor *gx = bn_clone(gpu(x)), *cx = bn_clone(x);
                cr_assert_eq(bn_set_requires_grad(gx, true), BN_OK);
                cr_assert_eq(bn_set_requires_grad(cx, true), BN_OK);
                bn_tensor *gy = ops[o](gx), *cy = ops[o](cx), *gg = NULL, *cg = NULL;
                bn_tensor *ggo = gpu(g);
                cr_assert_eq(bn_autograd_grad(&gy, &ggo, 1, &gx, 1, &gg, (bn_backward_opts){0}),
                             BN_OK, "%s", bn_error_message());
                cr_assert_eq(bn_autograd_grad(&cy, &g, 1, &cx, 1, &cg, (bn_backward_opts){0}),
                             BN_OK, "%s", bn_error_message());
                char what[64];
                snprintf(what, sizeof what, "%s backward %s", names[o], bn_dtype_name(dt));
                /* libm and CUDA's tanh/erf/exp differ by an ulp or two, which 1 - t^2 and
                 * Phi + x phi amplify near their zeros: an absolute term of 1e-6 at f32 */
                double r = dt == BN_F64   ? 1e-12
                           : dt == BN_F32 ? 1e-5
                           : dt == BN_F16 ? 2e-3
                                          : 1.6e-2;
                expect_close(gg, cg, r, dt == BN_F32 ? 1e-6 : r * 1e-2, what);
                bn_scope_end();
            }
        }
    });
}

/* ---- linear with the bias in the GEMM epilogue ------------------------------------------------ */
/* bn_linear(x, w, b) on the GPU (cuBLASLt's bias epilogue for a contiguous x) against the CPU and
 * against the GPU's matmul + add, with x 2-D and 3-D, w and b slices of larger tensors (rows at
 * an offset, as the GPT's q/k/v parts) and the gradients of all three. */
Test(cuda_paths, linear_with_bias_epilogue_matches_cpu)
{
    NEED_GPU();
    static const bn_dtype types[] = {BN_F32, BN_F16, BN_BF16};
    static const struct {
        int64_t lead, m, k, n, w0;
    } cases[] = {{1, 1, 1, 1, 0}, {1, 37, 65, 129, 0}, {2, 17, 64, 96, 8}, {1, 300, 256, 40, 3}};
    BNT_ASSERT_NO_LEAK({
        for (size_t t = 0; t < 3; t++) {
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                bn_scope_begin();
                bn_dtype dt = types[t];
                int64_t L = cases[c].lead, M = cases[c].m, K = cases[c].k, N = cases[c].n,
                        w0 = cases[c].w0;
                bn_tensor *x = rand_in(L > 1 ? BN_SHAPE(L, M, K) : BN_SHAPE(M, K), -1, 1, dt);
                bn_tensor *wb = rand_in(BN_SHAPE(N + w0 + 2, K), -0.5, 0.5, dt);
                bn_tensor *bb = rand_in(BN_SHAPE(N + w0 + 2), -1, 1, dt);
                bn_tensor *gx = bn_clone(gpu(x)), *gwb = bn_clone(gpu(wb)),
                          *gbb = bn_clone(gpu(bb));
                bn_tensor *cx = bn_clone(x), *cwb = bn_clone(wb), *cbb = bn_clone(bb);
                bn_tensor *leaves[6] = {gx, gwb, gbb, cx, cwb, cbb};
                for (int i = 0; i < 6; i++)
                    cr_assert_eq(bn_set_requires_grad(leaves[i], true), BN_OK);
                bn_tensor *gy = bn_linear(gx, bn_narrow(gwb, 0, w0, N), bn_narrow(gbb, 0, w0, N));
                bn_tensor *cy = bn_linear(cx, bn_narrow(cwb, 0, w0, N), bn_narrow(cbb, 0, w0, N));
                char what[96];
                snprintf(what, sizeof what, "linear %s case %zu", bn_dtype_name(dt), c);
                /* K-term sums: f32 as the matmul tests; f16/bf16 round the result once */
                double r = dt == BN_F32 ? 1e-5 : dt == BN_F16 ? 2e-3 : 1.6e-2;
                double a = dt == BN_F32 ? 1e-5 : dt == BN_F16 ? 2e-3 : 1.6e-2;
                expect_close(gy, cy, r, a, what);
                bn_tensor *unfused =
                    bn_add(bn_matmul(gpu(x), bn_transpose(bn_narrow(gpu(wb), 0, w0, N), 0, 1)),
                           bn_narrow(gpu(bb), 0, w0, N));
                snprintf(what, sizeof what, "linear %s case %zu vs matmul + add", bn_dtype_name(dt),
                         c);
                bnt_assert_close(cpu(gy), cpu(unfused), r, a, what);
                bn_tensor *g = rand_in(bn_shape_of(cy), -1, 1, dt);
                cr_assert_eq(bn_backward_ex(gy, (bn_backward_opts){.grad = gpu(g)}), BN_OK, "%s",
                             bn_error_message());
                cr_assert_eq(bn_backward_ex(cy, (bn_backward_opts){.grad = g}), BN_OK, "%s",
                             bn_error_message());
                for (int i = 0; i < 3; i++) {
                    snprintf(what, sizeof what, "linear %s case %zu grad %d", bn_dtype_name(dt), c,
                             i);
                    expect_close(bn_grad(leaves[i]), bn_grad(leaves[i + 3]), r,
                                 dt == BN_F32 ? 1e-4 : 4 * a, what);
                }
                bn_scope_end();
            }
        }
    });
}
