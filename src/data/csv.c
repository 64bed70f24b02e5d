/* data/csv.c — CSV tables as data sets: a header row naming the columns, then one row per
 * sample of numeric cells. One column is the target (by name or index); the rest become the
 * features, f32 (N, F). Every cell is checked: a bad one is BN_ERR_FORMAT with its file, line and
 * column. Quoting is limited to a cell wrapped in double quotes (no embedded delimiters). */
#include "data/data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CSV_FN "bn_csv_load"

typedef struct csv_ctx {
    const char *path;
    char delim;
    int ncols, target;
    bool regression;
    float *x;   /* grows: rows * (ncols - 1) */
    double *y;  /* grows: rows */
    int64_t rows, cap;
} csv_ctx;

/* Reads the whole file into a NUL-terminated buffer. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return bn__error_null(BN_ERR_IO, CSV_FN ": cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len < cap - 1) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf) return bn__error_null(BN_ERR_OOM, CSV_FN ": out of memory reading '%s'", path);
    if (err) {
        free(buf);
        return bn__error_null(BN_ERR_IO, CSV_FN ": error reading '%s'", path);
    }
    buf[len] = '\0';
    return buf;
}

/* Splits line (modified in place) into at most max cells; trims spaces and one pair of
 * double quotes. Returns the cell count (max + 1 when there are more). */
static int split_cells(char *line, char delim, char **cells, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        char *end = strchr(p, delim);
        if (end) *end = '\0';
        while (isspace((unsigned char)*p)) p++;
        size_t len = strlen(p);
        while (len > 0 && isspace((unsigned char)p[len - 1])) p[--len] = '\0';
        if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
            p[len - 1] = '\0';
            p++;
        }
        if (n < max) cells[n] = p;
        n++;
        if (!end) break;
        p = end + 1;
    }
    return n > max ? max + 1 : n;
}

static bool find_target(csv_ctx *c, const char *target, char **header, int ncols)
{
    if (!target) {
        c->target = ncols - 1;
        return true;
    }
    for (int i = 0; i < ncols; i++)
        if (strcmp(header[i], target) == 0) {
            c->target = i;
            return true;
        }
    char *end;
    errno = 0;
    long v = strtol(target, &end, 10);
    if (*target && !*end && errno == 0 && v >= -ncols && v < ncols) {
        c->target = (int)(v < 0 ? v + ncols : v);
        return true;
    }
    bn__error(BN_ERR_ARG, CSV_FN ": '%s' has no column '%s' (its %d columns are named in the "
              "header; an index must be in [-%d, %d))", c->path, target, ncols, ncols, ncols);
    return false;
}

static bool grow(csv_ctx *c)
{
    if (c->rows < c->cap) return true;
    int64_t ncap = c->cap ? c->cap * 2 : 256;
    float *nx = realloc(c->x, sizeof(float) * (size_t)(ncap * (c->ncols - 1) + 1));
    if (!nx) return false;
    c->x = nx;
    double *ny = realloc(c->y, sizeof(double) * (size_t)ncap);
    if (!ny) return false;
    c->y = ny;
    c->cap = ncap;
    return true;
}

static bool parse_cell(const csv_ctx *c, const char *cell, int64_t line, int col, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(cell, &end);
    if (!*cell || *end) {
        bn__error(BN_ERR_FORMAT, CSV_FN ": '%s' line %lld column %d: '%s' is not a number",
                  c->path, (long long)line, col + 1, cell);
        return false;
    }
    if (!c->regression && col == c->target && (v < 0 || v != floor(v) || v > 9.0e15)) {
        bn__error(BN_ERR_FORMAT,
                  CSV_FN ": '%s' line %lld column %d: class label '%s' is not a non-negative "
                  "integer (set regression for a numeric target)",
                  c->path, (long long)line, col + 1, cell);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_row(csv_ctx *c, char *line, int64_t lineno, char **cells)
{
    int n = split_cells(line, c->delim, cells, c->ncols);
    if (n != c->ncols) {
        bn__error(BN_ERR_FORMAT, CSV_FN ": '%s' line %lld has %s%d cells; the header has %d",
                  c->path, (long long)lineno, n > c->ncols ? "more than " : "", n > c->ncols ? c->ncols : n,
                  c->ncols);
        return false;
    }
    if (!grow(c)) {
        bn__error(BN_ERR_OOM, CSV_FN ": out of memory reading '%s'", c->path);
        return false;
    }
    float *xrow = c->x + c->rows * (c->ncols - 1);
    for (int j = 0, k = 0; j < c->ncols; j++) {
        double v;
        if (!parse_cell(c, cells[j], lineno, j, &v)) return false;
        if (j == c->target)
            c->y[c->rows] = v;
        else
            xrow[k++] = (float)v;
    }
    c->rows++;
    return true;
}

/* Walks the lines of buf: header first, then rows; blank lines are skipped. */
static bool parse_all(csv_ctx *c, char *buf, const char *target)
{
    char **cells = NULL;
    int64_t lineno = 0;
    bool ok = true, have_header = false;
    for (char *line = buf; ok && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[len - 1] = '\0';
        bool blank = strspn(line, " \t") == strlen(line);
        if (!blank && !have_header) {
            int n = 1;
            for (const char *p = line; *p; p++) n += *p == c->delim;
            c->ncols = n;
            cells = malloc(sizeof(char *) * (size_t)n);
            if (!cells) {
                bn__error(BN_ERR_OOM, CSV_FN ": out of memory");
                ok = false;
                break;
            }
            split_cells(line, c->delim, cells, n);
            if (n < 2) {
                bn__error(BN_ERR_FORMAT, CSV_FN ": '%s' needs at least two columns (features and "
                          "a target); its header has %d", c->path, n);
                ok = false;
            } else {
                ok = find_target(c, target, cells, n);
            }
            have_header = true;
        } else if (!blank) {
            ok = parse_row(c, line, lineno, cells);
        }
        line = nl ? nl + 1 : NULL;
    }
    if (ok && !have_header) {
        bn__error(BN_ERR_FORMAT, CSV_FN ": '%s' is empty (it needs a header row)", c->path);
        ok = false;
    }
    free(cells);
    return ok;
}

static bn_dataset *to_dataset(const csv_ctx *c)
{
    int64_t xs[2] = {c->rows, c->ncols - 1};
    bn_tensor *x = bn__empty(xs, 2, BN_F32, bn_cpu());
    int64_t ys[2] = {c->rows, 1};
    bn_tensor *y = x ? bn__empty(ys, c->regression ? 2 : 1, c->regression ? BN_F32 : BN_I64, bn_cpu())
                     : NULL;
    bn_dataset *d = NULL;
    if (y) {
        if (c->rows) memcpy(bn__data(x), c->x, sizeof(float) * (size_t)(xs[0] * xs[1]));
        for (int64_t i = 0; i < c->rows; i++) {
            if (c->regression)
                ((float *)bn__data(y))[i] = (float)c->y[i];
            else
                ((int64_t *)bn__data(y))[i] = (int64_t)c->y[i];
        }
        d = bn_dataset_new(x, y);
    }
    bn_release(x);
    bn_release(y);
    return d;
}

bn_dataset *bn_csv_load(const char *path, bn_csv_opts o)
{
    BN_CHECK_NULL(CSV_FN, path);
    char delim = o.delimiter ? o.delimiter : ',';
    if (delim == '\n' || delim == '\r' || delim == '"')
        return bn__error_null(BN_ERR_ARG, CSV_FN ": delimiter %d cannot separate cells", delim);
    char *buf = slurp(path);
    if (!buf) return NULL;
    csv_ctx c = {.path = path, .delim = delim, .regression = o.regression};
    bool ok = parse_all(&c, buf, o.target);
    free(buf);
    bn_dataset *d = ok ? to_dataset(&c) : NULL;
    free(c.x);
    free(c.y);
    return d;
}
