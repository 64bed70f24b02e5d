/* backend/cpu/norm_impl.h — the norm kernels' bodies, written once for an element type T and
 * included by norm.c for float and double (NORM_T, NORM_SFX). Statistics accumulate in double;
 * each row (layer/RMS/group norm) or channel (batch norm) is reduced by one thread in a fixed
 * order, so the thread count never changes a result. Every tensor is contiguous. */
#define NORM_CAT2(a, b) a##b
#define NORM_CAT(a, b) NORM_CAT2(a, b)
#define NORM_FN(name) NORM_CAT(name, NORM_SFX)

/* x, y (rows, cols); w, b (channels) or NULL; mean, rstd (rows) */
static void NORM_FN(row_norm_)(const NORM_T *x, const NORM_T *w, const NORM_T *b, NORM_T *y,
                               NORM_T *mean_out, NORM_T *rstd_out, const bn_row_norm_geom *g,
                               double eps)
{
    int64_t R = g->rows, K = g->cols, inner = g->inner, cg = K / inner;
#pragma omp parallel for schedule(static) if (R * K >= BN_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < R; r++) {
        const NORM_T *xr = x + r * K;
        NORM_T *yr = y + r * K;
        double mean = 0.0, ss = 0.0;
        if (!g->rms) {
            for (int64_t k = 0; k < K; k++) mean += (double)xr[k];
            mean /= (double)K;
        }
        for (int64_t k = 0; k < K; k++) {
            double d = (double)xr[k] - mean;
            ss += d * d;
        }
        double rstd = 1.0 / sqrt(ss / (double)K + eps);
        mean_out[r] = (NORM_T)mean;
        rstd_out[r] = (NORM_T)rstd;
        int64_t c0 = (r % g->groups) * cg;
        for (int64_t cb = 0; cb < cg; cb++) {
            double wc = w ? (double)w[c0 + cb] : 1.0, bc = b ? (double)b[c0 + cb] : 0.0;
            for (int64_t s = 0; s < inner; s++) {
                int64_t k = cb * inner + s;
                yr[k] = (NORM_T)(((double)xr[k] - mean) * rstd * wc + bc);
            }
        }
    }
}

/* gy, x, gx (rows, cols); mean, rstd (rows); w (channels) or NULL.
 * gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)) with gh = gy * w (RMS: no mean(gh)). */
static void NORM_FN(row_norm_grad_x_)(const NORM_T *gy, const NORM_T *x, const NORM_T *mean_in,
                                      const NORM_T *rstd_in, const NORM_T *w, NORM_T *gx,
                                      const bn_row_norm_geom *g)
{
    int64_t R = g->rows, K = g->cols, inner = g->inner, cg = K / inner;
#pragma omp parallel for schedule(static) if (R * K >= BN_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < R; r++) {
        const NORM_T *xr = x + r * K, *gr = gy + r * K;
        NORM_T *gxr = gx + r * K;
        double mean = (double)mean_in[r], rstd = (double)rstd_in[r];
        int64_t c0 = (r % g->groups) * cg;
        double sum_gh = 0.0, sum_ghx = 0.0;
        for (int64_t cb = 0; cb < cg; cb++) {
            double wc = w ? (double)w[c0 + cb] : 1.0;
            for (int64_t s = 0; s < inner; s++) {
                int64_t k = cb * inner + s;
                double gh = (double)gr[k] * wc;
                sum_gh += gh;
                sum_ghx += gh * ((double)xr[k] - mean) * rstd;
            }
        }
        double a = g->rms ? 0.0 : sum_gh / (double)K, bcoef = sum_ghx / (double)K;
        for (int64_t cb = 0; cb < cg; cb++) {
            double wc = w ? (double)w[c0 + cb] : 1.0;
            for (int64_t s = 0; s < inner; s++) {
                int64_t k = cb * inner + s;
                double xhat = ((double)xr[k] - mean) * rstd;
                gxr[k] = (NORM_T)(rstd * ((double)gr[k] * wc - a - xhat * bcoef));
            }
        }
    }
}

/* gy, x (rows, cols); mean, rstd (rows); gw, gb (channels) or NULL: per channel, the sums of
 * gy * xhat and gy over every (row, col) that uses it. */
static void NORM_FN(row_norm_grad_affine_)(const NORM_T *gy, const NORM_T *x, const NORM_T *mean_in,
                                           const NORM_T *rstd_in, NORM_T *gw, NORM_T *gb,
                                           const bn_row_norm_geom *g)
{
    int64_t K = g->cols, inner = g->inner, cg = K / inner, G = g->groups, N = g->rows / G;
    int64_t C = G * cg;
#pragma omp parallel for schedule(static) if (g->rows * K >= BN_PAR_MIN_ELEMS)
    for (int64_t c = 0; c < C; c++) {
        int64_t grp = c / cg, k0 = (c % cg) * inner;
        double sw = 0.0, sb = 0.0;
        for (int64_t n = 0; n < N; n++) {
            int64_t r = n * G + grp;
            double mean = (double)mean_in[r], rstd = (double)rstd_in[r];
            const NORM_T *xr = x + r * K + k0, *gr = gy + r * K + k0;
            for (int64_t s = 0; s < inner; s++) {
                sw += (double)gr[s] * ((double)xr[s] - mean) * rstd;
                sb += (double)gr[s];
            }
        }
        if (gw) gw[c] = (NORM_T)sw;
        if (gb) gb[c] = (NORM_T)sb;
    }
}

/* x (N, C, S); mean, var (C): two passes per channel (mean, then squared deviations) */
static void NORM_FN(batch_stats_)(const NORM_T *x, NORM_T *mean_out, NORM_T *var_out, int64_t N,
                                  int64_t C, int64_t S)
{
    double M = (double)(N * S);
#pragma omp parallel for schedule(static) if (N * C * S >= BN_PAR_MIN_ELEMS)
    for (int64_t c = 0; c < C; c++) {
        double sum = 0.0, ss = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const NORM_T *p = x + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) sum += (double)p[s];
        }
        double mean = sum / M;
        for (int64_t n = 0; n < N; n++) {
            const NORM_T *p = x + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) {
                double d = (double)p[s] - mean;
                ss += d * d;
            }
        }
        mean_out[c] = (NORM_T)mean;
        var_out[c] = (NORM_T)(ss / M);
    }
}

/* x, y (N, C, S); mean, var (C); w, b (C) or NULL */
static void NORM_FN(batch_apply_)(const NORM_T *x, const NORM_T *mean, const NORM_T *var,
                                  const NORM_T *w, const NORM_T *b, NORM_T *y, int64_t N, int64_t C,
                                  int64_t S, double eps)
{
#pragma omp parallel for schedule(static) if (N * C * S >= BN_PAR_MIN_ELEMS)
    for (int64_t plane = 0; plane < N * C; plane++) {
        int64_t c = plane % C;
        double rstd = 1.0 / sqrt((double)var[c] + eps), m = (double)mean[c];
        double scale = rstd * (w ? (double)w[c] : 1.0), shift = b ? (double)b[c] : 0.0;
        const NORM_T *xp = x + plane * S;
        NORM_T *yp = y + plane * S;
        for (int64_t s = 0; s < S; s++) yp[s] = (NORM_T)(((double)xp[s] - m) * scale + shift);
    }
}

/* gy, x, gx (N, C, S); mean, var, w, gw, gb (C); w, gx, gw, gb may be NULL */
static void NORM_FN(batch_backward_)(const NORM_T *gy, const NORM_T *x, const NORM_T *mean_in,
                                     const NORM_T *var, const NORM_T *w, NORM_T *gx, NORM_T *gw,
                                     NORM_T *gb, int64_t N, int64_t C, int64_t S, double eps,
                                     bool training)
{
    double M = (double)(N * S);
#pragma omp parallel for schedule(static) if (N * C * S >= BN_PAR_MIN_ELEMS)
    for (int64_t c = 0; c < C; c++) {
        double mean = (double)mean_in[c], rstd = 1.0 / sqrt((double)var[c] + eps);
        double sum_g = 0.0, sum_gx = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const NORM_T *xp = x + (n * C + c) * S, *gp = gy + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) {
                sum_g += (double)gp[s];
                sum_gx += (double)gp[s] * ((double)xp[s] - mean) * rstd;
            }
        }
        if (gw) gw[c] = (NORM_T)sum_gx;
        if (gb) gb[c] = (NORM_T)sum_g;
        if (!gx) continue;
        double scale = rstd * (w ? (double)w[c] : 1.0);
        double a = training ? sum_g / M : 0.0, bcoef = training ? sum_gx / M : 0.0;
        for (int64_t n = 0; n < N; n++) {
            const NORM_T *xp = x + (n * C + c) * S, *gp = gy + (n * C + c) * S;
            NORM_T *gxp = gx + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) {
                double xhat = ((double)xp[s] - mean) * rstd;
                gxp[s] = (NORM_T)(scale * ((double)gp[s] - a - xhat * bcoef));
            }
        }
    }
}

#undef NORM_FN
#undef NORM_CAT
#undef NORM_CAT2
