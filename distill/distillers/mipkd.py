"""MiPKD — multi-granularity Mixture of Priors KD for super-resolution (Li et al., ICLR 2025, arXiv 2404.02573).

A frozen SR teacher T and a compressed student S (fewer blocks, fewer channels or both) are tapped at K positions,
the ends of K body stages split proportionally (:class:`~distill.models.sr.StagedView`). Per step::

    L = L1(S(x), HR) + kd_weight · L1(S(x), T(x)) + feat_weight · L_feat + block_weight · L_block

**Feature prior mixer** (position k; ``feature_mixer``). Encoders E_T^k: C_T→C_z and E_S^k: C_S→C_z (two 3×3 convs
with a ReLU between; ``encoder: shared`` uses E_T for both after a 1×1 C_S→C_T projection) map the teacher and
student stage outputs into one latent space; a fresh random mask M (``mask``: ``random3d`` B×C_z×H×W,
``channel`` B×C_z×1×1 or ``spatial`` B×1×H×W; an element takes the teacher's latent with probability
``mask_prob``) mixes them; the decoder D^k: C_z→C_T (two 3×3 convs) reconstructs the teacher feature::

    F̂^k = D^k(M ⊙ E_T^k(F_T^k) + (1 − M) ⊙ E_S^k(F_S^k))
    L_feat = Σ_k L1(F̂^k, F_T^k) + ae_weight · L1(D^k(E_T^k(F_T^k)), F_T^k)      (auto-encoder auxiliary term)

The two parts are reported as the loss terms ``feat`` and ``ae`` (both already multiplied by ``feat_weight``).
Features are compared in pixel units: stage outputs divided by the network's ``img_range`` (255 for EDSR/RCAN,
1 for SwinIR), so the weights balance against the [0, 1] L1 reconstruction term.

**Block prior mixer** (``block_mixer``). A composite network is drawn every step: it enters through the student's
head and first stage; after each stage k < K, stage k+1 is the teacher's with probability ``block_prob``, else the
student's. The feature crossing boundary k is the mixer's F̂^k of the composite's own feature (teacher space; with
``block_through_mixer: false`` or without a feature mixer it crosses raw). A 1×1 adapter maps teacher space → student
space before a student stage (and student → teacher before a teacher stage when crossing raw). The composite ends in
the tail of the network that ran the last stage, with that network's own head skip, and
``L_block = L1(Y_mix, T(x))``. Gradients reach the student's stages and the helpers through teacher stages, never
the teacher's parameters.

Encoders, decoders and adapters form the ``helpers`` optimizer group; :meth:`deployable` is the bare student.
Where the paper is silent these choices are ours (each named in this module's docstrings) and every one is an argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from distill.distillers.base import Distiller
from distill.distillers.sr_baselines import SREval
from distill.models.sr.staged import HeadContext, StagedView
from distill.registry import DISTILLERS, LOSSES

__all__ = ["MiPKD", "PriorMixer", "random_mask"]

MaskKind = Literal["random3d", "channel", "spatial"]


def _two_convs(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1)
    )


def random_mask(like: torch.Tensor, kind: MaskKind = "random3d", prob: float = 0.5) -> torch.Tensor:
    """A 0/1 mask broadcastable to ``like`` (B×C×H×W); 1 (teacher) with probability ``prob``, drawn fresh.

    ``random3d``: one draw per element; ``channel``: per sample and channel (B×C×1×1); ``spatial``: per sample and
    position (B×1×H×W). Draws from the global torch RNG, which the engine seeds and checkpoints.
    """
    b, c, h, w = like.shape
    shape = {"random3d": (b, c, h, w), "channel": (b, c, 1, 1), "spatial": (b, 1, h, w)}.get(kind)
    if shape is None:
        raise ValueError(f"unknown mask kind '{kind}'; choose random3d, channel or spatial")
    return (torch.rand(shape, device=like.device) < prob).to(like.dtype)


class PriorMixer(nn.Module):
    """The feature prior mixer of one position: encoders into a shared latent space and a decoder to teacher space."""

    def __init__(self, c_teacher: int, c_student: int, c_latent: int, shared_encoder: bool = False) -> None:
        super().__init__()
        self.enc_teacher = _two_convs(c_teacher, c_latent)
        if shared_encoder:
            self.enc_student: nn.Module | None = None
            self.project = nn.Conv2d(c_student, c_teacher, 1) if c_student != c_teacher else nn.Identity()
        else:
            self.enc_student = _two_convs(c_student, c_latent)
        self.decoder = _two_convs(c_latent, c_teacher)

    def encode_student(self, f: torch.Tensor) -> torch.Tensor:
        """Student-space feature → latent (E_S, or the shared E_T after the 1×1 projection)."""
        if self.enc_student is None:
            return self.enc_teacher(self.project(f))
        return self.enc_student(f)

    def mix(self, z_teacher: torch.Tensor, z_other: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``D(M ⊙ z_teacher + (1 − M) ⊙ z_other)``: the mixed feature in teacher space."""
        if mask.requires_grad:
            return self.decoder(mask * z_teacher + (1 - mask) * z_other)
        return self.decoder(_MaskMix.apply(z_teacher, z_other, mask))


class _MaskMix(torch.autograd.Function):
    """``M·a + (1 − M)·b`` for a constant mask, keeping only ``M`` for backward (autograd would keep ``M`` and
    ``1 − M``); the gradients ``g·M`` and ``g − g·M`` equal ``g·(1 − M)`` exactly for a 0/1 mask."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return mask * a + (1 - mask) * b

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        grad_a = grad * mask
        return grad_a, grad - grad_a, None


@DISTILLERS.register("mipkd")
class MiPKD(SREval, Distiller):
    """MiPKD: feature prior mixer + block prior mixer from a frozen SR teacher into a compressed student."""

    roles = ("teacher", "student")
    frozen_roles = ("teacher",)
    has_stochastic_paths = True

    def __init__(
        self,
        models: dict[str, nn.Module],
        num_stages: int = 4,
        kd_weight: float = 1.0,
        feat_weight: float = 1.0,
        block_weight: float = 0.1,
        ae_weight: float = 1.0,
        feature_mixer: bool = True,
        block_mixer: bool = True,
        block_through_mixer: bool = True,
        encoder: Literal["separate", "shared"] = "separate",
        mask: MaskKind = "random3d",
        mask_prob: float = 0.5,
        block_prob: float = 0.5,
        latent_channels: int | None = None,
        task_loss: str = "l1",
        self_ensemble: bool = False,
    ) -> None:
        super().__init__(models)
        if encoder not in ("separate", "shared"):
            raise ValueError(f"mipkd: encoder '{encoder}' is not one of separate, shared")
        if mask not in ("random3d", "channel", "spatial"):
            raise ValueError(f"mipkd: mask '{mask}' is not one of random3d, channel, spatial")
        for name, p in (("mask_prob", mask_prob), ("block_prob", block_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"mipkd: {name} must be in [0, 1], got {p}")
        if block_mixer and num_stages < 2:
            raise ValueError("mipkd: the block prior mixer needs num_stages >= 2 (it swaps stages after the first)")
        self.views = {role: StagedView(self.models[role], num_stages) for role in self.roles}
        c_t, c_s = self.views["teacher"].channels, self.views["student"].channels
        c_z = int(latent_channels or c_t)
        self.num_stages = num_stages
        self.kd_weight, self.feat_weight = float(kd_weight), float(feat_weight)
        self.block_weight, self.ae_weight = float(block_weight), float(ae_weight)
        self.use_feature_mixer, self.use_block_mixer = bool(feature_mixer), bool(block_mixer)
        self.block_through_mixer = bool(block_through_mixer) and self.use_feature_mixer
        self.mask_kind: MaskKind = mask
        self.mask_prob, self.block_prob = float(mask_prob), float(block_prob)
        self.task_loss = LOSSES.get(task_loss)
        self.l1 = LOSSES.get("l1")
        self.self_ensemble = bool(self_ensemble)
        self.mixers = nn.ModuleList(
            PriorMixer(c_t, c_s, c_z, encoder == "shared") for _ in range(num_stages if feature_mixer else 0)
        )
        n_bound = num_stages - 1 if block_mixer else 0
        self.to_student = nn.ModuleList(nn.Conv2d(c_t, c_s, 1) for _ in range(n_bound))
        raw = block_mixer and not self.block_through_mixer
        self.to_teacher = nn.ModuleList(nn.Conv2d(c_s, c_t, 1) for _ in range(n_bound if raw else 0))

    # ---------------------------------------------------------------------------------------------- contract
    def helper_modules(self) -> list[nn.Module]:
        """Encoders/decoders and adapters: trained, never exported."""
        return [self.mixers, self.to_student, self.to_teacher]

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = super().param_groups()
        helpers = [p for m in self.helper_modules() for p in m.parameters()]
        if helpers:
            groups["helpers"] = helpers
        return groups

    def draw_owners(self) -> list[str]:
        """Owner (``"teacher"``/``"student"``) of each stage of this step's composite; stage 1 is the student's."""
        draws = (torch.rand(self.num_stages - 1) < self.block_prob).tolist()
        return ["student", *("teacher" if d else "student" for d in draws)]

    def training_step(self, batch: dict[str, Any], owners: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms of one step; ``owners`` fixes the block mixer's composite (tests), else it is drawn."""
        x = batch["input"]
        with torch.no_grad():
            y_t, ctx_t, f_t = self.views["teacher"].features(x)
            f_t = [f / self.views["teacher"].unit for f in f_t]
        y_s, ctx_s, f_s = self.views["student"].features(x)
        f_s = [f / self.views["student"].unit for f in f_s]
        terms = {"task": self.task_loss(y_s, batch["target"])}
        if self.kd_weight:
            terms["kd"] = self.kd_weight * self.l1(y_s, y_t)
        z_t: list[torch.Tensor] = []
        f_hat: list[torch.Tensor] = []
        if self.use_feature_mixer:
            feat = ae = 0.0
            for k, mixer in enumerate(self.mixers):
                z_t.append(mixer.enc_teacher(f_t[k]))
                z_s = mixer.encode_student(f_s[k])
                f_hat.append(mixer.mix(z_t[k], z_s, random_mask(z_t[k], self.mask_kind, self.mask_prob)))
                feat = feat + self.l1(f_hat[k], f_t[k])
                if self.ae_weight:
                    ae = ae + self.l1(mixer.decoder(z_t[k]), f_t[k])
            terms["feat"] = self.feat_weight * feat  # type: ignore[assignment]
            if self.ae_weight:
                terms["ae"] = self.feat_weight * self.ae_weight * ae  # type: ignore[assignment]
        if self.use_block_mixer:
            owners = list(owners) if owners is not None else self.draw_owners()
            y_mix = self.composite(
                f_s[0], f_hat[0] if f_hat else None, z_t, {"teacher": ctx_t, "student": ctx_s}, owners
            )
            terms["block"] = self.block_weight * self.l1(y_mix, y_t)
        return terms

    # ------------------------------------------------------------------------------------------- block mixer
    def composite(
        self,
        f_s1: torch.Tensor,
        f_hat1: torch.Tensor | None,
        z_t: Sequence[torch.Tensor],
        contexts: dict[str, HeadContext],
        owners: Sequence[str],
    ) -> torch.Tensor:
        """Output of the composite whose stage k belongs to ``owners[k]`` (stage 1 must be the student's).

        Features are in pixel units (stage outputs divided by the network's ``img_range``, see
        :attr:`StagedView.unit`). ``f_s1`` is the student's stage-1 output, ``f_hat1`` the feature mixer's F̂^1
        of it (reused, not recomputed) and ``z_t`` the teacher latents E_T^k(F_T^k) of the feature mixer.
        """
        if len(owners) != self.num_stages or owners[0] != "student" or set(owners) - {"teacher", "student"}:
            raise ValueError(f"owners must be {self.num_stages} of teacher/student starting with student, got {owners}")
        z, space = f_s1, "student"
        for k in range(1, self.num_stages):
            if self.block_through_mixer:  # cross boundary k as the feature mixer's F̂ (teacher space)
                if k == 1 and f_hat1 is not None:
                    z = f_hat1
                else:
                    mixer = self.mixers[k - 1]
                    latent = mixer.enc_teacher(z) if space == "teacher" else mixer.encode_student(z)
                    z = mixer.mix(z_t[k - 1], latent, random_mask(latent, self.mask_kind, self.mask_prob))
                space = "teacher"
            owner = owners[k]
            if owner == "student" and space == "teacher":
                z = self.to_student[k - 1](z)
            elif owner == "teacher" and space == "student":
                z = self.to_teacher[k - 1](z)
            view = self.views[owner]
            z, space = view.stage(k, z * view.unit) / view.unit, owner
        return self.views[space].tail(z * self.views[space].unit, contexts[space])
