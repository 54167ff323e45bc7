"""CQD — cross quality distillation (Su & Maji, "Adapting models to signal degradation using distillation", BMVC 2017).

A teacher f_A trained on clean images x (domain A, e.g. bounding-box crops) stays frozen; a student f_B learns on the
degraded view z = g(x) of the same image (domain B) from the labels and from the teacher's soft targets::

    L = CE(softmax(s), y) + lambda · H(softmax(t / T), softmax(s / T)),   t = f_A(x), s = f_B(z)
    H(p, q) = −Σ_c p_c log q_c                                          (no T² factor; T = 10, lambda = 200 on CUB)

as in the authors' code (``vl_nndistillloss.m``). The teacher's outputs depend only on the clean view, so the
distiller declares them cacheable: the engine computes them once per training image (``train.teacher_cache``,
:mod:`distill.engine.teacher_cache`) and passes them as ``batch["cached"]["teacher"]``; without them (``online``,
or outside the engine) the teacher runs on ``batch["input_clean"]`` each step. Teacher and student may be
different architectures (VGG-16 → VGG-M in the paper's model-compression table).

Baselines of the paper's tables use the same datasets and the ``supervised`` distiller (oracle: train and test on A;
fine-tuning: train on B; data augmentation: ``mode: union``; staged training and A-initialised CQD: a student with
``pretrained:`` the oracle's ``student.pt``). The multi-resolution model trains a quality predictor
(:class:`QualityRouter`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.distillers.head_groups import split_head_groups
from distill.errors import DataError
from distill.models.recognition.router import RoutedClassifier
from distill.registry import DISTILLERS, LOSSES, set_spec, spec_of

__all__ = ["CQD", "QualityRouter"]


def _require(batch: dict[str, Any], key: str, who: str, hint: str) -> torch.Tensor:
    if key not in batch:
        raise DataError(f"{who} needs batch['{key}'] ({hint}); the dataset's items have {sorted(batch)}")
    return batch[key]


@DISTILLERS.register("cqd")
class CQD(Distiller):
    """Cross quality distillation: frozen teacher on the clean view, student on the degraded view (Su & Maji 2017)."""

    roles = ("teacher", "student")
    frozen_roles = ("teacher",)
    #: the engine may precompute the teacher's outputs on this batch key once per training item
    cacheable_inputs: ClassVar[dict[str, str]] = {"teacher": "input_clean"}

    def __init__(
        self,
        models: dict[str, nn.Module],
        temperature: float = 10.0,
        weight: float = 200.0,
        task_weight: float = 1.0,
        eval_teacher: bool = False,
        head_groups: bool = False,
    ) -> None:
        super().__init__(models)
        if not temperature > 0:
            raise ValueError(f"cqd: temperature must be > 0, got {temperature}")
        self.temperature, self.weight, self.task_weight = float(temperature), float(weight), float(task_weight)
        self.eval_teacher = bool(eval_teacher)
        self.cross_entropy, self.soft_target_ce = LOSSES.get("cross_entropy"), LOSSES.get("soft_target_ce")
        self.head_groups = bool(head_groups)
        if self.head_groups:
            self.param_groups()  # a model without a last layer fails here, at build time

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """The student; with ``head_groups``, its last-layer weight and bias as groups of their own (the official
        code's fc8 learning-rate multipliers 10/20 and weight-decay multipliers 1/0 are their ``optim:`` entries)."""
        groups = super().param_groups()
        return split_head_groups(groups, self.models["student"], "student") if self.head_groups else groups

    def teacher_logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """The teacher's logits on the clean views: cached by the engine when available, else computed now."""
        cached = batch.get("cached")
        if cached is not None and "teacher" in cached:
            return cached["teacher"]
        clean = _require(batch, "input_clean", "cqd", "the clean view: use a paired dataset such as cub200_paired")
        return self.frozen_forward("teacher", clean)

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        s = self.models["student"](batch["input"])
        t = self.teacher_logits(batch).to(s.dtype)
        return {
            "task": self.task_weight * self.cross_entropy(s, batch["target"]),
            "kd": self.weight * self.soft_target_ce(s, t, self.temperature),
        }

    def eval_roles(self) -> tuple[str, ...]:
        """The student; also the teacher on the same (degraded) input with ``eval_teacher`` — "no adaptation"."""
        return ("student", "teacher") if self.eval_teacher else ("student",)


@DISTILLERS.register("quality_router")
class QualityRouter(Distiller):
    """CQD's multi-resolution model: train a quality predictor; route each image to the high- or low-quality expert.

    Roles: ``predictor`` (trained with cross-entropy on ``batch["quality"]``: 0 = high / clean, 1 = low / degraded)
    and the frozen experts ``high`` (e.g. the model trained on high-resolution images) and ``low`` (e.g. the CQD
    student), both loaded with ``pretrained:``. Evaluation reports, on the same images: ``routed`` (the predictor's
    choice), ``oracle_routed`` (the true quality's expert), ``high`` and ``low`` alone. The deployable model is the
    whole :class:`~distill.models.recognition.router.RoutedClassifier`.
    """

    roles = ("predictor", "high", "low")
    frozen_roles = ("high", "low")
    student_role = "predictor"

    def __init__(self, models: dict[str, nn.Module]) -> None:
        super().__init__(models)
        self.cross_entropy = LOSSES.get("cross_entropy")

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        quality = _require(batch, "quality", "quality_router", "0 = high/clean, 1 = low/degraded; cub200 items have it")
        return {"quality": self.cross_entropy(self.models["predictor"](batch["input"]), quality)}

    def router(self) -> RoutedClassifier:
        """Predictor + experts as one module (sharing this distiller's modules, not copies)."""
        routed = RoutedClassifier(self.models["predictor"], [self.models["high"], self.models["low"]])
        specs = [spec_of(self.models[r]) for r in self.roles]
        if all(specs):
            experts = [_without_weights(specs[1]), _without_weights(specs[2])]
            set_spec(routed, "routed_classifier", {"predictor": _without_weights(specs[0]), "experts": experts})
        return routed

    @torch.no_grad()
    def eval_outputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x = batch["input"]
        high, low = self.models["high"](x), self.models["low"](x)
        out = {"routed": self.router()(x), "high": high, "low": low}  # the deployable module itself
        if "quality" in batch:
            truth = torch.as_tensor(batch["quality"], device=x.device).view(-1, 1)
            out["oracle_routed"] = torch.where(truth == 0, high, low)
        return out

    def deployable(self) -> nn.Module:
        return self.router()


def _without_weights(spec: dict[str, Any]) -> dict[str, Any]:
    """A model spec with its ``pretrained`` file dropped: the routed model's state dict holds every weight."""
    return {"name": spec["name"], "args": {k: (None if "pretrained" in k else v) for k, v in spec["args"].items()}}
