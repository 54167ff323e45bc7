"""SR distillation baselines on the same stage taps as MiPKD: scratch, logits KD, FitNet, AT and FAKD.

All SR distillers share one evaluation path (:class:`SREval`): the network runs through
:func:`distill.models.sr.super_resolve`, which pads window-based networks (SwinIR) to their window and, with
``self_ensemble: true``, averages the x8 flips/rotations (EDSR's "+" protocol).

Feature baselines tap the K stage outputs of :class:`~distill.models.sr.StagedView` (``num_stages``, default 4,
proportional block boundaries), so every method compares the same positions:

    L = task(S(x), HR) + kd_weight · L1(S(x), T(x)) + feat_weight · Σ_k feature_loss(F_S^k, F_T^k)

with features in pixel units (stage outputs divided by the network's ``img_range``) and ``feature_loss`` FitNet
(through a trained 1×1 adapter per position, the ``helpers`` group), attention transfer or FAKD (both
width-agnostic, no adapter). The teacher is frozen; adapters are not part of the student.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.distillers.kd import LogitsKD
from distill.distillers.supervised import Supervised
from distill.models.sr.inference import super_resolve
from distill.models.sr.staged import StagedView
from distill.registry import DISTILLERS, LOSSES

__all__ = ["SRFAKD", "SRAttention", "SREval", "SRFeatureKD", "SRFitNet", "SRLogitsKD", "SRSupervised"]


class SREval:
    """Mixin of every SR distiller: evaluation through :func:`~distill.models.sr.super_resolve`."""

    self_ensemble: bool = False
    models: nn.ModuleDict
    eval_roles: Callable[[], tuple[str, ...]]

    @torch.no_grad()
    def eval_outputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """SR output of each evaluated model: window-padded, x8 self-ensembled when ``self_ensemble`` is set."""
        return {
            role: super_resolve(self.models[role], batch["input"], self.self_ensemble) for role in self.eval_roles()
        }


@DISTILLERS.register("sr_supervised")
class SRSupervised(SREval, Supervised):
    """One SR network trained on L1 to HR alone: the scratch student, and how teachers are trained here."""

    def __init__(self, models: dict[str, nn.Module], loss: str = "l1", self_ensemble: bool = False) -> None:
        super().__init__(models, loss)
        self.self_ensemble = bool(self_ensemble)


@DISTILLERS.register("sr_logits_kd")
class SRLogitsKD(SREval, LogitsKD):
    """Logits KD for SR: ``L1(S(x), HR) + weight · L1(S(x), T(x))`` from a frozen teacher."""

    def __init__(
        self,
        models: dict[str, nn.Module],
        task_loss: str = "l1",
        kd_loss: str = "l1",
        weight: float = 1.0,
        self_ensemble: bool = False,
    ) -> None:
        super().__init__(models, task_loss, kd_loss, weight)
        self.self_ensemble = bool(self_ensemble)


class SRFeatureKD(SREval, Distiller):
    """Frozen teacher → student with a feature loss at each of the K stage outputs (subclasses pick the loss)."""

    roles = ("teacher", "student")
    frozen_roles = ("teacher",)
    #: the registered (``LOSSES``) per-position feature loss ``(student_feature, teacher_feature) -> scalar``
    feature_loss_name: ClassVar[str]

    def __init__(
        self,
        models: dict[str, nn.Module],
        num_stages: int = 4,
        feat_weight: float = 1.0,
        kd_weight: float = 0.0,
        task_loss: str = "l1",
        self_ensemble: bool = False,
    ) -> None:
        super().__init__(models)
        self.views = {role: StagedView(self.models[role], num_stages) for role in self.roles}
        self.num_stages = num_stages
        self.feat_weight, self.kd_weight = float(feat_weight), float(kd_weight)
        self.task_loss = LOSSES.get(task_loss)
        self.feature_loss = LOSSES.get(self.feature_loss_name)
        self.l1 = LOSSES.get("l1")
        self.self_ensemble = bool(self_ensemble)

    def adapt(self, k: int, feature: torch.Tensor) -> torch.Tensor:
        """The student feature at position ``k`` as the loss sees it (identity unless an adapter is trained)."""
        return feature

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x = batch["input"]
        with torch.no_grad():
            y_t, _, f_t = self.views["teacher"].features(x)
        y_s, _, f_s = self.views["student"].features(x)
        f_t = [f / self.views["teacher"].unit for f in f_t]  # pixel units (see StagedView.unit)
        f_s = [f / self.views["student"].unit for f in f_s]
        feat = sum(self.feature_loss(self.adapt(k, s), t) for k, (s, t) in enumerate(zip(f_s, f_t)))
        terms = {"task": self.task_loss(y_s, batch["target"]), "feat": self.feat_weight * feat}
        if self.kd_weight:
            terms["kd"] = self.kd_weight * self.l1(y_s, y_t)
        return terms  # type: ignore[return-value]


@DISTILLERS.register("sr_fitnet")
class SRFitNet(SRFeatureKD):
    """FitNet on SR stage outputs: ``Σ_k MSE(A_k(F_S^k), F_T^k)`` through trained 1×1 adapters (``helpers``)."""

    feature_loss_name = "fitnet"

    def __init__(
        self,
        models: dict[str, nn.Module],
        num_stages: int = 4,
        feat_weight: float = 1.0,
        kd_weight: float = 0.0,
        task_loss: str = "l1",
        self_ensemble: bool = False,
    ) -> None:
        super().__init__(models, num_stages, feat_weight, kd_weight, task_loss, self_ensemble)
        c_s, c_t = self.views["student"].channels, self.views["teacher"].channels
        self.adapters = nn.ModuleList(nn.Conv2d(c_s, c_t, 1) for _ in range(num_stages))

    def adapt(self, k: int, feature: torch.Tensor) -> torch.Tensor:
        return self.adapters[k](feature)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {**super().param_groups(), "helpers": list(self.adapters.parameters())}


@DISTILLERS.register("sr_at")
class SRAttention(SRFeatureKD):
    """Attention transfer on SR stage outputs: ``Σ_k AT(F_S^k, F_T^k)`` (width-agnostic; β = 10³ by default)."""

    feature_loss_name = "attention_transfer"

    def __init__(
        self,
        models: dict[str, nn.Module],
        num_stages: int = 4,
        feat_weight: float = 1000.0,
        kd_weight: float = 0.0,
        task_loss: str = "l1",
        self_ensemble: bool = False,
    ) -> None:
        super().__init__(models, num_stages, feat_weight, kd_weight, task_loss, self_ensemble)


@DISTILLERS.register("sr_fakd")
class SRFAKD(SRFeatureKD):
    """FAKD on SR stage outputs: ``Σ_k L1(affinity(F_S^k), affinity(F_T^k))`` (width-agnostic)."""

    feature_loss_name = "fakd"
