#!/usr/bin/python3
"""scripts/fit_vmath.py — fits the polynomial coefficients of src/backend/cpu/vmath_kernel.h
(issue 4's vectorised f32 math). Relative least squares on 3000 Chebyshev nodes against mpmath
at 40 digits, coefficients rounded to f32, highest degree first (Horner order); prints each fit's
worst relative error with the f32 coefficients. Run: /usr/bin/python3 scripts/fit_vmath.py
"""
import mpmath
import numpy as np
from mpmath import mpf

mpmath.mp.dps = 40


def fit(f, lo, hi, deg, var, n=3000):
    k = np.arange(n)
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)
    y = np.array([float(f(mpf(v))) for v in x])
    a = np.vander(var(x), deg + 1)
    w = 1 / np.abs(y)
    c = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)[0]
    c32 = c.astype(np.float32).astype(np.float64)
    return c32, np.max(np.abs(a @ c32 - y) / np.abs(y))


def show(name, fitted):
    c, err = fitted
    print(f"{name}: worst relative error {err:.3g}")
    print("   " + ", ".join(f"{v:.9e}f" for v in c))


def ident(x):
    return x


def square(x):
    return x * x


def recip(x):
    return 1 / x


show("exp: (e^r - 1 - r) / r^2, |r| <= ln2/2",
     fit(lambda r: (mpmath.exp(r) - 1 - r) / r**2, -0.3466, 0.3466, 5, ident))
show("log: (log1p f - f + f^2/2) / f^3, f in [sqrt(1/2) - 1, sqrt 2 - 1]",
     fit(lambda f: (mpmath.log1p(f) - f + f**2 / 2) / f**3, 0.70710678 - 1, 1.41421357 - 1, 8,
         ident))
show("tanh: (tanh x - x) / x^3 in x^2, |x| < 0.625",
     fit(lambda x: (mpmath.tanh(x) - x) / x**3, 1e-4, 0.625, 5, square))
show("erf: erf(x) / x in x^2, |x| < 1", fit(lambda x: mpmath.erf(x) / x, 1e-4, 1.0, 7, square))
for lo, hi in ((1.0, 2.5), (2.5, 10.0)):
    show(f"erfc: x e^(x^2) erfc(x) in 1/x, x in [{lo}, {hi}]",
         fit(lambda x: mpmath.erfc(x) * mpmath.exp(x * x) * x, lo, hi, 8, recip))
