/* tests/common/bn_test.c — see bn_test.h. */
#include "bn_test.h"

#include "core/internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx_file {
    char *text;
    char **lines;
    int nlines;
    char name[256];
};

fx_file *fx_open(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", BORN_TEST_DATA_DIR, name);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "fixture %s is missing (regenerate it with the script named in the test)",
                       path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    fx_file *f = calloc(1, sizeof *f);
    f->text = malloc((size_t)n + 1);
    cr_assert_eq(fread(f->text, 1, (size_t)n, fp), (size_t)n);
    f->text[n] = '\0';
    fclose(fp);
    snprintf(f->name, sizeof f->name, "%s", name);
    int cap = 64;
    f->lines = malloc(sizeof(char *) * (size_t)cap);
    for (char *p = f->text; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        if (f->nlines == cap) {
            cap *= 2;
            f->lines = realloc(f->lines, sizeof(char *) * (size_t)cap);
        }
        f->lines[f->nlines++] = p;
        if (!e) break;
        p = e + 1;
    }
    return f;
}

void fx_close(fx_file *f)
{
    if (!f) return;
    free(f->lines);
    free(f->text);
    free(f);
}

/* Line index of "case <name>" or -1. */
static int find_case(fx_file *f, const char *case_name)
{
    size_t n = strlen(case_name);
    for (int i = 0; i < f->nlines; i++)
        if (!strncmp(f->lines[i], "case ", 5) && !strncmp(f->lines[i] + 5, case_name, n) &&
            (f->lines[i][5 + n] == '\0' || f->lines[i][5 + n] == ' ' || f->lines[i][5 + n] == '\r'))
            return i;
    return -1;
}

int fx_has_case(fx_file *f, const char *case_name) { return find_case(f, case_name) >= 0; }

const char *fx_case_name(fx_file *f, int idx)
{
    static _Thread_local char buf[256];
    int k = 0;
    for (int i = 0; i < f->nlines; i++)
        if (!strncmp(f->lines[i], "case ", 5) && k++ == idx) {
            snprintf(buf, sizeof buf, "%s", f->lines[i] + 5);
            return buf;
        }
    return NULL;
}

static const char *find_item(fx_file *f, const char *case_name, char kind, const char *item)
{
    int c = find_case(f, case_name);
    cr_assert(c >= 0, "fixture %s has no case '%s'", f->name, case_name);
    size_t n = strlen(item);
    for (int i = c + 1; i < f->nlines && strncmp(f->lines[i], "case ", 5); i++) {
        const char *l = f->lines[i];
        if (l[0] == kind && l[1] == ' ' && !strncmp(l + 2, item, n) && l[2 + n] == ' ')
            return l + 2 + n + 1;
    }
    cr_assert_fail("fixture %s case '%s' has no %s '%s'", f->name, case_name,
                   kind == 't' ? "tensor" : "scalar", item);
    return NULL;
}

static bn_dtype parse_dtype(const char *s)
{
    static const char *names[] = {"f32", "f64", "f16", "bf16", "i8", "u8", "i32", "i64", "bool"};
    for (int i = 0; i < BN_DTYPE_COUNT; i++)
        if (!strcmp(s, names[i])) return (bn_dtype)i;
    cr_assert_fail("fixture: unknown dtype '%s'", s);
    return BN_F32;
}

bn_tensor *fx_tensor(fx_file *f, const char *case_name, const char *tensor_name)
{
    const char *p = find_item(f, case_name, 't', tensor_name);
    char dts[16];
    int ndim, used;
    cr_assert_eq(sscanf(p, "%15s %d%n", dts, &ndim, &used), 2, "fixture: bad tensor line");
    p += used;
    bn_dtype dt = parse_dtype(dts);
    int64_t dims[BN_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        long long d;
        cr_assert_eq(sscanf(p, "%lld%n", &d, &used), 1);
        dims[i] = d;
        p += used;
    }
    while (*p == ' ') p++;
    cr_assert_eq(*p, ':', "fixture: expected ':' in tensor line");
    p++;
    bn_tensor *t = bn__empty(dims, ndim, dt, bn_cpu());
    int64_t n = bn__numel(t);
    char *data = bn__data(t);
    size_t es = bn_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        char *end;
        while (*p == ' ') p++;
        if (dt == BN_I64) {
            long long v = strtoll(p, &end, 10);
            *(int64_t *)(data + i * (int64_t)es) = v;
        } else {
            double v = strtod(p, &end);
            bn__store_f64(data + i * (int64_t)es, dt, v);
        }
        cr_assert(end != p, "fixture %s/%s/%s: value %lld unreadable", f->name, case_name,
                  tensor_name, (long long)i);
        p = end;
    }
    return t;
}

double fx_scalar(fx_file *f, const char *case_name, const char *scalar_name)
{
    const char *p = find_item(f, case_name, 's', scalar_name);
    return strtod(p, NULL);
}

double bnt_rtol(bn_dtype dt)
{
    switch (dt) {
    case BN_F64: return 1e-12;
    case BN_F32: return 1e-5;
    case BN_F16: return 2e-3;
    case BN_BF16: return 1.6e-2;
    default: return 0;
    }
}

double bnt_atol(bn_dtype dt)
{
    switch (dt) {
    case BN_F64: return 1e-12;
    case BN_F32: return 1e-6;
    case BN_F16: return 1e-3;
    case BN_BF16: return 1e-2;
    default: return 0;
    }
}

static void assert_same_layout(const bn_tensor *got, const bn_tensor *want, const char *what)
{
    cr_assert_not_null(got, "%s: result is NULL (%s)", what, bn_error_message());
    cr_assert_not_null(want, "%s: expected tensor is NULL", what);
    cr_assert_eq(bn_dtype_of(got), bn_dtype_of(want), "%s: dtype %s, expected %s", what,
                 bn_dtype_name(bn_dtype_of(got)), bn_dtype_name(bn_dtype_of(want)));
    cr_assert(bn_shape_equal(bn_shape_of(got), bn_shape_of(want)), "%s: shape %s, expected %s",
              what, bn__tshape(got), bn__tshape(want));
}

/* Element i of t in row-major logical order, as double (int64 exact via a separate path). */
static double elem(const bn_tensor *t, int64_t i)
{
    int64_t idx[BN_MAX_DIMS];
    int64_t r = i;
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? r % t->shape[d] : 0;
        r = t->shape[d] ? r / t->shape[d] : 0;
    }
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->strides[d];
    return bn__load_f64((char *)t->storage->data + off * (int64_t)bn_dtype_size(t->dtype),
                        t->dtype);
}

static int64_t elem_i64(const bn_tensor *t, int64_t i)
{
    int64_t r = i, off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (r % t->shape[d]) * t->strides[d];
        r /= t->shape[d];
    }
    return ((int64_t *)t->storage->data)[off];
}

static bool close_enough(double g, double w, double rtol, double atol)
{
    if (isnan(w)) return isnan(g);
    if (isinf(w)) return g == w;
    if (isnan(g) || isinf(g)) return false;
    return fabs(g - w) <= atol + rtol * fabs(w);
}

void bnt_assert_close(const bn_tensor *got, const bn_tensor *want, double rtol, double atol,
                      const char *what)
{
    assert_same_layout(got, want, what);
    int64_t n = bn__numel(want);
    for (int64_t i = 0; i < n; i++) {
        if (want->dtype == BN_I64) {
            int64_t g = elem_i64(got, i), w = elem_i64(want, i);
            cr_assert_eq(g, w, "%s: element %lld is %lld, expected %lld", what, (long long)i,
                         (long long)g, (long long)w);
            continue;
        }
        double g = elem(got, i), w = elem(want, i);
        cr_assert(close_enough(g, w, rtol, atol),
                  "%s: element %lld of %s is %.9g, expected %.9g (rtol %g, atol %g)", what,
                  (long long)i, bn__tshape(want), g, w, rtol, atol);
    }
}

void bnt_expect_fixture(fx_file *f, const char *case_name, const char *name, bn_tensor *got)
{
    bn_tensor *want = fx_tensor(f, case_name, name);
    char what[160];
    snprintf(what, sizeof what, "%s %s", case_name, name);
    bn_dtype dt = bn_dtype_of(want);
    bnt_assert_close(got, want, bnt_rtol(dt), bnt_atol(dt), what);
    bn_release(want);
    bn_release(got);
}

void bnt_assert_equal(const bn_tensor *got, const bn_tensor *want, const char *what)
{
    bnt_assert_close(got, want, 0.0, 0.0, what);
}

void bnt_assert_values(const bn_tensor *got, const double *want, int64_t n, double tol,
                       const char *what)
{
    cr_assert_not_null(got, "%s: result is NULL (%s)", what, bn_error_message());
    cr_assert_eq(bn__numel(got), n, "%s: %lld elements, expected %lld", what,
                 (long long)bn__numel(got), (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double g = elem(got, i);
        cr_assert(close_enough(g, want[i], tol, tol), "%s: element %lld is %.9g, expected %.9g",
                  what, (long long)i, g, want[i]);
    }
}

void bnt_assert_error(bn_status code, const char *substr, ...)
{
    bn_status got = bn_error_code();
    const char *msg = bn_error_message();
    cr_assert_eq(got, code, "expected error %s, got %s: '%s'", bn_status_name(code),
                 bn_status_name(got), msg);
    va_list ap;
    va_start(ap, substr);
    for (const char *s = substr; s; s = va_arg(ap, const char *))
        cr_assert(strstr(msg, s) != NULL, "error message '%s' does not mention '%s'", msg, s);
    va_end(ap);
    bn_error_clear();
}

void bnt_assert_no_error(const char *what)
{
    cr_assert_eq(bn_error_code(), BN_OK, "%s: unexpected error %s: %s", what,
                 bn_status_name(bn_error_code()), bn_error_message());
}

long long bnt_live_tensors(void) { return (long long)bn__live_tensors(); }

#define BNT_POOL_MAX 1024
static bn_tensor *bnt_pool[BNT_POOL_MAX];
static int bnt_npool;

bn_tensor *bnt_keep(bn_tensor *t)
{
    cr_assert_lt(bnt_npool, BNT_POOL_MAX, "bnt_keep: more than %d tensors kept", BNT_POOL_MAX);
    bnt_pool[bnt_npool++] = t;
    return t;
}

void bnt_release_kept(void)
{
    for (int i = 0; i < bnt_npool; i++) bn_release(bnt_pool[i]);
    bnt_npool = 0;
}

const char *const bnt_dtype_names[BN_DTYPE_COUNT] = {"f32", "f64", "f16", "bf16", "i8",
                                                     "u8",  "i32", "i64", "bool"};

char *bnt_cpuinfo_flags(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return NULL;
    char *line = NULL, *flags = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *v = strchr(line, ':');
        if (strncmp(line, "flags", 5) != 0 || !v) continue;
        flags = strdup(v); /* ": fpu vme …\n" */
        cr_assert_not_null(flags);
        flags[0] = ' ';
        flags[strcspn(flags, "\n")] = ' ';
        break;
    }
    free(line);
    fclose(f);
    return flags;
}

bool bnt_has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        bool starts = p == text || p[-1] == ' ' || p[-1] == '\n';
        bool ends = p[n] == ' ' || p[n] == '\n' || p[n] == '\0';
        if (starts && ends) return true;
    }
    return false;
}
