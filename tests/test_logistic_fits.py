"""The logistic fits behind ``plcc_logistic4`` / ``plcc_logistic5`` are global and deterministic (issue 25).

Global: on inputs where the previous fit (a handful of Levenberg–Marquardt starts) stopped up to 0.049 PLCC below the
best least-squares fit that 150 random starts find, the fit now reaches that best fit within numerical tolerance.
The hard cases are sharp steps between neighbouring predictions and exponential tails (a centre beyond the data);
the reference below draws starts there too. Deterministic: the same bits with 1 or 2 BLAS threads outside the fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from distill.metrics.correlation import fit_logistic, logistic4, logistic5, plcc

CURVES = {"logistic4": logistic4, "logistic5": logistic5}
TOL = 1e-7  # PLCC: the fit may differ from the reference's optimum only in the last digits of the optimisation


def _case(seed: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions against MOS in [0, 9]: a noisy sigmoid, clusters, or heavy-tailed noise."""
    r = np.random.default_rng(seed)
    m = int(r.integers(30, 200))
    t = r.uniform(0, 9, m)
    if kind == 0:
        p = 1 / (1 + np.exp(-(t - r.uniform(2, 7)) * r.uniform(0.3, 5))) + r.normal(0, r.uniform(0.01, 0.3), m)
    elif kind == 1:
        p = np.where(t > r.uniform(2, 7), r.normal(1, 0.3, m), r.normal(0, 0.3, m)) + 0.05 * t
    else:
        p = r.normal(0, 1, m) + r.uniform(-1, 1) * t + r.standard_cauchy(m) * 0.05
    return p, t


def _reference_plcc(x: np.ndarray, y: np.ndarray, kind: str, n: int = 150) -> float:
    """PLCC of the least-squares fit of least error over ``n`` random starts (standardised units)."""
    func = CURVES[kind]
    xs, ys = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    g = np.random.default_rng(0)
    best, fitted = np.inf, None
    for _ in range(n):
        if kind == "logistic4":
            p0 = [g.uniform(-3, 3), g.uniform(-3, 3), g.uniform(-2.5, 2.5), 10 ** g.uniform(-4, 1)]
        else:
            rate = g.choice([-1, 1]) * 10 ** g.uniform(-1, 4)
            p0 = [g.uniform(-5, 5), rate, g.uniform(-2.5, 2.5), g.uniform(-1, 1), g.uniform(-1, 1)]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = optimize.curve_fit(func, xs, ys, p0=p0, maxfev=5000)
        except RuntimeError:
            continue
        with np.errstate(over="ignore"):
            f = func(xs, *params)
        sse = float(np.sum((f - ys) ** 2)) if np.all(np.isfinite(f)) else np.inf
        if sse < best:
            best, fitted = sse, f
    return float(stats.pearsonr(fitted, ys)[0])


# (seed, kind) of _case where the previous fit stopped below the best least-squares fit (found by comparing the two
# over seeds 0-39): by 0.049 (34, 2) and 0.045 (38, 2) for logistic5, 0.013 (26, 2) and 0.0038 (30, 0) for
# logistic4; and two cases a first version of the global search missed (a step fit, an interior second basin)
SLOW = pytest.mark.slow  # the 150-start reference of a 5-parameter fit takes 20-45 s on a busy 2-core machine
HARD = [pytest.param(34, 2, "logistic5", marks=SLOW), pytest.param(38, 2, "logistic5", marks=SLOW),
        pytest.param(7, 2, "logistic5", marks=SLOW), (26, 2, "logistic4"), (30, 0, "logistic4"),
        (14, 1, "logistic4")]  # fmt: skip


@pytest.mark.parametrize(("seed", "kind", "fit"), HARD)
def test_fit_is_never_below_the_best_of_many_random_starts(seed, kind, fit):
    x, y = _case(seed, kind)
    ours = plcc(x, y, fit=fit)
    assert ours >= _reference_plcc(x, y, fit) - TOL
    if fit == "logistic5":
        assert ours >= stats.pearsonr(x, y)[0] - 1e-12  # the family holds the line


def test_fit_is_bit_identical_whatever_the_callers_blas_threads():
    x, y = _case(5, 0)
    runs = []
    for threads in (1, 2, 1):
        with threadpool_limits(limits=threads):
            runs.append((fit_logistic(x, y, "logistic4").tobytes(), plcc(x, y, fit="logistic4")))
    assert runs[0] == runs[1] == runs[2]
