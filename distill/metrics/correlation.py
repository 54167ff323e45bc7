"""Set metrics for score prediction (IQA): SRCC, KRCC, PLCC (optionally after a logistic fit) and RMSE.

Inputs are 1-D numpy arrays or tensors of predictions and ground-truth scores (MOS); they are converted to
float64 numpy. Degenerate inputs (fewer than 2 samples, a constant array, non-finite values) give
``float('nan')`` rather than an exception or a scipy warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from distill.metrics.base import register_metric

__all__ = ["FitWarning", "fit_logistic", "krcc", "logistic4", "logistic5", "plcc", "rmse", "srcc"]

FitKind = Literal["none", "logistic4", "logistic5"]


class FitWarning(RuntimeWarning):
    """A logistic fit was skipped or failed, so the fitted metric used the raw predictions (the command line says
    the first one, once)."""


_MAXFEV = 1000  # Levenberg–Marquardt evaluations per polish (it starts next to an optimum)


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _pair(pred: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_array(pred), _as_array(target)
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in length: {p.size} vs {t.size}")
    return p, t


def _degenerate(*arrays: np.ndarray) -> bool:
    """Fewer than 2 samples, a non-finite value or a constant array: correlations are undefined."""
    return any(a.size < 2 or not np.all(np.isfinite(a)) or np.ptp(a) == 0 for a in arrays)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """4-parameter logistic (pyiqa's convention): ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``."""
    with np.errstate(over="ignore"):
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / np.abs(b4))) + b2


def logistic5(x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """5-parameter logistic (VQEG / Sheikh et al. 2006): ``b1 (0.5 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5``."""
    with np.errstate(over="ignore"):
        return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5


_CURVES: dict[str, tuple[Callable[..., np.ndarray], int]] = {"logistic4": (logistic4, 4), "logistic5": (logistic5, 5)}


# Global search of the logistic fits: for a fixed centre and rate both curves are linear in their other parameters
# (logistic4: amplitude and offset; logistic5: amplitude, slope and offset), so the least-squares optimum over those
# is closed-form ("variable projection"). Searched exhaustively: a fixed grid of centres (quantiles of x) × rates
# (log-spaced, standardised units), and the limit of an infinite rate — a step between any two neighbouring
# predictions — and centres beyond the data at each rate, where the curve is an exponential on the data (the other
# limit where optima of some inputs lie). The best two grid points are refined over (centre, log rate) by
# Nelder–Mead, and those, the best grid points and the best steps are polished by Levenberg–Marquardt.
_GRID_QUANTILES = np.linspace(0.0, 1.0, 41)
_GRID_RATES = np.logspace(-2.0, 2.0, 41)  # 0.01 .. 100 per standard deviation of x
_GRID_REFINE = 6  # best local minima of the grid polished, and as many of the steps
_NM_REFINE = 2  # best grid points refined by Nelder–Mead first
_TAIL = 6.0  # beyond-data centres sit this many 1/rate outside the data: the sigmoid is e^-6 .. 0 there
_STEP_SHARPNESS = 40.0  # a step's rate x half the gap it sits in: the sigmoid is within e^-40 of 0/1 at both sides
_FIT_THREADS = 1  # BLAS threads inside a fit: the same summation order on every run


def _solve(
    kind: str, n: int, mean: np.ndarray, var: np.ndarray, sy: np.ndarray, sx: np.ndarray, xy: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form linear parameters for bases with moments ``mean``, ``var`` (of the basis), ``sy``, ``sx`` (its
    covariances with the standardised y and x): ``(sse, amplitude, slope, offset)``; slope is 0 for logistic4."""
    ok = var > 1e-12
    if kind == "logistic4":  # f = a s + c: explained variance cov(s, y)^2 / var(s)
        amp = np.where(ok, sy / np.where(ok, var, 1.0), 0.0)
        return n * (1.0 - amp * sy), amp, np.zeros_like(amp), -amp * mean
    # logistic5: f = b1 (s - 0.5) + b4 x + b5 with x standardised (mean 0, variance 1)
    det = var - sx * sx
    full = ok & (det > 1e-12 * np.maximum(var, 1e-300))
    amp = np.where(full, (sy - sx * xy) / np.where(full, det, 1.0), 0.0)
    slope = xy - sx * amp
    return n * (1.0 - (slope * xy + amp * sy)), amp, slope, -amp * (mean - 0.5)


def _params(kind: str, amp: float, slope: float, offset: float, centre: float, rate: float) -> list[float]:
    if kind == "logistic4":  # (b1 - b2) s + b2
        return [float(amp + offset), float(offset), float(centre), float(1.0 / rate)]
    return [float(amp), float(rate), float(centre), float(slope), float(offset)]


def _project(kind: str, x: np.ndarray, y: np.ndarray, centres: np.ndarray, rate: float) -> tuple[np.ndarray, list]:
    """For each centre at one rate: the least squared error (standardised ``x``, ``y``) and the curve's parameters
    with its linear ones solved in closed form."""
    n = x.size
    with np.errstate(over="ignore"):
        basis = 1.0 / (1.0 + np.exp(-rate * (x[None, :] - centres[:, None])))  # [centres, n]
    mean = basis.mean(axis=1)
    dev = basis - mean[:, None]
    var = np.einsum("ij,ij->i", dev, dev) / n
    sse, amp, slope, offset = _solve(kind, n, mean, var, dev @ y / n, dev @ x / n, float(x @ y) / n)
    return sse, [_params(kind, amp[j], slope[j], offset[j], centres[j], rate) for j in range(centres.size)]


def _local_minima(sse: np.ndarray) -> np.ndarray:
    """Flat indices of the entries of ``sse`` (1-D or 2-D) no greater than any neighbour (8-neighbourhood), ordered by
    value then index: one candidate per basin of the grid instead of several neighbours of one."""
    grid = np.atleast_2d(sse)
    padded = np.pad(grid, 1, constant_values=np.inf)
    keep = np.ones(grid.shape, dtype=bool)
    rows, cols = grid.shape
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                keep &= grid <= padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    flat = np.nonzero(keep.reshape(-1) & np.isfinite(grid.reshape(-1)))[0]
    return flat[np.lexsort((flat, grid.reshape(-1)[flat]))]


def _steps(kind: str, x: np.ndarray, y: np.ndarray) -> list[list[float]]:
    """The best steps between neighbouring distinct values of x (the infinite-rate limit; O(n) by cumulative sums),
    one per basin, as curve parameters with a finite rate that makes the sigmoid that step to machine precision."""
    n = x.size
    order = np.argsort(x, kind="stable")
    xo, yo = x[order], y[order]
    k = np.nonzero(np.diff(xo) > 0)[0]  # a step after sorted position k: the n - k - 1 points above are 1
    if k.size == 0:
        return []
    above = (n - k - 1).astype(np.float64)
    mean = above / n
    var = mean * (1.0 - mean)
    sy = (np.sum(yo) - np.cumsum(yo)[k]) / n  # sum of y above, over n (y has mean 0)
    sx = (np.sum(xo) - np.cumsum(xo)[k]) / n
    sse, amp, slope, offset = _solve(kind, n, mean, var, sy, sx, float(x @ y) / n)
    centres = (xo[k] + xo[k + 1]) / 2.0
    rates = _STEP_SHARPNESS / ((xo[k + 1] - xo[k]) / 2.0)
    best = _local_minima(sse)[:_GRID_REFINE]
    return [_params(kind, amp[j], slope[j], offset[j], centres[j], rates[j]) for j in best]


def _grid_fits(kind: str, x: np.ndarray, y: np.ndarray) -> tuple[list[list[float]], list[list[float]]]:
    """The curve parameters of the best :data:`_GRID_REFINE` local minima of the grid and of the steps, each best
    first (ties: grid order)."""
    inside = np.quantile(x, _GRID_QUANTILES)
    rows, params = [], []
    for rate in _GRID_RATES:
        centres = np.concatenate([[x.min() - _TAIL / rate], inside, [x.max() + _TAIL / rate]])
        sse, row = _project(kind, x, y, centres, float(rate))
        rows.append(sse)
        params += row
    best = _local_minima(np.array(rows))[:_GRID_REFINE]
    return [params[j] for j in best], _steps(kind, x, y)


def _refine(kind: str, x: np.ndarray, y: np.ndarray, params: list[float]) -> list[float]:
    """Nelder–Mead over (centre, log rate) of the projected error from a grid point; the curve's parameters."""
    centre, rate = (params[2], 1.0 / params[3]) if kind == "logistic4" else (params[2], params[1])

    def sse(v: np.ndarray) -> float:
        value = float(_project(kind, x, y, np.array([v[0]]), float(np.exp(np.clip(v[1], -30.0, 30.0))))[0][0])
        return value if np.isfinite(value) else np.inf

    res = optimize.minimize(sse, np.array([centre, np.log(rate)]), method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-10 * x.size, "maxiter": 1000})  # fmt: skip
    return _project(kind, x, y, np.array([float(res.x[0])]), float(np.exp(np.clip(res.x[1], -30.0, 30.0))))[1][0]


def _fit_standardised(kind: str, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray | None, Exception | None]:
    """The fitted values of least squared error over every candidate, in a fixed order (first of equals)."""
    func, _ = _CURVES[kind]
    grid, steps = _grid_fits(kind, xs, ys)
    refined = [_refine(kind, xs, ys, p) for p in grid[:_NM_REFINE]]
    starts = [*refined, *grid, *steps]  # each is a fit itself, and each is polished
    with np.errstate(over="ignore", invalid="ignore"):
        candidates = [func(xs, *p) for p in starts]
    error = None
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                params, _ = optimize.curve_fit(func, xs, ys, p0=p0, maxfev=_MAXFEV)
            candidates.append(func(xs, *params))
        except (RuntimeError, ValueError, TypeError) as err:
            error = err
    best, best_sse = None, np.inf
    for fitted in candidates:
        if not np.all(np.isfinite(fitted)):
            continue
        sse = float(np.sum((fitted - ys) ** 2))
        if sse < best_sse:  # strict: the first of equal fits, in the fixed order above
            best, best_sse = fitted, sse
    return best, error


def fit_logistic(pred: Any, target: Any, kind: FitKind | str) -> np.ndarray:
    """Map ``pred`` onto the scale of ``target`` with a least-squares logistic fit; return the mapped predictions.

    ``kind`` is ``"logistic4"`` (:func:`logistic4`), ``"logistic5"`` (:func:`logistic5`) or ``"none"``
    (predictions returned unchanged). The fit works on standardised data ``x' = (x - mean x) / std x``,
    ``y' = (y - mean y) / std y``; both curve families are closed under these affine changes, so the optimum is
    that of a fit on the raw scales, only better conditioned. It is global and deterministic, with fixed starts:

    * every centre (41 quantiles of x, extremes included) × rate (41, log-spaced from 0.01 to 100 per std of x),
      and every step between two neighbouring values of x (the infinite-rate limit), with the parameters in which
      the curve is linear solved in closed form;
      and at each rate two centres beyond the data (the curve is then an exponential on the data);
    * the best 2 local minima of the grid refined by Nelder–Mead over (centre, log rate); those, the best 6 local
      minima of the grid and of the steps polished by :func:`scipy.optimize.curve_fit` (Levenberg–Marquardt) on all
      parameters;
    * the candidate (grid point, step, refined or polished fit) with the least squared error is kept, the first of
      equals in that fixed order. Both families can scale and shift their output, so the least squared error is
      also the highest PLCC among the family's curves; and the 5-parameter family contains the line (``b1 = 0``),
      so its PLCC is never below the raw PLCC.

    BLAS runs on one thread inside the fit, so the same input gives the same bits on every run. A fit skipped (too
    few samples, constant input) or failed (non-finite result) returns the raw predictions and issues a
    :class:`FitWarning` (a ``RuntimeWarning``).
    """
    x, y = _pair(pred, target)
    if kind == "none":
        return x
    if kind not in _CURVES:
        raise ValueError(f"unknown fit '{kind}'; expected one of: none, {', '.join(_CURVES)}")
    _, n_params = _CURVES[kind]
    if _degenerate(x, y) or x.size < n_params:
        warnings.warn(
            f"{kind} fit skipped ({x.size} samples or constant predictions); metrics with a {kind} fit use the raw "
            "predictions where it cannot be fitted",
            FitWarning,
            stacklevel=2,
        )
        return x
    with threadpool_limits(limits=_FIT_THREADS):
        mx, sx, my, sy = x.mean(), x.std(), y.mean(), y.std()
        xs, ys = (x - mx) / sx, (y - my) / sy
        best, error = _fit_standardised(kind, xs, ys)
    if best is None:
        reason = " ".join(str(error).split()).rstrip(".")
        warnings.warn(
            f"{kind} fit failed ({reason}), typically on the nearly constant predictions of early training; metrics "
            f"with a {kind} fit use the raw predictions where it fails",
            FitWarning,
            stacklevel=2,
        )
        return x
    return best * sy + my


def _quiet(fn: Callable[..., Any], *args: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", stats.NearConstantInputWarning)  # early-training predictions; still computed
        with np.errstate(all="ignore"):
            return float(fn(*args)[0])


@register_metric("srcc", "set")
def srcc(pred: Any, target: Any) -> float:
    """Spearman rank-order correlation coefficient (SRCC) between predicted and ground-truth scores."""
    p, t = _pair(pred, target)
    return float("nan") if _degenerate(p, t) else _quiet(stats.spearmanr, p, t)


@register_metric("krcc", "set")
def krcc(pred: Any, target: Any) -> float:
    """Kendall rank-order correlation coefficient (KRCC, tau-b) between predicted and ground-truth scores."""
    p, t = _pair(pred, target)
    return float("nan") if _degenerate(p, t) else _quiet(stats.kendalltau, p, t)


def _settled(value: float) -> float:
    """A metric after a logistic fit, to 12 significant digits. Below that it carries the float noise of the fit's
    vectorised sums, whose order numpy's SIMD kernels choose by the arrays' memory alignment (not controllable by
    thread counts): the same run can differ in the 16th digit from one process to the next. Rounded, results.json
    and metrics.jsonl are byte-identical run to run (tests/test_run_determinism.py, tests/test_resume_anytime.py)."""
    return value if not math.isfinite(value) else float(f"{value:.12g}")


@register_metric("plcc", "set")
@register_metric("plcc_logistic4", "set", fit="logistic4")
@register_metric("plcc_logistic5", "set", fit="logistic5")
def plcc(pred: Any, target: Any, fit: FitKind | str = "none") -> float:
    """Pearson linear correlation coefficient (PLCC), optionally after a logistic mapping (:func:`fit_logistic`)."""
    p, t = _pair(pred, target)
    if _degenerate(p, t):
        return float("nan")
    with threadpool_limits(limits=_FIT_THREADS):  # the correlation of a fit, too, sums in one fixed order
        mapped = fit_logistic(p, t, fit)
        value = float("nan") if _degenerate(mapped) else _quiet(stats.pearsonr, mapped, t)
    return value if fit == "none" else _settled(value)


@register_metric("rmse", "set", higher_is_better=False)
def rmse(pred: Any, target: Any, fit: FitKind | str = "none") -> float:
    """Root mean squared error between (optionally logistic-mapped, :func:`fit_logistic`) predictions and targets.

    Empty or non-finite inputs give nan; with a fit, so do degenerate inputs (fewer than 2 samples, constant).
    """
    p, t = _pair(pred, target)
    if p.size == 0 or not (np.all(np.isfinite(p)) and np.all(np.isfinite(t))):
        return float("nan")
    if fit != "none":
        if _degenerate(p, t):
            return float("nan")
        with threadpool_limits(limits=_FIT_THREADS):
            p = fit_logistic(p, t, fit)
        return _settled(float(np.sqrt(np.mean((p - t) ** 2))))
    return float(np.sqrt(np.mean((p - t) ** 2)))
