/* tests/unit/test_print.c — bn_to_string / bn_print / bn_fprint against PyTorch's repr().
 * Fixtures: tests/data/print.txt, made by scripts/gen_print.py (/usr/bin/python3). Each case holds
 * the input x, optionally a view code (mirrored by apply_view below) and a requires_grad flag,
 * and torch's repr on an "r" line with newlines escaped as \n. */
#include "bn_test.h"

#include "core/internal.h"

#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the "r" lines, which fx_* does not read ----------------------------------------------- */
typedef struct repr_case {
    char name[128];
    int view;
    bool requires_grad;
    char *repr; /* unescaped */
} repr_case;

static char *unescape(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    cr_assert_not_null(out);
    for (; *s; s++) {
        if (*s == '\\' && s[1] == 'n') {
            *o++ = '\n';
            s++;
        } else if (*s == '\\' && s[1] == '\\') {
            *o++ = '\\';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* Reads every case of print.txt; returns how many (cases[] must hold max). */
static int read_repr_cases(repr_case *cases, int max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/print.txt", BORN_TEST_DATA_DIR);
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s is missing: run /usr/bin/python3 scripts/gen_print.py", path);
    static char line[1 << 16];
    int n = -1;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "case ", 5)) {
            cr_assert_lt(++n, max, "print.txt has more than %d cases", max);
            cases[n] = (repr_case){0};
            snprintf(cases[n].name, sizeof cases[n].name, "%.127s", line + 5);
        } else if (n >= 0 && !strncmp(line, "s view ", 7)) {
            cases[n].view = atoi(line + 7);
        } else if (n >= 0 && !strncmp(line, "s requires_grad ", 16)) {
            cases[n].requires_grad = atof(line + 16) != 0;
        } else if (n >= 0 && !strncmp(line, "r ", 2)) {
            cases[n].repr = unescape(line + 2);
        }
    }
    fclose(fp);
    return n + 1;
}

/* The view gen_print.py applied before printing (a new reference). */
static bn_tensor *apply_view(bn_tensor *x, int view)
{
    bn_tensor *v = NULL, *t = NULL;
    bn_scope_begin();
    switch (view) {
    case 0: v = x; break;
    case 1: v = bn_transpose(x, 0, 1); break;
    case 2: v = bn_slice(x, -1, 0, bn_dim(x, -1), 2); break;
    case 3: {
        bn_shape s = bn_shape_of(x);
        s.dims[0] = 4;
        v = bn_expand(x, s);
        break;
    }
    case 4:
        t = bn_transpose(x, 0, 1);
        v = bn_slice(t, -1, 0, bn_dim(t, -1), 2);
        break;
    default: cr_assert_fail("unknown view code %d", view);
    }
    cr_assert_not_null(v, "view %d failed: %s", view, bn_error_message());
    bn_retain(v);
    bn_scope_end();
    return v;
}

Test(print, matches_torch_repr_for_every_fixture_case)
{
    enum { MAX_CASES = 200 };
    static repr_case cases[MAX_CASES];
    int n = read_repr_cases(cases, MAX_CASES);
    cr_assert_gt(n, 40);
    fx_file *f = fx_open("print.txt");
    int failures = 0;
    BNT_ASSERT_NO_LEAK({
        for (int i = 0; i < n; i++) {
            cr_assert_not_null(cases[i].repr, "case %s has no r line", cases[i].name);
            bn_tensor *x = fx_tensor(f, cases[i].name, "x");
            bn_tensor *v = apply_view(x, cases[i].view);
            if (cases[i].view)
                cr_assert(!bn_is_contiguous(v), "%s: view should be strided", cases[i].name);
            v->requires_grad = cases[i].requires_grad;
            char *got = bn_to_string(v);
            cr_assert_not_null(got, "%s: %s", cases[i].name, bn_error_message());
            if (strcmp(got, cases[i].repr)) {
                failures++;
                cr_log_error("case %s:\nwant: %s\ngot:  %s", cases[i].name, cases[i].repr, got);
            }
            free(got);
            v->requires_grad = false;
            bn_release(v);
            bn_release(x);
            free(cases[i].repr);
        }
    });
    fx_close(f);
    cr_assert_eq(failures, 0, "%d of %d cases differ from torch's repr", failures, n);
}

/* ---- behaviours spelled out (the fixture sweep covers them too; these read as examples) ---- */
static void assert_prints(const bn_tensor *t, const char *want)
{
    char *got = bn_to_string(t);
    cr_assert_not_null(got, "bn_to_string failed: %s", bn_error_message());
    cr_assert_str_eq(got, want);
    free(got);
}

Test(print, integral_floats_print_with_a_trailing_point)
{
    float v[] = {1, 2, 3, 4};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        assert_prints(bn_from_data(v, BN_SHAPE(2, 2), BN_F32),
                      "tensor([[1., 2.],\n        [3., 4.]])");
        bn_scope_end();
    });
}

Test(print, zero_dim_tensor_prints_bare_value)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        assert_prints(bn_scalar(3.5, BN_F32), "tensor(3.5000)");
        assert_prints(bn_scalar(-7, BN_I64), "tensor(-7)");
        assert_prints(bn_scalar(1, BN_BOOL), "tensor(True)");
        assert_prints(bn_scalar(0.5, BN_F16), "tensor(0.5000, dtype=torch.float16)");
        bn_scope_end();
    });
}

Test(print, empty_tensor_names_size_and_dtype)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        assert_prints(bn_zeros(BN_SHAPE(0), BN_F32), "tensor([])");
        assert_prints(bn_zeros(BN_SHAPE(0, 3), BN_F32), "tensor([], size=(0, 3))");
        assert_prints(bn_zeros(BN_SHAPE(0), BN_I64), "tensor([], dtype=torch.int64)");
        assert_prints(bn_zeros(BN_SHAPE(2, 0), BN_BOOL),
                      "tensor([], size=(2, 0), dtype=torch.bool)");
        bn_scope_end();
    });
}

Test(print, wide_range_switches_to_scientific)
{
    float v[] = {1e-5f, 1.0f, 10.5f};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        assert_prints(bn_from_data(v, BN_SHAPE(3), BN_F32),
                      "tensor([1.0000e-05, 1.0000e+00, 1.0500e+01])");
        bn_scope_end();
    });
}

Test(print, bools_are_right_aligned)
{
    bool v[] = {true, false};
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        assert_prints(bn_from_data(v, BN_SHAPE(2), BN_BOOL), "tensor([ True, False])");
        bn_scope_end();
    });
}

Test(print, large_tensor_is_summarised_with_ellipsis)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        assert_prints(bn_arange(0, 2000, 1, BN_I64),
                      "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
        bn_scope_end();
    });
}

Test(print, nan_and_inf_keep_the_column_width_of_finite_values)
{
    float v[] = {1.5f, NAN, INFINITY, -INFINITY};
    /* a NaN with its sign bit set still prints as "nan", like Python */
    uint32_t neg_nan_bits = 0xffc00000u;
    float w[2] = {-2.0f, 0};
    memcpy(&w[1], &neg_nan_bits, 4);
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *t = bn_from_data(v, BN_SHAPE(4), BN_F32);
        assert_prints(t, "tensor([1.5000,    nan,    inf,   -inf])");
        assert_prints(bn_from_data(w, BN_SHAPE(2), BN_F32), "tensor([-2., nan])");
        bn_scope_end();
    });
}

Test(print, print_writes_repr_and_newline_to_stdout, .init = cr_redirect_stdout)
{
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_eq(bn_print(bn_arange(0, 3, 1, BN_I32)), BN_OK);
        bn_scope_end();
    });
    fflush(stdout);
    cr_assert_stdout_eq_str("tensor([0, 1, 2], dtype=torch.int32)\n");
}

Test(print, fprint_writes_repr_and_newline_to_stream)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_eq(bn_fprint(f, bn_full(BN_SHAPE(2), 0.25, BN_F64)), BN_OK);
        bn_scope_end();
    });
    char buf[128] = {0};
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    cr_assert_str_eq(buf, "tensor([0.2500, 0.2500], dtype=torch.float64)\n", "got %zu bytes", n);
}

/* ---- bad input ------------------------------------------------------------------------------ */
Test(print, to_string_null_is_an_arg_error)
{
    bn_error_clear();
    BNT_ASSERT_NO_LEAK(cr_assert_null(bn_to_string(NULL)));
    bnt_assert_error(BN_ERR_ARG, "bn_to_string", "t", "NULL", NULL);
}

Test(print, to_string_null_keeps_an_earlier_error)
{
    bn_error_clear();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        bn_tensor *bad = bn_reshape(bn_zeros(BN_SHAPE(2, 3), BN_F32), BN_SHAPE(4, 2));
        cr_assert_null(bad);
        cr_assert_null(bn_to_string(bad));
        bn_scope_end();
    });
    bnt_assert_error(BN_ERR_SHAPE, "bn_reshape", NULL);
}

Test(print, print_null_is_an_arg_error)
{
    bn_error_clear();
    BNT_ASSERT_NO_LEAK(cr_assert_eq(bn_print(NULL), BN_ERR_ARG));
    bnt_assert_error(BN_ERR_ARG, "bn_print", "t", NULL);
}

Test(print, fprint_null_stream_or_tensor_is_an_arg_error)
{
    bn_error_clear();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_eq(bn_fprint(NULL, bn_zeros(BN_SHAPE(1), BN_F32)), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_fprint", "f", NULL);
        cr_assert_eq(bn_fprint(stderr, NULL), BN_ERR_ARG);
        bnt_assert_error(BN_ERR_ARG, "bn_fprint", "t", NULL);
        bn_scope_end();
    });
}

Test(print, fprint_to_unwritable_stream_is_an_io_error)
{
    FILE *f = fopen("/dev/null", "r");
    cr_assert_not_null(f);
    bn_error_clear();
    BNT_ASSERT_NO_LEAK({
        bn_scope_begin();
        cr_assert_eq(bn_fprint(f, bn_zeros(BN_SHAPE(2), BN_F32)), BN_ERR_IO);
        bn_scope_end();
    });
    fclose(f);
    bnt_assert_error(BN_ERR_IO, "bn_fprint", "stream", NULL);
}
