/* tests/common/bn_test.h — shared helpers for born's Criterion tests: PyTorch fixtures,
 * tensor comparisons, error checks and leak counting. */
#ifndef BORN_TEST_H
#define BORN_TEST_H

#include <criterion/criterion.h>

#include "born/ops.h"
#include "born/tensor.h"

/* ---- fixtures --------------------------------------------------------------------------------
 * tests/data/<name>.txt, written by scripts/gen_*.py with Debian's PyTorch:
 *   case <case-name>
 *   t <tensor-name> <dtype> <ndim> <dims...> : <values...>
 *   s <scalar-name> <value>
 * Values are decimal with 17 significant digits (exact for f64), or nan / inf / -inf. */
typedef struct fx_file fx_file;
fx_file *fx_open(const char *name); /* fails the test when the file is missing */
void fx_close(fx_file *f);
/* A new reference (not registered with any scope); fails the test when absent. */
bn_tensor *fx_tensor(fx_file *f, const char *case_name, const char *tensor_name);
double fx_scalar(fx_file *f, const char *case_name, const char *scalar_name);
int fx_has_case(fx_file *f, const char *case_name);
/* Iterate over case names: returns the i-th case name or NULL past the end. */
const char *fx_case_name(fx_file *f, int i);

/* A per-test pool: tensors handed to bnt_keep() are released by bnt_release_kept(), which a
 * suite's .fini calls, so fixture-heavy tests need no release bookkeeping. */
bn_tensor *bnt_keep(bn_tensor *t);
void bnt_release_kept(void);
/* Dtype names in bn_dtype order, for looping over fixture cases named by dtype. */
extern const char *const bnt_dtype_names[BN_DTYPE_COUNT];

/* ---- comparisons ------------------------------------------------------------------------------ */
/* Same shape and dtype; |got - want| <= atol + rtol*|want| elementwise; NaN matches NaN,
 * infinities must match exactly. `what` names the check in the failure message. */
void bnt_assert_close(const bn_tensor *got, const bn_tensor *want, double rtol, double atol,
                      const char *what);
/* Exact equality of shape, dtype and values. */
void bnt_assert_equal(const bn_tensor *got, const bn_tensor *want, const char *what);
/* Values only (shape must match), comparing against a C array of doubles. */
void bnt_assert_values(const bn_tensor *got, const double *want, int64_t n, double tol,
                       const char *what);
/* got against tensor `name` of `case_name` in f, with the expected dtype's default tolerance;
 * releases got. */
void bnt_expect_fixture(fx_file *f, const char *case_name, const char *name, bn_tensor *got);
/* Default tolerances for comparing with PyTorch in a given dtype. */
double bnt_rtol(bn_dtype dt);
double bnt_atol(bn_dtype dt);

/* ---- gradients ----------------------------------------------------------------------------------
 * Checks autograd against central finite differences in float64. fn computes an output from the
 * inputs (plain ops, owned by the open scope — bnt_gradcheck opens one around each call). The
 * inputs must be contiguous f64 leaves that require grad; fn may make views of them. The check
 * differentiates sum(fn(inputs) * W) for a fixed random W, so every output element counts. */
typedef bn_tensor *(*bnt_fn)(void *ctx, bn_tensor *const *inputs, int n);
void bnt_gradcheck(const char *what, bnt_fn fn, void *ctx, bn_tensor *const *inputs, int n);
/* The same with explicit step and tolerance (|analytic - numeric| <= tol * (1 + |numeric|)). */
void bnt_gradcheck_ex(const char *what, bnt_fn fn, void *ctx, bn_tensor *const *inputs, int n,
                      double eps, double tol);
/* A contiguous f64 leaf of the given shape with values uniform in [lo, hi) that requires grad
 * (new reference, not registered with a scope). */
bn_tensor *bnt_param(bn_shape s, double lo, double hi);

/* ---- errors -------------------------------------------------------------------------------- */
/* The current error has this code and its message contains every given substring (NULL ends
 * the list); clears the error afterwards. */
void bnt_assert_error(bn_status code, const char *substr, ...);
/* No error is pending. */
void bnt_assert_no_error(const char *what);

/* ---- the machine ------------------------------------------------------------------------------- */
/* The "flags" line of /proc/cpuinfo (x86), padded with spaces; NULL when there is none. Caller
 * frees. */
char *bnt_cpuinfo_flags(void);
/* word appears in text as a whole word (separated by spaces, newlines or the ends). */
bool bnt_has_word(const char *text, const char *word);

/* ---- the born command ----------------------------------------------------------------------------
 * Runs the binary named by $BORN_BIN (CTest sets it; the test is skipped without it) with the
 * given arguments and collects its exit code, stdout and stderr. */
typedef struct bnt_run_result {
    int exit_code;
    char *out, *err;
} bnt_run_result;
bnt_run_result bnt_run_born(const char *const *args); /* NULL-terminated */
#define BNT_RUN_BORN(...) bnt_run_born((const char *const[]){__VA_ARGS__, NULL})
void bnt_run_result_free(bnt_run_result *r);

/* ---- leaks ----------------------------------------------------------------------------------- */
/* Tensor headers alive now; compare before/after a block (LeakSanitizer checks the rest). */
long long bnt_live_tensors(void);

#define BNT_ASSERT_NO_LEAK(...)                                                                    \
    do {                                                                                           \
        long long bnt_before_ = bnt_live_tensors();                                                \
        __VA_ARGS__;                                                                               \
        cr_assert_eq(bnt_live_tensors(), bnt_before_, "leaked %lld tensor(s)",                     \
                     bnt_live_tensors() - bnt_before_);                                            \
    } while (0)

#endif
