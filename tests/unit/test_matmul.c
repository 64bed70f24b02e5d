/* tests/unit/test_matmul.c — bn_matmul: torch.matmul's shape rules, views, empty dims and every
 * dtype against PyTorch (tests/data/matmul.txt, made by scripts/gen_matmul.py), on every
 * instruction set (portable, AVX2, AVX-512 on x86-64; portable, NEON on aarch64) this CPU has;
 * the packed CPU kernels of each instruction set, f32 and f64, against the plain reference
 * kernel on larger random inputs; the same bits on 1 and 2 threads; and every error. */
#include "bn_test.h"

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/matmul_gemm.h"
#include "born/info.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */
/* The instruction sets this machine runs; bn_matmul picks the best unless BORN_GEMM_ISA names
 * another ("portable", "avx2", "avx512", "neon"). */
static int available_isas(bn_gemm_isa *isas)
{
    int n = 0;
    for (int i = 0; i < BN_GEMM_ISA_COUNT; i++)
        if (bn_gemm_isa_available((bn_gemm_isa)i)) isas[n++] = (bn_gemm_isa)i;
    return n;
}

static void use_isa(bn_gemm_isa isa)
{
    setenv("BORN_GEMM_ISA", bn_gemm_isa_name(isa), 1);
    cr_assert_eq(bn_gemm_best_isa(), isa);
}

/* How the C test makes an operand from the fixture, mirroring the Python script. */
typedef enum view_kind {
    PLAIN,        /* "a" / "b" as stored */
    TRANSPOSED,   /* "<x>_base" with its last two dims swapped */
    COLS_STEP2,   /* "a_base"[:, ::2] */
    ROWS_ODD,     /* "b_base"[1::2, :] */
    EXPAND_3x3x4, /* "a_base" (1, 3, 4) expanded to (3, 3, 4) */
    COLUMN1,      /* "a_base"[:, 1] */
    COLUMN2,      /* "b_base"[:, 2] */
} view_kind;

/* A new reference to operand `which` ("a" or "b") of case cs. */
static bn_tensor *load_operand(fx_file *f, const char *cs, const char *which, view_kind v)
{
    char base_name[16];
    snprintf(base_name, sizeof base_name, "%s_base", which);
    if (v == PLAIN) return fx_tensor(f, cs, which);
    bn_tensor *base = fx_tensor(f, cs, base_name), *view = NULL;
    switch (v) {
    case TRANSPOSED: view = bn_transpose(base, -1, -2); break;
    case COLS_STEP2: view = bn_slice(base, 1, 0, bn_dim(base, 1), 2); break;
    case ROWS_ODD: view = bn_slice(base, 0, 1, bn_dim(base, 0), 2); break;
    case EXPAND_3x3x4: view = bn_expand(base, BN_SHAPE(3, 3, 4)); break;
    case COLUMN1: view = bn_select(base, 1, 1); break;
    case COLUMN2: view = bn_select(base, 1, 2); break;
    default: break;
    }
    cr_assert_not_null(view, "%s: making the view of %s failed: %s", cs, base_name,
                       bn_error_message());
    cr_assert(v == EXPAND_3x3x4 || !bn_is_contiguous(view), "%s: %s should be a strided view", cs,
              base_name);
    bn_release(base);
    return view;
}

/* bn_matmul on case cs equals torch's "out": floats within tolerance (atol scaled by `scale`),
 * integers exactly. */
static void check_case_once(fx_file *f, const char *cs, view_kind va, view_kind vb, double scale)
{
    bn_tensor *a = load_operand(f, cs, "a", va);
    bn_tensor *b = load_operand(f, cs, "b", vb);
    bn_tensor *want = fx_tensor(f, cs, "out");
    bn_tensor *got = bn_matmul(a, b);
    cr_assert_not_null(got, "%s: %s", cs, bn_error_message());
    bn_dtype dt = bn_dtype_of(want);
    if (bn_dtype_is_float(dt))
        bnt_assert_close(got, want, bnt_rtol(dt), bnt_atol(dt) * scale, cs);
    else
        bnt_assert_equal(got, want, cs);
    bn_release(got);
    bn_release(want);
    bn_release(a);
    bn_release(b);
}

static void check_case(fx_file *f, const char *cs, view_kind va, view_kind vb, double scale)
{
    BNT_ASSERT_NO_LEAK(check_case_once(f, cs, va, vb, scale));
}

/* Runs check_case for every ISA. */
static void check_case_all_isas(fx_file *f, const char *cs, view_kind va, view_kind vb,
                                double scale)
{
    bn_gemm_isa isas[BN_GEMM_ISA_COUNT];
    int n = available_isas(isas);
    for (int i = 0; i < n; i++) {
        use_isa(isas[i]);
        check_case(f, cs, va, vb, scale);
    }
    unsetenv("BORN_GEMM_ISA");
}

/* ---- torch fixtures ------------------------------------------------------------------------- */
Test(matmul, follows_torch_shape_rules)
{
    fx_file *f = fx_open("matmul.txt");
    const char *cases[] = {"dot_1d",      "mm_2d",           "vec_mat",
                           "vec_batched", "mat_vec",         "batched_mat_vec",
                           "batched",     "broadcast_batch", "broadcast_mat_with_batch",
                           "one_by_one",  "outer_k1",        "broadcast_batch_with_mat"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case_all_isas(f, cases[i], PLAIN, PLAIN, 8);
    fx_close(f);
}

Test(matmul, result_shapes_drop_the_vector_dims)
{
    bn_scope_begin();
    bn_tensor *dot = bn_matmul(bn_ones(BN_SHAPE(3), BN_F32), bn_ones(BN_SHAPE(3), BN_F32));
    cr_assert_eq(bn_ndim(dot), 0);
    cr_assert_eq(bn_item(dot), 3.0);
    bn_shape s =
        bn_shape_of(bn_matmul(bn_ones(BN_SHAPE(4), BN_F32), bn_ones(BN_SHAPE(2, 1, 4, 5), BN_F32)));
    cr_assert(bn_shape_equal(s, BN_SHAPE(2, 1, 5)), "got %s", bn__sshape(s));
    s = bn_shape_of(
        bn_matmul(bn_ones(BN_SHAPE(2, 1, 3, 4), BN_F32), bn_ones(BN_SHAPE(5, 4, 6), BN_F32)));
    cr_assert(bn_shape_equal(s, BN_SHAPE(2, 5, 3, 6)), "got %s", bn__sshape(s));
    s = bn_shape_of(bn_matmul(bn_ones(BN_SHAPE(7, 3, 4), BN_F32), bn_ones(BN_SHAPE(4), BN_F32)));
    cr_assert(bn_shape_equal(s, BN_SHAPE(7, 3)), "got %s", bn__sshape(s));
    bn_scope_end();
}

Test(matmul, broadcasts_batch_dims)
{
    fx_file *f = fx_open("matmul.txt");
    check_case_all_isas(f, "broadcast_batch", PLAIN, PLAIN, 8);
    check_case_all_isas(f, "expanded_batch", EXPAND_3x3x4, PLAIN, 8);
    fx_close(f);
}

Test(matmul, reads_transposed_and_sliced_operands)
{
    fx_file *f = fx_open("matmul.txt");
    struct {
        const char *name;
        view_kind a, b;
    } cases[] = {
        {"transposed_a", TRANSPOSED, PLAIN},
        {"transposed_b", PLAIN, TRANSPOSED},
        {"transposed_both", TRANSPOSED, TRANSPOSED},
        {"batched_transposed", TRANSPOSED, TRANSPOSED},
        {"sliced", COLS_STEP2, ROWS_ODD},
        {"strided_vec_mat", COLUMN1, PLAIN},
        {"mat_strided_vec", PLAIN, COLUMN2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case_all_isas(f, cases[i].name, cases[i].a, cases[i].b, 8);
    fx_close(f);
}

Test(matmul, empty_dims_give_empty_or_zero_results)
{
    fx_file *f = fx_open("matmul.txt");
    const char *cases[] = {"empty_k",     "empty_m",   "empty_n",
                           "empty_batch", "empty_dot", "empty_k_batched"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(f, cases[i], PLAIN, PLAIN, 1);
    /* K = 0 in every dtype: zeros, not uninitialised memory */
    for (int dt = 0; dt < BN_DTYPE_COUNT; dt++) {
        if (dt == BN_BOOL) continue;
        bn_scope_begin();
        bn_tensor *c = bn_matmul(bn_full(BN_SHAPE(2, 0), 1, (bn_dtype)dt),
                                 bn_full(BN_SHAPE(0, 3), 1, (bn_dtype)dt));
        const double zeros[6] = {0};
        bnt_assert_values(c, zeros, 6, 0, bn_dtype_name((bn_dtype)dt));
        bn_scope_end();
    }
    fx_close(f);
}

Test(matmul, supports_every_numeric_dtype)
{
    fx_file *f = fx_open("matmul.txt");
    const char *floats[] = {"f64", "f16", "bf16"};
    for (int i = 0; i < 3; i++) {
        const char *shapes[] = {"mm", "batched", "dot"};
        char name[64];
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "%s_%s", floats[i], shapes[j]);
            check_case_all_isas(f, name, PLAIN, PLAIN, 8);
        }
        snprintf(name, sizeof name, "%s_transposed_b", floats[i]);
        check_case_all_isas(f, name, PLAIN, TRANSPOSED, 8);
    }
    /* the packed GEMM past one K block and one register tile */
    check_case_all_isas(f, "f64_blocked", PLAIN, PLAIN, 8);
    check_case_all_isas(f, "f64_blocked_transposed_b", PLAIN, TRANSPOSED, 8);
    const char *ints[] = {"i8", "u8", "i32", "i64"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s_mm", ints[i]);
        check_case(f, name, PLAIN, PLAIN, 0); /* sums wrap around like torch's */
        snprintf(name, sizeof name, "%s_batched_transposed", ints[i]);
        check_case(f, name, TRANSPOSED, PLAIN, 0);
    }
    fx_close(f);
}

/* bn_matmul on case cs is exactly torch's "out", on every ISA. */
static void check_case_exact_all_isas(fx_file *f, const char *cs, view_kind va, view_kind vb)
{
    bn_gemm_isa isas[BN_GEMM_ISA_COUNT];
    int n = available_isas(isas);
    for (int i = 0; i < n; i++) {
        use_isa(isas[i]);
        BNT_ASSERT_NO_LEAK({
            bn_tensor *a = load_operand(f, cs, "a", va);
            bn_tensor *b = load_operand(f, cs, "b", vb);
            bn_tensor *want = fx_tensor(f, cs, "out");
            bn_tensor *got = bn_matmul(a, b);
            cr_assert_not_null(got, "%s: %s", cs, bn_error_message());
            char what[96];
            snprintf(what, sizeof what, "%s (%s)", cs, bn_gemm_isa_name(isas[i]));
            bnt_assert_equal(got, want, what);
            bn_release(got);
            bn_release(want);
            bn_release(a);
            bn_release(b);
        });
    }
    unsetenv("BORN_GEMM_ISA");
}

Test(matmul, f16_and_bf16_accumulate_in_f32)
{
    fx_file *f = fx_open("matmul.txt");
    check_case_all_isas(f, "f16_wide_accumulation", PLAIN, PLAIN, 0); /* 0, not inf or nan */
    check_case_all_isas(f, "bf16_long_sum", PLAIN, PLAIN, 0);         /* 300, not 256 */
    /* exact f32 sums of 257 products through the packed path, each rounded once */
    check_case_exact_all_isas(f, "f16_blocked_transposed_b", PLAIN, TRANSPOSED);
    check_case_exact_all_isas(f, "bf16_blocked_transposed_b", PLAIN, TRANSPOSED);
    fx_close(f);
}

/* Every finite f16 and bf16 value is converted exactly while packing: A holds them all (every
 * other column of a wider tensor too, so that the strided conversion runs as well as the
 * contiguous one), B is the identity, and C must give them back bit for bit (each sum is x * 1
 * plus zeros; -0 comes back as +0, the sum starting from +0). */
static void identity_gives_back(bn_dtype dt, bool strided)
{
    enum { COLS = 256 };
    uint16_t exp_mask = dt == BN_F16 ? 0x7c00 : 0x7f80, one = dt == BN_F16 ? 0x3c00 : 0x3f80;
    int64_t rows = 65536 / COLS, step = strided ? 2 : 1, n = 0;
    uint16_t *base = calloc((size_t)(rows * COLS * step), sizeof(uint16_t));
    uint16_t *want = calloc((size_t)(rows * COLS), sizeof(uint16_t));
    uint16_t *eye = calloc(COLS * COLS, sizeof(uint16_t)), *got = calloc(65536, sizeof(uint16_t));
    cr_assert(base && want && eye && got);
    for (uint32_t v = 0; v < 65536; v++) {
        if ((v & exp_mask) == exp_mask) continue; /* inf, nan */
        base[n * step] = (uint16_t)v;
        want[n] = v == 0x8000 ? 0 : (uint16_t)v;
        n++;
    }
    for (int i = 0; i < COLS; i++) eye[i * COLS + i] = one;
    bn_scope_begin();
    bn_tensor *a = bn_from_data(base, BN_SHAPE(rows, COLS * step), dt);
    if (strided) a = bn_slice(a, 1, 0, COLS * step, 2);
    bn_tensor *c = bn_matmul(a, bn_from_data(eye, BN_SHAPE(COLS, COLS), dt));
    cr_assert_not_null(c, "%s", bn_error_message());
    cr_assert_eq(bn_copy_to_host(c, got, sizeof(uint16_t) * (size_t)(rows * COLS)), BN_OK);
    for (int64_t i = 0; i < rows * COLS; i++)
        cr_assert_eq(got[i], want[i], "%s%s: element %lld: got 0x%04x, want 0x%04x",
                     bn_dtype_name(dt), strided ? " strided" : "", (long long)i, got[i], want[i]);
    bn_scope_end();
    free(base);
    free(want);
    free(eye);
    free(got);
}

Test(matmul, packing_converts_every_finite_f16_and_bf16_value_exactly)
{
    bn_gemm_isa isas[BN_GEMM_ISA_COUNT];
    int n = available_isas(isas);
    for (int i = 0; i < n; i++) {
        use_isa(isas[i]);
        for (int s = 0; s < 2; s++) {
            identity_gives_back(BN_F16, s == 1);
            identity_gives_back(BN_BF16, s == 1);
        }
    }
    unsetenv("BORN_GEMM_ISA");
}

Test(matmul, large_values_and_nonfinite_inputs)
{
    fx_file *f = fx_open("matmul.txt");
    check_case_all_isas(f, "large_values", PLAIN, PLAIN, 1e31 / bnt_atol(BN_F32));
    check_case_all_isas(f, "nonfinite", PLAIN, PLAIN, 1);
    fx_close(f);
}

Test(matmul, odd_sizes_hit_edge_tiles_and_k_blocks)
{
    fx_file *f = fx_open("matmul.txt");
    /* quarter-step inputs: every sum is exact, so the result must match to the bit */
    check_case_all_isas(f, "large_67x129x70", PLAIN, PLAIN, 0);
    check_case_all_isas(f, "deep_k300", PLAIN, PLAIN, 0);
    fx_close(f);
}

/* ---- fast kernels against the reference ----------------------------------------------------- */
/* out = a @ b through the backend slot with isa, or through the reference kernel when isa < 0.
 * a and b have the same ndim and (possibly 0-stride) batch dims. */
static bn_tensor *kernel_matmul(int isa, const bn_tensor *a, const bn_tensor *b)
{
    int nd = a->ndim;
    int64_t shape[BN_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[nd - 1] = b->shape[nd - 1];
    bn_tensor *out = bn__empty(shape, nd, a->dtype, bn_cpu());
    bn_tview av = bn__tview(a), bv = bn__tview(b), ov = bn__tview(out);
    bn_status st = isa < 0 ? bn_cpu_matmul_reference(&av, &bv, &ov)
                           : bn_cpu_matmul_isa((bn_gemm_isa)isa, &av, &bv, &ov);
    cr_assert_eq(st, BN_OK, "%s", bn_error_message());
    return out;
}

/* A random (rows, cols) operand of dtype dt (batch > 0 adds a leading batch dim), stored
 * transposed when `transposed` (a strided view). Registered with the open scope. */
static bn_tensor *random_operand(int64_t batch, int64_t rows, int64_t cols, bool transposed,
                                 bn_dtype dt)
{
    bn_shape s = transposed ? BN_SHAPE(batch, cols, rows) : BN_SHAPE(batch, rows, cols);
    if (batch == 0) s = transposed ? BN_SHAPE(cols, rows) : BN_SHAPE(rows, cols);
    bn_tensor *t =
        bn_dtype_is_int(dt) ? bn_randint(-50, 50, s, dt) : bn_to_dtype(bn_randn(s, BN_F32), dt);
    return transposed ? bn_transpose(t, -1, -2) : t;
}

typedef struct kcase {
    int64_t batch, M, N, K;
    bool ta, tb;
} kcase;

static const kcase kernel_cases[] = {
    {0, 150, 170, 300, false, false}, /* several M blocks, two K blocks, N edge tile */
    {0, 150, 170, 300, true, false},  {0, 150, 170, 300, false, true},
    {0, 67, 70, 129, true, true},     {0, 7, 2100, 5, false, false}, /* two N blocks */
    {0, 1, 1100, 300, false, false}, /* one row, B row-major: axpy */
    {0, 1, 37, 300, false, true},    /* one row, B transposed: dot products */
    {0, 300, 1, 77, false, false},   /* one column: dots over A's rows */
    {0, 300, 1, 77, true, false},    /* one column, A transposed: axpy */
    {0, 1, 1, 1000, false, false},   /* dot */
    {0, 3, 2, 1, false, true},       /* K = 1 */
    {5, 20, 30, 40, false, true},    /* batched */
    {9, 2, 50, 3, true, false},      /* many thin products */
    {0, 700, 45, 270, false, true},  /* several 224-row M blocks of the AVX-512 kernel */
    {0, 29, 4200, 9, true, false},   /* three 2048-column N blocks (AVX-512, AVX2) */
    {0, 9, 2090, 530, false, false}, /* one M block, threads own their B panels: 2 N, 3 K blocks */
};

/* Every kernel case in dtype dt through each of the n ISAs against the reference kernel, which
 * runs once per case (it is slow, and slower still under an emulator). */
static void compare_with_reference(const bn_gemm_isa *isas, int n, bn_dtype dt)
{
    for (size_t i = 0; i < sizeof kernel_cases / sizeof kernel_cases[0]; i++) {
        const kcase *c = &kernel_cases[i];
        bn_scope_begin();
        bn_tensor *a = random_operand(c->batch, c->M, c->K, c->ta, dt);
        bn_tensor *b = random_operand(c->batch, c->K, c->N, c->tb, dt);
        bn_tensor *want = kernel_matmul(-1, a, b);
        for (int j = 0; j < n; j++) {
            bn_tensor *got = kernel_matmul(isas[j], a, b);
            char what[128];
            snprintf(what, sizeof what, "%s %s case %zu [%lld, %lld, %lld]",
                     bn_gemm_isa_name(isas[j]), bn_dtype_name(dt), i, (long long)c->M,
                     (long long)c->N, (long long)c->K);
            /* The portable kernels round like the reference (ISO C mode does not contract
             * a * b + c into an FMA); AVX2, AVX-512 and NEON fuse each multiply-add. The thin
             * f64 products (one row or one column) use a row kernel that rounds like the
             * reference too. */
            bool thin_f64 = dt == BN_F64 && (c->M == 1 || c->N == 1);
            bool exact = !bn_dtype_is_float(dt) || isas[j] == BN_GEMM_PORTABLE || thin_f64;
            if (exact) {
                bnt_assert_equal(got, want, what);
            } else {
                double tol = dt == BN_F32 ? 1e-5 : bnt_rtol(dt);
                bnt_assert_close(got, want, tol, tol * 10, what);
            }
            bn_release(got);
        }
        bn_release(want);
        bn_scope_end();
    }
}

Test(matmul, kernels_match_the_reference_for_every_isa)
{
    bn_gemm_isa isas[BN_GEMM_ISA_COUNT];
    int n = available_isas(isas);
    cr_assert(n >= 1 && isas[0] == BN_GEMM_PORTABLE, "the portable kernels are always there");
    bn_manual_seed(7);
    const bn_dtype dts[] = {BN_F32, BN_F16, BN_BF16, BN_F64};
    for (int d = 0; d < 4; d++) compare_with_reference(isas, n, dts[d]);
}

/* AVX2 and AVX-512 both fuse every multiply-add and add the K products in order: whatever their
 * tiles and blocks, they give the same bits, in f32 and in f64. */
Test(matmul, avx2_and_avx512_kernels_give_the_same_bits)
{
    if (!bn_gemm_isa_available(BN_GEMM_AVX512)) cr_skip("this CPU has no AVX-512");
    bn_manual_seed(11);
    const bn_dtype dts[] = {BN_F32, BN_F64};
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof kernel_cases / sizeof kernel_cases[0]; i++) {
            const kcase *c = &kernel_cases[i];
            bn_scope_begin();
            bn_tensor *a = random_operand(c->batch, c->M, c->K, c->ta, dts[d]);
            bn_tensor *b = random_operand(c->batch, c->K, c->N, c->tb, dts[d]);
            bn_tensor *x = kernel_matmul(BN_GEMM_AVX2, a, b);
            bn_tensor *y = kernel_matmul(BN_GEMM_AVX512, a, b);
            char what[64];
            snprintf(what, sizeof what, "%s case %zu", bn_dtype_name(dts[d]), i);
            bnt_assert_equal(y, x, what);
            bn_release(x);
            bn_release(y);
            bn_scope_end();
        }
}

Test(matmul, gemm_isa_environment_variable_caps_the_choice)
{
    bn_gemm_isa isas[BN_GEMM_ISA_COUNT];
    int n = available_isas(isas);
    unsetenv("BORN_GEMM_ISA");
    cr_assert_eq(bn_gemm_best_isa(), isas[n - 1], "unset: the best available");
    setenv("BORN_GEMM_ISA", "no-such-isa", 1);
    cr_assert_eq(bn_gemm_best_isa(), isas[n - 1], "unknown name: the best available");
    for (int i = 0; i < n; i++) {
        setenv("BORN_GEMM_ISA", bn_gemm_isa_name(isas[i]), 1);
        cr_assert_eq(bn_gemm_best_isa(), isas[i], "%s", bn_gemm_isa_name(isas[i]));
    }
    unsetenv("BORN_GEMM_ISA");
    cr_assert_str_eq(bn_gemm_isa_name(BN_GEMM_AVX512), "avx512");
}

Test(matmul, integer_kernels_match_the_reference)
{
    bn_manual_seed(8);
    const bn_gemm_isa best = bn_gemm_best_isa();
    const bn_dtype dts[] = {BN_I8, BN_U8, BN_I32, BN_I64};
    for (int d = 0; d < 4; d++) compare_with_reference(&best, 1, dts[d]);
}

Test(matmul, kernel_writes_a_strided_out)
{
    /* out (M, N) as a transposed view of an (N, M) buffer: column stride M */
    bn_gemm_isa isas[BN_GEMM_ISA_COUNT];
    int n = available_isas(isas);
    const bn_dtype dts[] = {BN_F32, BN_BF16, BN_F64, BN_I32};
    bn_manual_seed(9);
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 4; d++) {
            bn_scope_begin();
            bn_tensor *a = random_operand(0, 13, 40, false, dts[d]);
            bn_tensor *b = random_operand(0, 40, 21, true, dts[d]);
            bn_tensor *want = kernel_matmul(-1, a, b);
            bn_tensor *buf = bn_zeros(BN_SHAPE(21, 13), dts[d]);
            bn_tensor *out = bn_transpose(buf, 0, 1);
            bn_tview av = bn__tview(a), bv = bn__tview(b), ov = bn__tview(out);
            cr_assert_eq(bn_cpu_matmul_isa(isas[i], &av, &bv, &ov), BN_OK);
            double tol = bn_dtype_is_float(dts[d]) ? 1e-2 : 0;
            bnt_assert_close(out, want, tol, tol, bn_dtype_name(dts[d]));
            bn_release(want);
            bn_scope_end();
        }
}

/* ---- threads -------------------------------------------------------------------------------- */
Test(matmul, same_bits_on_1_and_2_threads)
{
    struct {
        bn_shape a, b;
        bn_dtype dt;
        bool tb;
    } cases[] = {
        {BN_SHAPE(150, 300), BN_SHAPE(300, 170), BN_F32, false},
        {BN_SHAPE(150, 300), BN_SHAPE(170, 300), BN_F32, true},
        {BN_SHAPE(5, 300), BN_SHAPE(300, 2000), BN_F32, false},  /* M < threads: N is split */
        {BN_SHAPE(500, 600), BN_SHAPE(600, 70), BN_F32, false},  /* M and K blocks */
        {BN_SHAPE(20, 600), BN_SHAPE(600, 2100), BN_F32, false}, /* one M block, N and K blocks */
        {BN_SHAPE(1, 700), BN_SHAPE(700, 600), BN_F32, false},   /* one row */
        {BN_SHAPE(1, 700), BN_SHAPE(600, 700), BN_F32, true},
        {BN_SHAPE(64, 16, 24), BN_SHAPE(64, 24, 20), BN_F32, false}, /* one matrix per thread */
        {BN_SHAPE(3, 90, 200), BN_SHAPE(200, 80), BN_BF16, false},
        {BN_SHAPE(100, 200), BN_SHAPE(200, 90), BN_F64, false},
        {BN_SHAPE(500, 600), BN_SHAPE(600, 70), BN_F64, false}, /* f64: M and K blocks */
        {BN_SHAPE(20, 300), BN_SHAPE(2100, 300), BN_F64, true}, /* f64: one M block, N blocks */
        {BN_SHAPE(5, 300), BN_SHAPE(300, 2000), BN_F64, false}, /* f64: M < threads */
        {BN_SHAPE(100, 200), BN_SHAPE(90, 200), BN_I32, true},
    };
    bn_manual_seed(11);
    int saved = bn_num_threads();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_scope_begin();
        bn_tensor *a = bn_randn(cases[i].a, BN_F32), *b = bn_randn(cases[i].b, BN_F32);
        if (cases[i].dt == BN_I32) {
            a = bn_randint(-1000, 1000, cases[i].a, BN_I32);
            b = bn_randint(-1000, 1000, cases[i].b, BN_I32);
        } else {
            a = bn_to_dtype(a, cases[i].dt);
            b = bn_to_dtype(b, cases[i].dt);
        }
        if (cases[i].tb) b = bn_transpose(b, -1, -2);
        cr_assert_eq(bn_set_num_threads(1), BN_OK);
        bn_tensor *one = bn_matmul(a, b);
        cr_assert_eq(bn_set_num_threads(2), BN_OK);
        bn_tensor *two = bn_matmul(a, b);
        char what[32];
        snprintf(what, sizeof what, "case %zu", i);
        bnt_assert_equal(two, one, what);
        bn_scope_end();
    }
    bn_set_num_threads(saved);
}

/* ---- ownership ------------------------------------------------------------------------------ */
static void scoped_product(void)
{
    bn_scope_begin();
    bn_tensor *a = bn_ones(BN_SHAPE(2, 3), BN_F32);
    bn_tensor *b = bn_transpose(bn_ones(BN_SHAPE(4, 3), BN_F32), 0, 1);
    bn_tensor *c = bn_matmul(a, b);
    cr_assert(bn_is_contiguous(c));
    cr_assert_eq(bn_dtype_of(c), BN_F32);
    const double threes[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    bnt_assert_values(c, threes, 8, 0, "ones @ ones");
    bn_scope_end();
}

Test(matmul, returns_a_new_contiguous_tensor_owned_by_the_scope)
{
    BNT_ASSERT_NO_LEAK(scoped_product());
}

/* ---- errors --------------------------------------------------------------------------------- */
Test(matmul, rejects_null_arguments)
{
    BNT_ASSERT_NO_LEAK({
        bn_tensor *t = bn_ones(BN_SHAPE(2, 2), BN_F32);
        cr_assert_null(bn_matmul(NULL, t));
        bnt_assert_error(BN_ERR_ARG, "bn_matmul", "a", "NULL", NULL);
        cr_assert_null(bn_matmul(t, NULL));
        bnt_assert_error(BN_ERR_ARG, "bn_matmul", "b", "NULL", NULL);
        bn_release(t);
    });
}

Test(matmul, keeps_the_first_error_in_a_chain)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *bad = bn_matmul(bn_ones(BN_SHAPE(2, 3), BN_F32), bn_ones(BN_SHAPE(4), BN_F32));
        cr_assert_null(bn_matmul(bad, bn_ones(BN_SHAPE(2, 2), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul: inner dimensions differ", "[2, 3]", "[4]", NULL);
        bn_scope_end();
    });
}

Test(matmul, rejects_0d_inputs)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_null(bn_matmul(bn_scalar(1, BN_F32), bn_ones(BN_SHAPE(2, 2), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul", "at least 1 dim", "a is 0-D", "b is 2-D",
                         "[2, 2]", NULL);
        cr_assert_null(bn_matmul(bn_ones(BN_SHAPE(2), BN_F32), bn_scalar(1, BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul", "a is 1-D [2]", "b is 0-D []", NULL);
        bn_scope_end();
    });
}

Test(matmul, rejects_inner_dimension_mismatch)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_null(bn_matmul(bn_ones(BN_SHAPE(2, 3), BN_F32), bn_ones(BN_SHAPE(4, 5), BN_F32)));
        cr_assert_eq(bn_error_code(), BN_ERR_SHAPE);
        cr_assert_str_eq(bn_error_message(),
                         "bn_matmul: inner dimensions differ: a is [2, 3], b is [4, 5] (3 != 4)");
        bn_error_clear();
        cr_assert_null(bn_matmul(bn_ones(BN_SHAPE(3), BN_F32), bn_ones(BN_SHAPE(4), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "inner dimensions differ", "a is [3], b is [4] (3 != 4)",
                         NULL);
        cr_assert_null(bn_matmul(bn_ones(BN_SHAPE(5, 2, 3), BN_F32), bn_ones(BN_SHAPE(2), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "a is [5, 2, 3], b is [2] (3 != 2)", NULL);
        bn_scope_end();
    });
}

Test(matmul, rejects_batch_dims_that_do_not_broadcast)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_null(
            bn_matmul(bn_ones(BN_SHAPE(2, 2, 3), BN_F32), bn_ones(BN_SHAPE(3, 3, 4), BN_F32)));
        bnt_assert_error(BN_ERR_SHAPE, "bn_matmul", "batch dimensions do not broadcast",
                         "a is [2, 2, 3]", "b is [3, 3, 4]", "2 vs 3", NULL);
        bn_scope_end();
    });
}

Test(matmul, rejects_mixed_dtypes)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_null(bn_matmul(bn_ones(BN_SHAPE(2, 3), BN_F32), bn_ones(BN_SHAPE(3, 2), BN_F64)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_matmul", "a is f32", "b is f64", NULL);
        cr_assert_null(bn_matmul(bn_ones(BN_SHAPE(3), BN_I32), bn_ones(BN_SHAPE(3), BN_I64)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_matmul", "a is i32", "b is i64", NULL);
        bn_scope_end();
    });
}

Test(matmul, rejects_bool)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_null(
            bn_matmul(bn_ones(BN_SHAPE(2, 3), BN_BOOL), bn_ones(BN_SHAPE(3, 2), BN_BOOL)));
        bnt_assert_error(BN_ERR_DTYPE, "bn_matmul", "bool", NULL);
        bn_scope_end();
    });
}

Test(matmul, kernel_refuses_bool_and_missing_isa)
{
    bn_scope_begin();
    bn_tensor *a = bn_ones(BN_SHAPE(2, 2), BN_BOOL), *o = bn_empty(BN_SHAPE(2, 2), BN_BOOL);
    bn_tview av = bn__tview(a), ov = bn__tview(o);
    cr_assert_eq(bn_cpu_matmul(&av, &av, &ov), BN_ERR_UNSUPPORTED);
    bnt_assert_error(BN_ERR_UNSUPPORTED, "bn_cpu_matmul", "bool", NULL);
    bn_scope_end();
    for (int isa = BN_GEMM_AVX2; isa < BN_GEMM_ISA_COUNT; isa++) {
        if (bn_gemm_isa_available((bn_gemm_isa)isa)) continue;
        bn_scope_begin();
        bn_tensor *f = bn_ones(BN_SHAPE(2, 2), BN_F32), *g = bn_empty(BN_SHAPE(2, 2), BN_F32);
        bn_tview fv = bn__tview(f), gv = bn__tview(g);
        cr_assert_eq(bn_cpu_matmul_isa((bn_gemm_isa)isa, &fv, &fv, &gv), BN_ERR_UNSUPPORTED);
        bnt_assert_error(BN_ERR_UNSUPPORTED, bn_gemm_isa_name((bn_gemm_isa)isa), "not available",
                         NULL);
        bn_scope_end();
    }
}
