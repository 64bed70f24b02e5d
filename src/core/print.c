/* core/print.c — bn_to_string / bn_print / bn_fprint: a tensor as text, character for character
 * what PyTorch 1.13 prints for repr(tensor) (the rules of torch/_tensor_str.py, written anew):
 *
 *   - one format for every element shown: integers as they are; bools as True / False; floats
 *     with 4 digits after the point, or "1." when every finite non-zero value is integral, or
 *     scientific "1.0000e+00" when max/min of the finite non-zero magnitudes exceeds 1000, the
 *     max exceeds 1e8, or (non-integral values only) the min is below 1e-4;
 *   - each element right-aligned to the widest finite non-zero one (nan / inf / zeros do not
 *     widen the column); rows wrap at 80 columns;
 *   - above 1000 elements, every dim longer than 6 shows its first and last 3 entries around
 *     "...", and only the shown elements choose the format;
 *   - suffixes after the data: the device when it is not the CPU, "dtype=torch.float64" when the
 *     dtype is not float32 / int64 / bool, "size=(0, 3)" for empty tensors, requires_grad.
 *
 * Deliberately not here: print options (precision, threshold, edgeitems and linewidth are
 * PyTorch's defaults, fixed), and autograd's grad_fn names (a tensor that requires grad shows
 * "requires_grad=True"). */
#include "core/internal.h"

#include <math.h>
#include <string.h>

enum { PRECISION = 4, THRESHOLD = 1000, EDGEITEMS = 3, LINEWIDTH = 80 };
#define SCI_RATIO 1000.0 /* max/min of magnitudes above this: scientific notation */
#define SCI_MAX 1.0e8    /* a magnitude above this: scientific notation */
#define SCI_MIN 1.0e-4   /* a non-integral magnitude below this: scientific notation */

/* ---- a growable string -------------------------------------------------------------------- */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool failed; /* an allocation failed; everything after is dropped */
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

static void sb_spaces(strbuf *b, int n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        int k = n < (int)sizeof spaces - 1 ? n : (int)sizeof spaces - 1;
        sb_append(b, spaces, (size_t)k);
        n -= k;
    }
}

/* ---- element formats ---------------------------------------------------------------------- */
typedef enum elem_style {
    STYLE_INT,         /* integer dtypes: "-3" */
    STYLE_BOOL,        /* "True" / "False" */
    STYLE_FLOAT_INT,   /* floats that are all integral: "3." */
    STYLE_FLOAT_FIXED, /* "3.1416" */
    STYLE_FLOAT_SCI    /* "3.1416e+00" */
} elem_style;

/* What the printer walks: host memory laid out by shape and strides (in elements). */
typedef struct printer {
    const char *data; /* element 0 */
    const int64_t *shape, *strides;
    int ndim;
    bn_dtype dtype;
    size_t esize;
    bool summarize; /* more than THRESHOLD elements: dims longer than 2*EDGEITEMS are cut */
    elem_style style;
    int width; /* every element is right-aligned to this many characters */
    strbuf out;
} printer;

/* Big enough for "%.0f" of any double (309 digits) and the rest. */
#define ELEM_BUF 400

static int64_t load_int(const char *e, bn_dtype dt)
{
    switch (dt) {
    case BN_I8: return *(const int8_t *)e;
    case BN_U8: return *(const uint8_t *)e;
    case BN_I32: return *(const int32_t *)e;
    case BN_I64: return *(const int64_t *)e;
    default: BN_ASSERT(0 && "not an integer dtype");
    }
}

/* Python prints nan without a sign and infinities as inf / -inf, in every float style. */
static int format_float(char *buf, double v, elem_style style)
{
    if (isnan(v)) return snprintf(buf, ELEM_BUF, "nan");
    if (isinf(v)) return snprintf(buf, ELEM_BUF, v > 0 ? "inf" : "-inf");
    switch (style) {
    case STYLE_FLOAT_SCI: return snprintf(buf, ELEM_BUF, "%.*e", PRECISION, v);
    case STYLE_FLOAT_FIXED: return snprintf(buf, ELEM_BUF, "%.*f", PRECISION, v);
    default: return snprintf(buf, ELEM_BUF, "%.0f.", v);
    }
}

/* One element, unpadded, into buf (ELEM_BUF bytes); returns its length. */
static int format_elem(const printer *p, const char *e, char *buf)
{
    switch (p->style) {
    case STYLE_INT: return snprintf(buf, ELEM_BUF, "%lld", (long long)load_int(e, p->dtype));
    case STYLE_BOOL: return snprintf(buf, ELEM_BUF, "%s", *(const bool *)e ? "True" : "False");
    default: return format_float(buf, bn__load_f64(e, p->dtype), p->style);
    }
}

static void emit_elem(printer *p, const char *e)
{
    char buf[ELEM_BUF];
    int n = format_elem(p, e, buf);
    sb_spaces(&p->out, p->width - n);
    sb_append(&p->out, buf, (size_t)n);
}

/* ---- walking the shown elements ----------------------------------------------------------- */
/* Whether a dim of this size is cut to its edges ("..." in the middle). */
static bool is_cut(const printer *p, int64_t size) { return p->summarize && size > 2 * EDGEITEMS; }

/* The index after i along a dim of this size, skipping the middle of a cut dim. */
static int64_t next_index(const printer *p, int64_t i, int64_t size)
{
    i++;
    if (is_cut(p, size) && i == EDGEITEMS) i = size - EDGEITEMS;
    return i;
}

typedef void (*visit_fn)(printer *p, const char *elem, void *ctx);

/* Calls fn on every element that will be printed, in row-major order. */
static void visit_shown(printer *p, int d, int64_t off, visit_fn fn, void *ctx)
{
    if (d == p->ndim) {
        fn(p, p->data + off * (int64_t)p->esize, ctx);
        return;
    }
    for (int64_t i = 0; i < p->shape[d]; i = next_index(p, i, p->shape[d]))
        visit_shown(p, d + 1, off + i * p->strides[d], fn, ctx);
}

/* ---- choosing the format ------------------------------------------------------------------ */
typedef struct float_stats {
    bool any;          /* some finite non-zero value */
    bool all_integral; /* every finite non-zero value is an integer */
    double min_abs, max_abs;
} float_stats;

static void gather_float_stats(printer *p, const char *e, void *ctx)
{
    float_stats *s = ctx;
    double v = bn__load_f64(e, p->dtype);
    if (!isfinite(v) || v == 0) return;
    double a = fabs(v);
    if (!s->any) s->min_abs = s->max_abs = a;
    s->min_abs = fmin(s->min_abs, a);
    s->max_abs = fmax(s->max_abs, a);
    if (v != ceil(v)) s->all_integral = false;
    s->any = true;
}

/* The column width: the widest element, counting only finite non-zero floats. */
static void widen(printer *p, const char *e, void *ctx)
{
    (void)ctx;
    if (p->style >= STYLE_FLOAT_INT) {
        double v = bn__load_f64(e, p->dtype);
        if (!isfinite(v) || v == 0) return;
    }
    char buf[ELEM_BUF];
    int n = format_elem(p, e, buf);
    if (n > p->width) p->width = n;
}

static elem_style float_style(const float_stats *s)
{
    if (!s->any) return STYLE_FLOAT_INT;
    bool wide = s->max_abs / s->min_abs > SCI_RATIO || s->max_abs > SCI_MAX;
    if (s->all_integral) return wide ? STYLE_FLOAT_SCI : STYLE_FLOAT_INT;
    return wide || s->min_abs < SCI_MIN ? STYLE_FLOAT_SCI : STYLE_FLOAT_FIXED;
}

static void choose_format(printer *p)
{
    if (p->dtype == BN_BOOL) {
        p->style = STYLE_BOOL;
    } else if (bn_dtype_is_int(p->dtype)) {
        p->style = STYLE_INT;
    } else {
        float_stats s = {.all_integral = true};
        visit_shown(p, 0, 0, gather_float_stats, &s);
        p->style = float_style(&s);
    }
    p->width = 1;
    visit_shown(p, 0, 0, widen, NULL);
}

/* ---- layout ------------------------------------------------------------------------------- */
/* The separator before item k of a row: ", ", or a line break once per_line items are out. */
static void row_sep(printer *p, int64_t k, int per_line, int indent)
{
    if (k == 0) return;
    if (k % per_line == 0) {
        sb_puts(&p->out, ",\n");
        sb_spaces(&p->out, indent + 1);
    } else {
        sb_puts(&p->out, ", ");
    }
}

/* The last dim: elements separated by ", ", as many per line as fit in LINEWIDTH - indent,
 * continuation lines indented under the "[". The " ..." of a cut row counts as an item. */
static void emit_row(printer *p, int64_t off, int indent)
{
    int d = p->ndim - 1;
    int64_t size = p->shape[d];
    int per_line = (LINEWIDTH - indent) / (p->width + 2);
    if (per_line < 1) per_line = 1;
    sb_puts(&p->out, "[");
    int64_t k = 0;
    for (int64_t i = 0; i < size; i = next_index(p, i, size)) {
        if (is_cut(p, size) && i == size - EDGEITEMS) {
            row_sep(p, k++, per_line, indent);
            sb_puts(&p->out, " ...");
        }
        row_sep(p, k++, per_line, indent);
        emit_elem(p, p->data + (off + i * p->strides[d]) * (int64_t)p->esize);
    }
    sb_puts(&p->out, "]");
}

/* Between the sub-blocks of dim d: a comma, one line break per dim below d, then the indent. */
static void block_sep(printer *p, int d, int indent)
{
    sb_puts(&p->out, ",");
    for (int k = d + 1; k < p->ndim; k++) sb_puts(&p->out, "\n");
    sb_spaces(&p->out, indent + 1);
}

/* Dims d.. of the tensor at element offset off, each level indented one column further. */
static void emit_block(printer *p, int d, int64_t off, int indent)
{
    if (d == p->ndim - 1) {
        emit_row(p, off, indent);
        return;
    }
    int64_t size = p->shape[d];
    sb_puts(&p->out, "[");
    for (int64_t i = 0; i < size; i = next_index(p, i, size)) {
        if (is_cut(p, size) && i == size - EDGEITEMS) {
            block_sep(p, d, indent);
            sb_puts(&p->out, "...");
        }
        if (i > 0) block_sep(p, d, indent);
        emit_block(p, d + 1, off + i * p->strides[d], indent + 1);
    }
    sb_puts(&p->out, "]");
}

/* ---- suffixes ----------------------------------------------------------------------------- */
static const char *torch_dtype_name(bn_dtype dt)
{
    switch (dt) {
    case BN_F32: return "torch.float32";
    case BN_F64: return "torch.float64";
    case BN_F16: return "torch.float16";
    case BN_BF16: return "torch.bfloat16";
    case BN_I8: return "torch.int8";
    case BN_U8: return "torch.uint8";
    case BN_I32: return "torch.int32";
    case BN_I64: return "torch.int64";
    case BN_BOOL: return "torch.bool";
    default: return "?";
    }
}

/* Appends ", suffix", or ",\n" + indent + suffix when the line would pass LINEWIDTH.
 * last_line is PyTorch's running measure of the last line (its length + 2 at the start). */
static void add_suffix(strbuf *b, const char *suffix, int indent, size_t *last_line)
{
    size_t n = strlen(suffix);
    if (*last_line + n + 2 > LINEWIDTH) {
        sb_puts(b, ",\n");
        sb_spaces(b, indent);
        *last_line = (size_t)indent + n;
    } else {
        sb_puts(b, ", ");
        *last_line += n + 2;
    }
    sb_puts(b, suffix);
}

static void add_suffixes(strbuf *b, const bn_tensor *t, int indent)
{
    char s[BN_SHAPE_STR_MAX + 32];
    const char *nl = b->failed ? NULL : strrchr(b->s, '\n');
    size_t last_line = b->failed ? 0 : nl ? strlen(nl) + 1 : b->len + 2;
    bn_device dev = t->storage->device;
    if (dev.type != BN_DEVICE_CPU) {
        snprintf(s, sizeof s, "device='%s:%d'", dev.type == BN_DEVICE_CUDA ? "cuda" : "vulkan",
                 dev.index);
        add_suffix(b, s, indent, &last_line);
    }
    bool empty = bn__numel(t) == 0;
    if (empty && t->ndim != 1) { /* Python's tuple: "(0, 3)" */
        int n = snprintf(s, sizeof s, "size=(");
        for (int i = 0; i < t->ndim; i++)
            n += snprintf(s + n, sizeof s - (size_t)n, "%s%lld", i ? ", " : "",
                          (long long)t->shape[i]);
        snprintf(s + n, sizeof s - (size_t)n, ")");
        add_suffix(b, s, indent, &last_line);
    }
    /* an empty tensor names any dtype but float32: no element shows what it holds */
    bool default_dtype =
        t->dtype == BN_F32 || (!empty && (t->dtype == BN_I64 || t->dtype == BN_BOOL));
    if (!default_dtype) {
        snprintf(s, sizeof s, "dtype=%s", torch_dtype_name(t->dtype));
        add_suffix(b, s, indent, &last_line);
    }
    if (t->requires_grad) add_suffix(b, "requires_grad=True", indent, &last_line);
    sb_puts(b, ")");
}

/* ---- the repr ----------------------------------------------------------------------------- */
static char *tensor_repr(const char *fn, const bn_tensor *t)
{
    static const char prefix[] = "tensor(";
    const int indent = (int)sizeof prefix - 1;
    int64_t numel = bn__numel(t);
    printer p = {.shape = t->shape,
                 .strides = t->strides,
                 .ndim = t->ndim,
                 .dtype = t->dtype,
                 .esize = bn_dtype_size(t->dtype),
                 .summarize = numel > THRESHOLD};
    /* another device: print from a contiguous host copy */
    int64_t host_strides[BN_MAX_DIMS];
    void *host = NULL;
    if (numel > 0 && t->storage->device.type != BN_DEVICE_CPU) {
        size_t nbytes = (size_t)numel * p.esize;
        host = malloc(nbytes);
        if (!host) return bn__error_null(BN_ERR_OOM, "%s: out of memory for %zu bytes", fn, nbytes);
        if (bn_copy_to_host(t, host, nbytes) != BN_OK) {
            free(host);
            return NULL;
        }
        bn__contiguous_strides(t->shape, t->ndim, host_strides);
        p.strides = host_strides;
        p.data = host;
    } else if (numel > 0) {
        p.data = bn__data(t);
    }

    sb_puts(&p.out, prefix);
    if (numel == 0) {
        sb_puts(&p.out, "[]");
    } else {
        choose_format(&p);
        if (t->ndim == 0)
            emit_elem(&p, p.data);
        else
            emit_block(&p, 0, 0, indent);
    }
    free(host);
    add_suffixes(&p.out, t, indent);
    if (p.out.failed) {
        free(p.out.s);
        return bn__error_null(BN_ERR_OOM, "%s: out of memory formatting a %s tensor %s", fn,
                              bn_dtype_name(t->dtype), bn__tshape(t));
    }
    return p.out.s;
}

char *bn_to_string(const bn_tensor *t)
{
    BN_CHECK_NULL("bn_to_string", t);
    return tensor_repr("bn_to_string", t);
}

static bn_status print_to(const char *fn, FILE *f, const bn_tensor *t)
{
    char *s = tensor_repr(fn, t);
    if (!s) return bn_error_code();
    bool ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    free(s);
    if (!ok) return bn__error(BN_ERR_IO, "%s: writing the tensor to the stream failed", fn);
    return BN_OK;
}

bn_status bn_print(const bn_tensor *t)
{
    BN_CHECK_NULL_STATUS("bn_print", t);
    return print_to("bn_print", stdout, t);
}

bn_status bn_fprint(FILE *f, const bn_tensor *t)
{
    BN_CHECK_NULL_STATUS("bn_fprint", f);
    BN_CHECK_NULL_STATUS("bn_fprint", t);
    return print_to("bn_fprint", f, t);
}
