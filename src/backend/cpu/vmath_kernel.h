/* backend/cpu/vmath_kernel.h — the vectorised f32 math algorithms, written once over a small
 * set of vector operations and compiled per instruction set: the includer defines
 *   VT       the target attribute of every function (empty for portable C)
 *   VN(f)    the per-variant name of f
 *   W        lanes per vector; VF / VI / VM the float, int32 and mask vector types
 *   F(c)     a float constant in every lane; I(c) an int32 constant
 *   ADD SUB MUL DIV MIN MAX (MIN(a, b) = a < b ? a : b, as x86), FMA(a, b, c) = a b + c fused,
 *   ROUND (to nearest even), LT GT EQ NE (masks), SEL(m, a, b) = m ? a : b, AND_M(m1, m2) (both),
 *   FBITS_AND(a, i) FBITS_OR(a, b) (bitwise on floats), AS_I AS_F (bit casts), I_ADD I_SUB
 *   I_AND I_OR, I_SRL(i, k) I_SRA(i, k) I_SHL(i, k), I_TO_F (int to float), F_TO_I (float
 *   holding an integer to int), LOAD STORE (unaligned), HSUM_D(v) (lanes summed in double in
 *   lane order).
 * No include guard: included once per variant.
 *
 * Polynomials were fitted (relative least squares on Chebyshev nodes, coefficients rounded to
 * f32) by scripts/fit_vmath.py; their fit error is below 1e-7 relative, so the f32 evaluation
 * dominates the error. */

/* ---- exp ----------------------------------------------------------------------------------- */
/* e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln2 / 2, e^r - 1 = r + r^2 P(r) (Cephes form).
 * x is clamped to [-104, 89] (beyond: 0 or inf either way); 2^n is applied as 2^n1 2^n2 with
 * both halves normal, so results fall into the denormals with one final rounding. */
#define VM_EXP_POLY(r)                                                                             \
    FMA(FMA(FMA(FMA(FMA(F(1.984951959e-04f), r, F(1.393358805e-03f)), r, F(8.333372883e-03f)), r,  \
                F(4.166646674e-02f)),                                                              \
            r, F(1.666666716e-01f)),                                                               \
        r, F(5.0e-01f))

/* 2^n for the int32 n in [-126, 127] */
VT static inline VF VN(vm_pow2i)(VI n) { return AS_F(I_SHL(I_ADD(n, I(127)), 23)); }

/* r and n of the reduction x = n ln2 + r (x already clamped) */
VT static inline VF VN(vm_exp_reduce)(VF x, VF *n)
{
    *n = ROUND(MUL(x, F(1.44269504088896341f)));
    VF r = FMA(*n, F(-0.693359375f), x);
    return FMA(*n, F(2.12194440e-4f), r);
}

VT static inline VF VN(vm_exp)(VF x)
{
    VF xc = MIN(MAX(x, F(-104.0f)), F(89.0f));
    VF n;
    VF r = VN(vm_exp_reduce)(xc, &n);
    VF y = ADD(FMA(VM_EXP_POLY(r), MUL(r, r), r), F(1.0f)); /* e^r */
    VI ni = F_TO_I(n);
    VI n1 = I_SRA(ni, 1);
    y = MUL(MUL(y, VN(vm_pow2i)(n1)), VN(vm_pow2i)(I_SUB(ni, n1)));
    return SEL(NE(x, x), x, y);
}

/* e^x - 1 for x <= 0 (elu): e^r - 1 scaled, plus 2^n - 1, keeps small |x| exact */
VT static inline VF VN(vm_expm1_neg)(VF x)
{
    VF xc = MAX(MIN(x, F(0.0f)), F(-80.0f));
    VF n;
    VF r = VN(vm_exp_reduce)(xc, &n);
    VF y = FMA(VM_EXP_POLY(r), MUL(r, r), r); /* e^r - 1 */
    VF s = VN(vm_pow2i)(F_TO_I(n));
    y = FMA(y, s, SUB(s, F(1.0f)));
    return SEL(NE(x, x), x, y);
}

/* ---- log ----------------------------------------------------------------------------------- */
/* x = 2^e m, m in [sqrt(1/2), sqrt 2), f = m - 1, log(1 + f) = f - f^2/2 + f^3 P(f) (Cephes
 * form), log x = that + e ln2 (ln2 in two parts). Denormals are scaled by 2^23 first. */
VT static inline VF VN(vm_log)(VF x)
{
    VM tiny = LT(x, F(1.17549435e-38f));
    VF xs = SEL(tiny, MUL(x, F(8388608.0f)), x);
    VI bits = AS_I(xs);
    VF e = I_TO_F(I_SUB(I_SRL(bits, 23), I(126)));
    e = SEL(tiny, SUB(e, F(23.0f)), e);
    VF m = AS_F(I_OR(I_AND(bits, I(0x007fffff)), I(0x3f000000))); /* [0.5, 1) */
    VM low = LT(m, F(0.707106781186547524f));
    VF f = SUB(SEL(low, ADD(m, m), m), F(1.0f));
    e = SEL(low, SUB(e, F(1.0f)), e);
    VF z = MUL(f, f);
    VF p = FMA(FMA(FMA(FMA(F(6.862342358e-02f), f, F(-1.142149717e-01f)), f, F(1.169907451e-01f)),
                   f, F(-1.243492439e-01f)),
               f, F(1.424865574e-01f));
    p = FMA(FMA(FMA(FMA(p, f, F(-1.666737795e-01f)), f, F(2.000071555e-01f)), f,
                F(-2.500000298e-01f)),
            f, F(3.333333135e-01f));
    VF y = MUL(MUL(p, z), f);
    y = FMA(e, F(-2.12194440e-4f), y);
    y = FMA(z, F(-0.5f), y);
    VF r = FMA(e, F(0.693359375f), ADD(f, y));
    r = SEL(LT(x, F(0.0f)), F(NAN), r);
    r = SEL(EQ(x, F(0.0f)), F(-INFINITY), r);
    r = SEL(EQ(x, F(INFINITY)), x, r);
    return SEL(NE(x, x), x, r);
}

/* log1p(t) for t in [0, 1] (softplus): log(u) t / (u - 1) with u = 1 + t corrects the rounding
 * of u (Goldberg), exact t when u rounds to 1 */
VT static inline VF VN(vm_log1p_unit)(VF t)
{
    VF u = ADD(F(1.0f), t);
    VF d = SUB(u, F(1.0f));
    VF r = DIV(MUL(VN(vm_log)(u), t), SEL(EQ(d, F(0.0f)), F(1.0f), d));
    return SEL(EQ(d, F(0.0f)), t, r);
}

/* ---- sign helpers -------------------------------------------------------------------------- */
VT static inline VF VN(vm_abs)(VF x) { return FBITS_AND(x, I(0x7fffffff)); }
/* |a| with the sign of s */
VT static inline VF VN(vm_copysign)(VF a, VF s)
{
    return FBITS_OR(FBITS_AND(a, I(0x7fffffff)), FBITS_AND(s, I((int32_t)0x80000000u)));
}

/* ---- tanh, sigmoid ------------------------------------------------------------------------- */
/* |x| < 0.625: x + x^3 P(x^2); else sign(x) (1 - 2 / (e^{2|x|} + 1)) (inf gives 1) */
VT static inline VF VN(vm_tanh)(VF x)
{
    VF z = MUL(x, x);
    VF p =
        FMA(FMA(FMA(FMA(FMA(F(2.308035968e-03f), z, F(-8.359977044e-03f)), z, F(2.177495882e-02f)),
                    z, F(-5.396023393e-02f)),
                z, F(1.333331019e-01f)),
            z, F(-3.333333433e-01f));
    VF small = FMA(MUL(p, z), x, x);
    VF a = VN(vm_abs)(x);
    VF e = VN(vm_exp)(ADD(a, a));
    VF big = VN(vm_copysign)(SUB(F(1.0f), DIV(F(2.0f), ADD(e, F(1.0f)))), x);
    return SEL(LT(a, F(0.625f)), small, big);
}

/* 1 / (1 + e^-x) as (x >= 0 ? 1 : e) / (1 + e) with e = e^-|x|: no overflow, no cancellation */
VT static inline VF VN(vm_sigmoid)(VF x)
{
    VF e = VN(vm_exp)(SUB(F(0.0f), VN(vm_abs)(x)));
    return DIV(SEL(LT(x, F(0.0f)), e, F(1.0f)), ADD(F(1.0f), e));
}

/* ---- erf ----------------------------------------------------------------------------------- */
/* erf(x) = x P(x^2) for |x| < 1 */
VT static inline VF VN(vm_erf_small)(VF x)
{
    VF z = MUL(x, x);
    VF p = FMA(FMA(FMA(FMA(F(-9.689734725e-06f), z, F(1.127473515e-04f)), z, F(-8.485438302e-04f)),
                   z, F(5.221138708e-03f)),
               z, F(-2.686547488e-02f));
    p = FMA(FMA(FMA(p, z, F(1.128378361e-01f)), z, F(-3.761263788e-01f)), z, F(1.128379226e+00f));
    return MUL(x, p);
}

/* erfc(a) for 1 <= a <= 10: e^{-a^2} (1/a) Q(1/a), Q fitted on [1, 2.5) and [2.5, 10]. a^2 is
 * given exactly as hi + lo (gelu passes x^2 / 2 for a = |x| / sqrt 2, so the rounding of a
 * does not reach the exponent), which keeps e^{-a^2} accurate. */
VT static inline VF VN(vm_erfc_mid)(VF a, VF hi, VF lo)
{
    VM near = LT(a, F(2.5f));
#define VM_Q(c1, c2) SEL(near, F(c1), F(c2))
    VF t = DIV(F(1.0f), a);
    VF q = FMA(VM_Q(2.623345703e-02f, -7.817143798e-01f), t,
               VM_Q(-1.581461430e-01f, 1.536714554e+00f));
    q = FMA(q, t, VM_Q(3.971421719e-01f, -9.080206156e-01f));
    q = FMA(q, t, VM_Q(-5.011152625e-01f, -2.448516488e-01f));
    q = FMA(q, t, VM_Q(2.320018113e-01f, 5.025818348e-01f));
    q = FMA(q, t, VM_Q(2.149023861e-01f, -1.362049673e-02f));
    q = FMA(q, t, VM_Q(-3.606100082e-01f, -2.807474136e-01f));
    q = FMA(q, t, VM_Q(1.401340496e-02f, -7.259340055e-05f));
    q = FMA(q, t, VM_Q(5.631617904e-01f, 5.641912222e-01f));
#undef VM_Q
    VF e = VN(vm_exp)(SUB(F(0.0f), hi));
    e = FMA(e, SUB(F(0.0f), lo), e);
    return MUL(MUL(e, t), q);
}

/* erfc(a) for a clamped to [1, 10] */
VT static inline VF VN(vm_erfc_clamped)(VF a)
{
    VF ac = MIN(MAX(a, F(1.0f)), F(10.0f));
    VF hi = MUL(ac, ac);
    return VN(vm_erfc_mid)(ac, hi, FMA(ac, ac, SUB(F(0.0f), hi)));
}

VT static inline VF VN(vm_erf)(VF x)
{
    VF a = VN(vm_abs)(x);
    VF big = VN(vm_copysign)(SUB(F(1.0f), VN(vm_erfc_clamped)(a)), x);
    VF r = SEL(LT(a, F(1.0f)), VN(vm_erf_small)(x), big);
    return SEL(NE(x, x), x, r);
}

/* ---- activations --------------------------------------------------------------------------- */
/* x/2 (1 + erf(u)), u = x / sqrt 2, without cancellation for negative u (erfc(|u|) there);
 * u^2 = x^2 / 2 exactly as hi + lo */
VT static inline VF VN(vm_gelu)(VF x)
{
    VF u = MUL(x, F(0.707106781186547524f));
    VF a = VN(vm_abs)(u);
    VF x2 = MUL(x, x);
    VF hi = MUL(x2, F(0.5f)), lo = MUL(FMA(x, x, SUB(F(0.0f), x2)), F(0.5f));
    VM mid = AND_M(GT(a, F(1.0f)), LT(a, F(10.0f)));
    VF ac = MIN(MAX(a, F(1.0f)), F(10.0f)), hc = MUL(ac, ac);
    hi = SEL(mid, hi, hc);
    lo = SEL(mid, lo, FMA(ac, ac, SUB(F(0.0f), hc)));
    VF ec = VN(vm_erfc_mid)(ac, hi, lo);
    VF big = SEL(LT(u, F(0.0f)), SEL(GT(a, F(10.0f)), F(0.0f), ec), SUB(F(2.0f), ec));
    VF one_plus_erf = SEL(LT(a, F(1.0f)), ADD(F(1.0f), VN(vm_erf_small)(u)), big);
    VF r = MUL(MUL(F(0.5f), x), one_plus_erf);
    return SEL(NE(x, x), x, r);
}

/* x/2 (1 + tanh k) = x sigmoid(2k), k = sqrt(2/pi) (x + 0.044715 x^3) */
VT static inline VF VN(vm_gelu_tanh)(VF x)
{
    VF k = MUL(MUL(x, F(0.7978845608028654f)), FMA(F(0.044715f), MUL(x, x), F(1.0f)));
    return MUL(x, VN(vm_sigmoid)(ADD(k, k)));
}

VT static inline VF VN(vm_silu)(VF x)
{
    VF e = VN(vm_exp)(SUB(F(0.0f), VN(vm_abs)(x)));
    return DIV(MUL(x, SEL(LT(x, F(0.0f)), e, F(1.0f))), ADD(F(1.0f), e));
}

/* y = beta x; y > threshold ? x : (max(y, 0) + log1p(e^-|y|)) / beta */
VT static inline VF VN(vm_softplus)(VF x, float beta, float threshold)
{
    VF y = MUL(x, F(beta));
    VF sp = ADD(MAX(y, F(0.0f)), VN(vm_log1p_unit)(VN(vm_exp)(SUB(F(0.0f), VN(vm_abs)(y)))));
    VF r = SEL(GT(y, F(threshold)), x, DIV(sp, F(beta)));
    return SEL(NE(x, x), x, r);
}

VT static inline VF VN(vm_elu)(VF x, float alpha)
{
    return SEL(GT(x, F(0.0f)), x, MUL(F(alpha), VN(vm_expm1_neg)(x)));
}

/* ---- array maps ---------------------------------------------------------------------------- */
/* y = EXPR(v) over n floats; the last partial vector goes through a zero-padded buffer and the
 * same vector code */
#define VM_DEFINE_MAP(NAME, EXPR)                                                                  \
    VT static void VN(NAME)(const float *x, float *y, int64_t n, float pa, float pb)               \
    {                                                                                              \
        (void)pa, (void)pb;                                                                        \
        int64_t i = 0;                                                                             \
        for (; i + W <= n; i += W) {                                                               \
            VF v = LOAD(x + i);                                                                    \
            STORE(y + i, EXPR);                                                                    \
        }                                                                                          \
        if (i < n) {                                                                               \
            float buf[W] = {0};                                                                    \
            for (int64_t j = 0; j < n - i; j++) buf[j] = x[i + j];                                 \
            VF v = LOAD(buf);                                                                      \
            STORE(buf, EXPR);                                                                      \
            for (int64_t j = 0; j < n - i; j++) y[i + j] = buf[j];                                 \
        }                                                                                          \
    }

VM_DEFINE_MAP(map_exp, VN(vm_exp)(v))
VM_DEFINE_MAP(map_log, VN(vm_log)(v))
VM_DEFINE_MAP(map_tanh, VN(vm_tanh)(v))
VM_DEFINE_MAP(map_sigmoid, VN(vm_sigmoid)(v))
VM_DEFINE_MAP(map_erf, VN(vm_erf)(v))
VM_DEFINE_MAP(map_gelu, VN(vm_gelu)(v))
VM_DEFINE_MAP(map_gelu_tanh, VN(vm_gelu_tanh)(v))
VM_DEFINE_MAP(map_silu, VN(vm_silu)(v))
VM_DEFINE_MAP(map_softplus, VN(vm_softplus)(v, pa, pb))
VM_DEFINE_MAP(map_elu, VN(vm_elu)(v, pa))

/* ---- softmax passes ------------------------------------------------------------------------ */
VT static float VN(vm_max)(const float *x, int64_t n)
{
    VF m = F(-INFINITY);
    int64_t i = 0;
    for (; i + W <= n; i += W) m = MAX(LOAD(x + i), m);
    float lanes[W], r = -INFINITY;
    STORE(lanes, m);
    for (int j = 0; j < W; j++) r = lanes[j] > r ? lanes[j] : r;
    for (; i < n; i++) r = x[i] > r || x[i] != x[i] ? x[i] : r;
    return r;
}

#define VM_SUM_BLOCK 1024

/* e^{x - m} with x - m taken exactly as d + err (TwoSum): the f32 difference alone would carry
 * a relative error of |x - m| 2^-24 into the result */
VT static inline VF VN(vm_exp_diff)(VF x, VF m)
{
    VF d = SUB(x, m);
    VF bv = SUB(d, x);  /* the -m that went into d */
    VF av = SUB(d, bv); /* the x that went into d */
    VF err = SUB(SUB(x, av), ADD(m, bv));
    err = SEL(EQ(err, err), err, F(0.0f)); /* infinities: no correction (d says it all) */
    VF e = VN(vm_exp)(d);
    return FMA(e, err, e);
}

VT static double VN(vm_exp_sum)(const float *x, float *y, int64_t n, float m)
{
    double total = 0;
    VF vm = F(m);
    for (int64_t b = 0; b < n; b += VM_SUM_BLOCK) {
        int64_t end = n - b < VM_SUM_BLOCK ? n : b + VM_SUM_BLOCK;
        VF acc = F(0.0f);
        int64_t i = b;
        for (; i + W <= end; i += W) {
            VF e = VN(vm_exp_diff)(LOAD(x + i), vm);
            if (y) STORE(y + i, e);
            acc = ADD(acc, e);
        }
        if (i < end) { /* padding is -inf: e = 0 adds nothing */
            float buf[W];
            for (int j = 0; j < W; j++) buf[j] = i + j < end ? x[i + j] : -INFINITY;
            VF e = VN(vm_exp_diff)(LOAD(buf), vm);
            STORE(buf, e);
            if (y)
                for (int64_t j = 0; j < end - i; j++) y[i + j] = buf[j];
            acc = ADD(acc, e);
        }
        total += HSUM_D(acc);
    }
    return total;
}

#define VM_KERNELS(ISA)                                                                            \
    {                                                                                              \
        ISA, {VN(map_exp),  VN(map_log),       VN(map_tanh), VN(map_sigmoid),  VN(map_erf),        \
              VN(map_gelu), VN(map_gelu_tanh), VN(map_silu), VN(map_softplus), VN(map_elu)},       \
            VN(vm_max), VN(vm_exp_sum)                                                             \
    }
