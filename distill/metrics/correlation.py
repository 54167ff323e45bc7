"""Set metrics for score prediction (IQA): SRCC, KRCC, PLCC (optionally after a logistic fit) and RMSE.

Inputs are 1-D numpy arrays or tensors of predictions and ground-truth scores (MOS); they are converted to
float64 numpy. Degenerate inputs (fewer than 2 samples, a constant array, non-finite values) give
``float('nan')`` rather than an exception or a scipy warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats

from distill.metrics.base import register_metric

__all__ = ["FitWarning", "fit_logistic", "krcc", "logistic4", "logistic5", "plcc", "rmse", "srcc"]

FitKind = Literal["none", "logistic4", "logistic5"]


class FitWarning(RuntimeWarning):
    """A logistic fit was skipped or failed, so the fitted metric used the raw predictions (the command line says
    the first one, once)."""


_MAXFEV = 20000
_MAXFEV_EXTRA = 1000


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


def _initial(kind: str, y: np.ndarray, sign: float) -> list[float]:
    if kind == "logistic4":  # pyiqa's [max(y), min(y), mean(x), std(x)/4], ordered by the trend's sign
        hi, lo = float(y.max()), float(y.min())
        return [hi, lo, 0.0, 0.25] if sign >= 0 else [lo, hi, 0.0, 0.25]
    # amplitude = range of y (signed), centre = mean(x), slope b1·b2/4 ≈ range(y) / range(x) ≈ range(y) / 4 std(x)
    return [sign * float(np.ptp(y)), 1.0, 0.0, 0.0, 0.0]


def _starts(kind: str, x: np.ndarray, y: np.ndarray, sign: float) -> list[list[float]]:
    """Initial guesses (standardised units): :func:`_initial` first, then other centres and slopes.

    The logistic least-squares problem has local optima (a sigmoid fitted to one end of the data); the best of
    several starts is kept. The 5-parameter family also starts from the least-squares line (``b1 = 0``), so its
    fit is never worse than a linear one.
    """
    first = _initial(kind, y, sign)
    centres = [float(c) for c in np.quantile(x, [0.25, 0.5, 0.75])]
    starts = [first]
    if kind == "logistic4":
        starts += [[first[0], first[1], centre, width] for centre in centres for width in (0.1, 1.0)]
        return starts
    slope = float(np.polyfit(x, y, 1)[0])
    starts.append([0.0, 1.0, 0.0, slope, 0.0])
    starts += [[sign * float(np.ptp(y)), rate, centre, 0.0, 0.0] for centre in centres for rate in (0.5, 4.0)]
    return starts


def fit_logistic(pred: Any, target: Any, kind: FitKind | str) -> np.ndarray:
    """Map ``pred`` onto the scale of ``target`` with a least-squares logistic fit; return the mapped predictions.

    ``kind`` is ``"logistic4"`` (:func:`logistic4`), ``"logistic5"`` (:func:`logistic5`) or ``"none"``
    (predictions returned unchanged). The fit runs :func:`scipy.optimize.curve_fit` (Levenberg–Marquardt,
    ``maxfev=20000``) on standardised data ``x' = (x - mean x) / std x``, ``y' = (y - mean y) / std y``; both
    curve families are closed under these affine changes, so the optimum is that of a fit on the raw scales,
    only better conditioned. Initialisation (standardised units): 4-param ``[max y', min y', 0, 0.25]`` (pyiqa's
    ``[max y, min y, mean x, std x / 4]``, with b1/b2 swapped when the trend is decreasing); 5-param
    ``[±ptp(y'), 1, 0, 0, 0]`` (signed amplitude, centre at mean x, initial slope about ptp(y) / 4 std(x)),
    then the other starts of :func:`_starts`; the fit with the least squared error is kept.
    A failed fit (too few samples, no convergence, non-finite result) returns the raw predictions and issues a
    :class:`FitWarning` (a ``RuntimeWarning``). An inestimable covariance (scipy's ``OptimizeWarning``) is not a
    failure: only the fitted curve is used.
    """
    x, y = _pair(pred, target)
    if kind == "none":
        return x
    if kind not in _CURVES:
        raise ValueError(f"unknown fit '{kind}'; expected one of: none, {', '.join(_CURVES)}")
    func, n_params = _CURVES[kind]
    if _degenerate(x, y) or x.size < n_params:
        warnings.warn(
            f"{kind} fit skipped ({x.size} samples or constant predictions); metrics with a {kind} fit use the raw "
            "predictions where it cannot be fitted",
            FitWarning,
            stacklevel=2,
        )
        return x
    mx, sx, my, sy = x.mean(), x.std(), y.mean(), y.std()
    xs, ys = (x - mx) / sx, (y - my) / sy
    sign = 1.0 if np.corrcoef(xs, ys)[0, 1] >= 0 else -1.0
    best, best_sse, error = None, np.inf, None
    for i, p0 in enumerate(_starts(kind, xs, ys, sign)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                maxfev = _MAXFEV if i == 0 else _MAXFEV_EXTRA  # the extra starts only refine, cheaply
                params, _ = optimize.curve_fit(func, xs, ys, p0=p0, maxfev=maxfev)
            fitted = func(xs, *params)
            if not np.all(np.isfinite(fitted)):
                raise RuntimeError("non-finite fitted values")
        except (RuntimeError, ValueError, TypeError) as err:
            error = err
            continue
        sse = float(np.sum((fitted - ys) ** 2))
        if sse < best_sse:
            best, best_sse = fitted, sse
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


@register_metric("plcc", "set")
@register_metric("plcc_logistic4", "set", fit="logistic4")
@register_metric("plcc_logistic5", "set", fit="logistic5")
def plcc(pred: Any, target: Any, fit: FitKind | str = "none") -> float:
    """Pearson linear correlation coefficient (PLCC), optionally after a logistic mapping (:func:`fit_logistic`)."""
    p, t = _pair(pred, target)
    if _degenerate(p, t):
        return float("nan")
    mapped = fit_logistic(p, t, fit)
    return float("nan") if _degenerate(mapped) else _quiet(stats.pearsonr, mapped, t)


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
        p = fit_logistic(p, t, fit)
    return float(np.sqrt(np.mean((p - t) ** 2)))
