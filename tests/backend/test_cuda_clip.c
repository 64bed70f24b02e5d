/* tests/backend/test_cuda_clip.c — gradient clipping by norm on the GPU (the CUDA plugin's
 * grad_norm / scale_grads entries of backend_optim.h through bn_clip_grad_norm and
 * bn_clip_grad_norm_async) against the same clipping on the CPU: every float dtype, norm types 1,
 * 2, 3, 0.5 and inf, mixed sizes (empty, one element, several chunks) and more arrays than one
 * launch takes; owned gradients scaled in place, shared ones replaced; the total bit for bit
 * the same on every run (deterministic reduction); NaN; the async result on the GPU; gradients
 * on two devices. Without a GPU (or the plugin) every test skips.
 * Tolerances: norm rel 1e-12; gradients f64 1e-12, f32 1e-6, f16/bf16 one unit in the last
 * place. */
#include "bn_test.h"
#include "bn_test_cuda.h"

#include "born/autograd.h"
#include "born/cuda.h"
#include "born/optim.h"
#include "core/internal.h"

#include <math.h>
#include <string.h>

static void fini(void) { bnt_release_kept(); }
TestSuite(cuda_clip, .fini = fini);


static const double norm_types[] = {1, 2, 3, 0.5, INFINITY};
#define NTYPES ((int)(sizeof norm_types / sizeof norm_types[0]))
static const bn_dtype dtypes[] = {BN_F32, BN_F64, BN_F16, BN_BF16};

static double grad_rtol(bn_dtype dt)
{
    return dt == BN_F64 ? 1e-12 : dt == BN_F32 ? 1e-6 : dt == BN_F16 ? 1e-3 : 8e-3;
}

/* Gives p a gradient equal to values (p's dtype and device) that p alone owns. */
static void own_grad(bn_tensor *p, const bn_tensor *values)
{
    bn_scope_begin();
    bn_tensor *v = bn_tensor_to(bn_to_dtype(values, p->dtype), bn_device_of(p));
    cr_assert_eq(bn_set_grad(p, bn_clone(v)), BN_OK, "%s", bn_error_message());
    bn_scope_end();
    cr_assert_eq(p->grad->refcount, 1);
}

/* n parameters of the given sizes on the CPU (pc) and on the GPU (pg), with equal owned
 * gradients (vals, on the CPU) */
static void make_params(bn_dtype dt, const int64_t *sizes, int n, bn_tensor **pc, bn_tensor **pg,
                        bn_tensor **vals)
{
    for (int i = 0; i < n; i++) {
        vals[i] = bn_to_dtype(bn_randn(BN_SHAPE(sizes[i]), BN_F64), dt);
        pc[i] = bn_zeros(BN_SHAPE(sizes[i]), dt);
        pg[i] = gpu(pc[i]);
        own_grad(pc[i], vals[i]);
        own_grad(pg[i], vals[i]);
    }
}

static void expect_rel(double got, double want, double rtol, const char *what, double p)
{
    cr_assert(fabs(got - want) <= rtol * fabs(want) || (isnan(got) && isnan(want)),
              "%s (norm_type %g): %.17g on the GPU, %.17g on the CPU", what, p, got, want);
}

#define MIX_N 8
static const int64_t mix_sizes[MIX_N] = {300, 0, 70001, 7, 16384, 1, 1000000, 16385};

Test(cuda_clip, fused_clipping_matches_the_cpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int d = 0; d < 4; d++)
            for (int t = 0; t < NTYPES; t++)
                for (int clip = 0; clip < 2; clip++) {
                    bn_manual_seed(40 + (uint64_t)(d * 10 + t));
                    bn_scope_begin();
                    double p = norm_types[t];
                    bn_tensor *pc[MIX_N], *pg[MIX_N], *vals[MIX_N], *before[MIX_N];
                    make_params(dtypes[d], mix_sizes, MIX_N, pc, pg, vals);
                    for (int i = 0; i < MIX_N; i++) before[i] = pg[i]->grad;
                    double max_norm = clip ? 0.5 : 1e30;
                    double nc = bn_clip_grad_norm(pc, MIX_N, max_norm, p);
                    double ng = bn_clip_grad_norm(pg, MIX_N, max_norm, p);
                    cr_assert_geq(ng, 0, "%s", bn_error_message());
                    expect_rel(ng, nc, 1e-12, bn_dtype_name(dtypes[d]), p);
                    for (int i = 0; i < MIX_N; i++) {
                        cr_assert_eq(pg[i]->grad, before[i], "params[%d] was not scaled in place",
                                     i);
                        cr_assert_eq(bn_device_of(pg[i]->grad).type, BN_DEVICE_CUDA);
                        bnt_assert_close(cpu(pg[i]->grad), pc[i]->grad, grad_rtol(dtypes[d]), 0,
                                         "clipped gradient");
                    }
                    bn_scope_end();
                }
    });
}

Test(cuda_clip, more_arrays_than_one_launch_takes)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        enum { N = 300 }; /* 128 per launch: three launches, some arrays empty */
        int64_t sizes[N];
        for (int i = 0; i < N; i++) sizes[i] = i % 7 == 3 ? 0 : 1 + (i * 7919) % 20000;
        for (int t = 0; t < NTYPES; t++) {
            bn_manual_seed(90 + (uint64_t)t);
            bn_scope_begin();
            bn_tensor *pc[N], *pg[N], *vals[N];
            make_params(BN_F32, sizes, N, pc, pg, vals);
            double nc = bn_clip_grad_norm(pc, N, 1.0, norm_types[t]);
            double ng = bn_clip_grad_norm(pg, N, 1.0, norm_types[t]);
            expect_rel(ng, nc, 1e-12, "300 arrays", norm_types[t]);
            for (int i = 0; i < N; i++)
                bnt_assert_close(cpu(pg[i]->grad), pc[i]->grad, 1e-6, 0, "clipped gradient");
            bn_scope_end();
        }
    });
}

Test(cuda_clip, the_total_is_the_same_bits_on_every_run)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_manual_seed(3);
        bn_scope_begin();
        const int64_t sizes[] = {5000000, 3, 123457};
        bn_tensor *pc[3], *pg[3], *vals[3];
        make_params(BN_F32, sizes, 3, pc, pg, vals);
        for (int t = 0; t < NTYPES; t++) {
            double first = 0;
            for (int r = 0; r < 5; r++) {
                bn_tensor *n = bn_clip_grad_norm_async(pg, 3, 1e30, norm_types[t]);
                cr_assert_not_null(n, "%s", bn_error_message());
                double v = bn_item(n);
                if (r == 0) first = v;
                cr_assert_eq(memcmp(&v, &first, sizeof v), 0, "run %d: %.17g, first %.17g", r, v,
                             first);
            }
        }
        bn_scope_end();
    });
}

Test(cuda_clip, async_returns_the_norm_on_the_gpu)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        for (int d = 0; d < 4; d++)
            for (int t = 0; t < NTYPES; t++) {
                bn_manual_seed(60 + (uint64_t)(d * 10 + t));
                bn_scope_begin();
                bn_tensor *pc[MIX_N], *pg[MIX_N], *vals[MIX_N];
                make_params(dtypes[d], mix_sizes, MIX_N, pc, pg, vals);
                double nc = bn_clip_grad_norm(pc, MIX_N, 0.25, norm_types[t]);
                bn_tensor *n = bn_clip_grad_norm_async(pg, MIX_N, 0.25, norm_types[t]);
                cr_assert_not_null(n, "%s", bn_error_message());
                cr_assert_eq(bn_device_of(n).type, BN_DEVICE_CUDA);
                cr_assert_eq(bn_dtype_of(n), BN_F64);
                cr_assert_eq(bn_ndim(n), 0);
                expect_rel(bn_item(n), nc, 1e-12, "async", norm_types[t]);
                for (int i = 0; i < MIX_N; i++)
                    bnt_assert_close(cpu(pg[i]->grad), pc[i]->grad, grad_rtol(dtypes[d]), 0,
                                     "clipped gradient");
                bn_scope_end();
            }
    });
}

Test(cuda_clip, shared_gradients_are_replaced_and_nan_spreads)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = gpu(bn_zeros(BN_SHAPE(2), BN_F32)), *b = gpu(bn_zeros(BN_SHAPE(1), BN_F32));
        bn_tensor *held = gpu(bn_from_data((float[]){3, 4}, BN_SHAPE(2), BN_F32));
        bn_set_grad(a, held);
        own_grad(b, bn_from_data((float[]){12}, BN_SHAPE(1), BN_F32));
        bn_tensor *gb = b->grad;
        double norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 6.5, 2);
        cr_assert_float_eq(norm, 13.0, 1e-9, "%s", bn_error_message());
        double coef = 6.5 / (13.0 + 1e-6);
        cr_assert_eq(b->grad, gb, "owned: in place");
        cr_assert_neq(a->grad, held, "shared: replaced");
        bnt_assert_values(cpu(a->grad), (double[]){3 * coef, 4 * coef}, 2, 1e-6, "a clipped");
        bnt_assert_values(cpu(b->grad), (double[]){12 * coef}, 1, 1e-6, "b clipped");
        bnt_assert_values(cpu(held), (double[]){3, 4}, 2, 0, "the caller's tensor is untouched");
        for (int t = 0; t < NTYPES; t++) {
            own_grad(a, bn_from_data((float[]){1, NAN}, BN_SHAPE(2), BN_F32));
            own_grad(b, bn_from_data((float[]){100}, BN_SHAPE(1), BN_F32));
            norm = bn_clip_grad_norm((bn_tensor *[]){a, b}, 2, 1.0, norm_types[t]);
            cr_assert(isnan(norm), "norm_type %g: %g", norm_types[t], norm);
            cr_assert(isnan(bn_item(b->grad)), "b's gradient became NaN");
        }
        bn_scope_end();
    });
}

Test(cuda_clip, gradients_on_two_devices_take_the_composed_path)
{
    NEED_GPU();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *a = bn_zeros(BN_SHAPE(2), BN_F32), *b = gpu(bn_zeros(BN_SHAPE(1), BN_F32));
        own_grad(a, bn_from_data((float[]){3, 4}, BN_SHAPE(2), BN_F32));
        own_grad(b, bn_from_data((float[]){12}, BN_SHAPE(1), BN_F32));
        bn_tensor *n = bn_clip_grad_norm_async((bn_tensor *[]){b, a}, 2, 6.5, 2);
        cr_assert_not_null(n, "%s", bn_error_message());
        cr_assert_eq(bn_device_of(n).type, BN_DEVICE_CUDA, "on the first gradient's device");
        cr_assert_float_eq(bn_item(n), 13.0, 1e-12);
        double coef = 6.5 / (13.0 + 1e-6);
        bnt_assert_values(a->grad, (double[]){3 * coef, 4 * coef}, 2, 1e-6, "a clipped");
        bnt_assert_values(cpu(b->grad), (double[]){12 * coef}, 1, 1e-6, "b clipped");
        cr_assert_eq(bn_device_of(b->grad).type, BN_DEVICE_CUDA);
        bn_scope_end();
    });
}
