/* backend/cpu/attention_impl.h — the body of the CPU fused attention, written once for a real
 * type and included by cpu/attention.c twice:
 *   REAL  float or double         SFX  f32 or f64 (name suffix)
 *   GEMM(ws, M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, acc): c (M, N) (+)= a (M, K) b (K, N)
 *   EXP_SHIFT(x, n, m): x[i] = exp(x[i] - m) in place, returns the sum
 * Shapes follow backend_attn.h; every block product goes through GEMM, every row operation
 * (scale, mask, online softmax, dropout) through the loops below. */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

/* Scores of rows i0.. (br) against keys j0.. (bc) in S (ldS): times scale, plus the mask, with
 * -inf where the mask or the causal rule hides the key. */
static void FN(score_block)(const attn_args *a, int64_t b, int64_t h, int64_t i0, int64_t br,
                            int64_t j0, int64_t bc, REAL *S, int64_t lds)
{
    const bn_attn_geom *g = a->g;
    const REAL scale = (REAL)g->scale;
    const int64_t off = g->tk - g->tq;
    int64_t mbase = a->mask ? mask_base(a->mask, b) : 0;
    for (int64_t r = 0; r < br; r++) {
        REAL *s = S + r * lds;
        int64_t i = i0 + r;
        for (int64_t c = 0; c < bc; c++) s[c] *= scale;
        if (a->mask) {
            const bn_tview *m = a->mask;
            int L = m->ndim - 3;
            int64_t row = mbase + h * m->strides[L] + i * m->strides[L + 1];
            int64_t sj = m->strides[L + 2];
            if (m->dtype == BN_BOOL) {
                const bool *mp = (const bool *)m->data + row + j0 * sj;
                for (int64_t c = 0; c < bc; c++)
                    if (!mp[c * sj]) s[c] = (REAL)-INFINITY;
            } else {
                const REAL *mp = (const REAL *)m->data + row + j0 * sj;
                for (int64_t c = 0; c < bc; c++) s[c] += mp[c * sj];
            }
        }
        if (g->causal) {
            int64_t first_hidden = i + off + 1 - j0; /* columns c >= this are hidden */
            for (int64_t c = first_hidden < 0 ? 0 : first_hidden; c < bc; c++)
                s[c] = (REAL)-INFINITY;
        }
    }
}

/* Multiplies the weights of rows i0.. (br) against keys j0.. (bc) by the dropout mask:
 * 1 / (1 - p) where kept, 0 where dropped; keep (bc) is scratch. */
static void FN(dropout_block)(const attn_args *a, int64_t b, int64_t h, int64_t i0, int64_t br,
                              int64_t j0, int64_t bc, REAL *P, int64_t ldp, uint8_t *keep)
{
    const bn_attn_geom *g = a->g;
    const REAL kscale = (REAL)(1.0 / (1.0 - g->dropout_p));
    for (int64_t r = 0; r < br; r++) {
        uint64_t e0 = (uint64_t)(((b * g->hq + h) * g->tq + i0 + r) * g->tk + j0);
        dropout_keep(g, e0, bc, keep);
        REAL *p = P + r * ldp;
        for (int64_t c = 0; c < bc; c++) p[c] = keep[c] ? p[c] * kscale : (REAL)0;
    }
}

/* One task of the forward: query head h of batch b, rows i0.. (br). */
static void FN(forward_rows)(const attn_args *a, const gemm_ws *ws, attn_scratch *sc, int64_t b,
                             int64_t h, int64_t i0, int64_t br)
{
    const bn_attn_geom *g = a->g;
    const int64_t hk = h / (g->hq / g->hkv), d = g->d, dv = g->dv, BC = sc->bc;
    const bn_tview *q = a->q, *k = a->k, *v = a->v, *o = a->out;
    const REAL *Q = (const REAL *)q->data + b * q->strides[0] + h * q->strides[1] +
                    i0 * q->strides[2];
    REAL *S = sc->s, *acc = sc->acc, *m = sc->m, *l = sc->l;
    for (int64_t r = 0; r < br; r++) m[r] = (REAL)-INFINITY, l[r] = 0;
    for (int64_t x = 0; x < br * dv; x++) acc[x] = 0;
    int64_t jend = g->tk;
    if (g->causal) {
        int64_t last = i0 + br - 1 + (g->tk - g->tq) + 1;
        jend = last < jend ? last : jend;
    }
    for (int64_t j0 = 0; j0 < jend; j0 += BC) {
        int64_t bc = jend - j0 < BC ? jend - j0 : BC;
        const REAL *K = (const REAL *)k->data + b * k->strides[0] + hk * k->strides[1] +
                        j0 * k->strides[2];
        const REAL *V = (const REAL *)v->data + b * v->strides[0] + hk * v->strides[1] +
                        j0 * v->strides[2];
        GEMM(ws, br, bc, d, Q, q->strides[2], 1, K, 1, k->strides[2], S, BC, false);
        FN(score_block)(a, b, h, i0, br, j0, bc, S, BC);
        for (int64_t r = 0; r < br; r++) {
            REAL *s = S + r * BC, mx = (REAL)-INFINITY;
            for (int64_t c = 0; c < bc; c++) mx = s[c] > mx ? s[c] : mx;
            REAL mnew = mx > m[r] ? mx : m[r];
            if (mnew == (REAL)-INFINITY) { /* nothing visible yet */
                for (int64_t c = 0; c < bc; c++) s[c] = 0;
                continue;
            }
            REAL alpha = m[r] == (REAL)-INFINITY ? (REAL)0 : (REAL)EXP(m[r] - mnew);
            REAL sum = (REAL)EXP_SHIFT(s, bc, mnew);
            l[r] = l[r] * alpha + sum;
            m[r] = mnew;
            if (alpha != (REAL)1) {
                REAL *ar = acc + r * dv;
                for (int64_t c = 0; c < dv; c++) ar[c] *= alpha;
            }
        }
        if (g->dropout_p > 0) FN(dropout_block)(a, b, h, i0, br, j0, bc, S, BC, sc->keep);
        GEMM(ws, br, dv, bc, S, BC, 1, V, v->strides[2], 1, acc, dv, true);
    }
    REAL *L = (REAL *)a->lse->data + (b * g->hq + h) * g->tq + i0;
    REAL *O = (REAL *)o->data + b * o->strides[0] + h * o->strides[1] + i0 * o->strides[2];
    for (int64_t r = 0; r < br; r++) {
        REAL *orow = O + r * o->strides[2];
        if (l[r] == 0) {
            L[r] = (REAL)-INFINITY;
            for (int64_t c = 0; c < dv; c++) orow[c] = 0;
        } else {
            L[r] = m[r] + (REAL)LOG(l[r]);
            REAL inv = (REAL)1 / l[r];
            for (int64_t c = 0; c < dv; c++) orow[c] = acc[r * dv + c] * inv;
        }
    }
}

static bn_status FN(forward)(const attn_args *a, const attn_blocks *mk)
{
    const bn_attn_geom *g = a->g;
    const int64_t BR = mk->br, nqb = (g->tq + BR - 1) / BR;
    const int64_t tasks = g->batch * g->hq * nqb;
    const double work = (double)g->batch * (double)g->hq * (double)g->tq * (double)g->tk *
                        (double)(g->d + g->dv);
    int oom = 0;
#pragma omp parallel if (work >= BN_ATTN_PAR_MIN_WORK && tasks > 1) reduction(|| : oom)
    {
        attn_scratch sc;
        gemm_ws ws;
        bool ok = scratch_alloc(&sc, &ws, mk, g, sizeof(REAL), false);
        oom = !ok;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++) {
            if (!ok) continue;
            int64_t qb = t % nqb, bh = t / nqb;
            int64_t i0 = qb * BR, br = g->tq - i0 < BR ? g->tq - i0 : BR;
            FN(forward_rows)(a, &ws, &sc, bh / g->hq, bh % g->hq, i0, br);
        }
        scratch_free(&sc, &ws);
    }
    return oom ? BN_ERR_OOM : BN_OK;
}

/* One task of the backward: kv head hk of batch b with its G query heads — every dk, dv row of
 * that head and every dq row of its query heads are written by this task alone. */
static void FN(backward_group)(const attn_args *a, const gemm_ws *ws, attn_scratch *sc, int64_t b,
                               int64_t hk)
{
    const bn_attn_geom *g = a->g;
    const int64_t G = g->hq / g->hkv, d = g->d, dv = g->dv, BC = sc->bc, BR = sc->br;
    const int64_t off = g->tk - g->tq;
    const bn_tview *q = a->q, *k = a->k, *v = a->v, *o = a->out, *go = a->dout;
    const bn_tview *dq = a->dq, *dk = a->dk, *dvv = a->dv;
    REAL *Di = sc->di, *S = sc->s, *dP = sc->dp, *Pd = sc->pd;
    /* D_i = dO_i . O_i (the softmax's row term, unchanged by dropout) and dq = 0 */
    for (int64_t gi = 0; gi < G; gi++) {
        int64_t h = hk * G + gi;
        for (int64_t i = 0; i < g->tq; i++) {
            const REAL *orow = (const REAL *)o->data + b * o->strides[0] + h * o->strides[1] +
                               i * o->strides[2];
            const REAL *grow = (const REAL *)go->data + b * go->strides[0] +
                               h * go->strides[1] + i * go->strides[2];
            double s = 0;
            for (int64_t c = 0; c < dv; c++) s += (double)orow[c] * (double)grow[c];
            Di[gi * g->tq + i] = (REAL)s;
            REAL *dqr = (REAL *)dq->data + b * dq->strides[0] + h * dq->strides[1] +
                        i * dq->strides[2];
            for (int64_t c = 0; c < d; c++) dqr[c] = 0;
        }
    }
    for (int64_t j0 = 0; j0 < g->tk; j0 += BC) {
        int64_t bc = g->tk - j0 < BC ? g->tk - j0 : BC;
        const REAL *K = (const REAL *)k->data + b * k->strides[0] + hk * k->strides[1] +
                        j0 * k->strides[2];
        const REAL *V = (const REAL *)v->data + b * v->strides[0] + hk * v->strides[1] +
                        j0 * v->strides[2];
        REAL *dK = (REAL *)dk->data + b * dk->strides[0] + hk * dk->strides[1] +
                   j0 * dk->strides[2];
        REAL *dV = (REAL *)dvv->data + b * dvv->strides[0] + hk * dvv->strides[1] +
                   j0 * dvv->strides[2];
        for (int64_t r = 0; r < bc; r++) {
            for (int64_t c = 0; c < d; c++) dK[r * dk->strides[2] + c] = 0;
            for (int64_t c = 0; c < dv; c++) dV[r * dvv->strides[2] + c] = 0;
        }
        /* causal: query rows before j0 - off see none of these keys */
        int64_t istart = g->causal && j0 - off > 0 ? j0 - off : 0;
        for (int64_t gi = 0; gi < G; gi++) {
            int64_t h = hk * G + gi;
            for (int64_t i0 = istart; i0 < g->tq; i0 += BR) {
                int64_t br = g->tq - i0 < BR ? g->tq - i0 : BR;
                const REAL *Q = (const REAL *)q->data + b * q->strides[0] + h * q->strides[1] +
                                i0 * q->strides[2];
                const REAL *GO = (const REAL *)go->data + b * go->strides[0] +
                                 h * go->strides[1] + i0 * go->strides[2];
                REAL *DQ = (REAL *)dq->data + b * dq->strides[0] + h * dq->strides[1] +
                           i0 * dq->strides[2];
                const REAL *L = (const REAL *)a->lse->data + (b * g->hq + h) * g->tq + i0;
                GEMM(ws, br, bc, d, Q, q->strides[2], 1, K, 1, k->strides[2], S, BC, false);
                FN(score_block)(a, b, h, i0, br, j0, bc, S, BC);
                for (int64_t r = 0; r < br; r++) {
                    REAL *s = S + r * BC;
                    if (L[r] == (REAL)-INFINITY)
                        for (int64_t c = 0; c < bc; c++) s[c] = 0;
                    else
                        EXP_SHIFT(s, bc, L[r]);
                }
                /* dP = dO V^T */
                GEMM(ws, br, bc, dv, GO, go->strides[2], 1, V, 1, v->strides[2], dP, BC, false);
                const REAL *PW = S; /* the weights as applied to v */
                if (g->dropout_p > 0) {
                    for (int64_t r = 0; r < br; r++)
                        for (int64_t c = 0; c < bc; c++) Pd[r * BC + c] = 1;
                    FN(dropout_block)(a, b, h, i0, br, j0, bc, Pd, BC, sc->keep);
                    for (int64_t r = 0; r < br; r++)
                        for (int64_t c = 0; c < bc; c++) dP[r * BC + c] *= Pd[r * BC + c];
                    for (int64_t r = 0; r < br; r++)
                        for (int64_t c = 0; c < bc; c++) Pd[r * BC + c] *= S[r * BC + c];
                    PW = Pd;
                }
                /* dV += PW^T dO */
                GEMM(ws, bc, dv, br, PW, 1, BC, GO, go->strides[2], 1, dV, dvv->strides[2], true);
                /* dS = P (dP - D) scale, into S */
                const REAL scale = (REAL)g->scale;
                for (int64_t r = 0; r < br; r++) {
                    REAL di = Di[gi * g->tq + i0 + r];
                    REAL *s = S + r * BC, *dp = dP + r * BC;
                    for (int64_t c = 0; c < bc; c++) s[c] = s[c] * (dp[c] - di) * scale;
                }
                /* dQ += dS K;  dK += dS^T Q */
                GEMM(ws, br, d, bc, S, BC, 1, K, k->strides[2], 1, DQ, dq->strides[2], true);
                GEMM(ws, bc, d, br, S, 1, BC, Q, q->strides[2], 1, dK, dk->strides[2], true);
            }
        }
    }
}

static bn_status FN(backward)(const attn_args *a, const attn_blocks *mk)
{
    const bn_attn_geom *g = a->g;
    const int64_t tasks = g->batch * g->hkv;
    const double work = (double)g->batch * (double)g->hq * (double)g->tq * (double)g->tk *
                        (double)(g->d + g->dv);
    int oom = 0;
#pragma omp parallel if (work >= BN_ATTN_PAR_MIN_WORK && tasks > 1) reduction(|| : oom)
    {
        attn_scratch sc;
        gemm_ws ws;
        bool ok = scratch_alloc(&sc, &ws, mk, g, sizeof(REAL), true);
        oom = !ok;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++) {
            if (!ok) continue;
            FN(backward_group)(a, &ws, &sc, t / g->hkv, t % g->hkv);
        }
        scratch_free(&sc, &ws);
    }
    return oom ? BN_ERR_OOM : BN_OK;
}

#undef FN
#undef CAT
#undef CAT_
