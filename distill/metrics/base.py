"""The metric contract used by the evaluator.

Two kinds of metric exist:

* ``"set"`` metrics (SRCC, PLCC, KRCC, RMSE) need every prediction of the split at once:
  ``fn(pred: np.ndarray[N], target: np.ndarray[N], **kw) -> float``.
* ``"sample"`` metrics (PSNR, SSIM, top-k) are computed per sample and averaged:
  ``fn(pred: Tensor[B, ...], target: Tensor[B, ...], **kw) -> Tensor[B]``.

Either kind can be grouped by a metadata key (e.g. per distortion type) by the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from distill.registry import METRICS, first_doc_line

MetricKind = Literal["set", "sample"]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its function, kind, direction and fixed keyword arguments."""

    name: str
    fn: Callable[..., Any]
    kind: MetricKind
    higher_is_better: bool = True
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, pred: Any, target: Any, **kwargs: Any) -> Any:
        return self.fn(pred, target, **{**self.kwargs, **kwargs})


def register_metric(
    name: str, kind: MetricKind, *, higher_is_better: bool = True, **fixed: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` in :data:`~distill.registry.METRICS` as ``name`` and return ``fn`` unchanged.

    The same function may be registered several times under different names with different ``fixed`` kwargs
    (e.g. ``plcc`` and ``plcc_logistic4``).
    """

    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        METRICS.register(
            Metric(name, fn, kind, higher_is_better, dict(fixed)), name=name, description=first_doc_line(fn)
        )
        return fn

    return add
