"""Feature-distillation losses of the SR baselines (FitNet, attention transfer, FAKD), registered in ``LOSSES``.

Each takes a student feature map and a teacher feature map ``B×C×H×W`` (same ``B``, ``H``, ``W``; FitNet also needs
the same ``C``, which the caller's adapter provides) and returns a scalar. The teacher side is not detached here:
pass features computed under ``torch.no_grad()`` when the teacher is frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distill.registry import LOSSES

__all__ = ["attention_map", "attention_transfer", "fakd", "fitnet", "spatial_affinity"]


def _check(student: torch.Tensor, teacher: torch.Tensor, same_channels: bool) -> None:
    if student.dim() != 4 or teacher.dim() != 4:
        raise ValueError(f"expected B×C×H×W features, got {tuple(student.shape)} and {tuple(teacher.shape)}")
    s, t = student.shape, teacher.shape
    if s[0] != t[0] or s[2:] != t[2:] or (same_channels and s[1] != t[1]):
        what = "shape" if same_channels else "batch or spatial size"
        raise ValueError(f"student/teacher features differ in {what}: {tuple(s)} vs {tuple(t)}")


@LOSSES.register("fitnet")
def fitnet(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """FitNet hint loss: mean squared error between the (adapted) student feature and the teacher's.

    ``L = mean((r(F_S) − F_T)²)`` over every element, where ``r`` is the regressor the caller applies (a 1×1
    convolution from C_S to C_T in :mod:`distill.distillers.sr_baselines`).

    Source: Romero et al., "FitNets: Hints for thin deep nets", ICLR 2015 (eq. 3, with a mean instead of ½·sum).
    """
    _check(student, teacher, same_channels=True)
    return F.mse_loss(student, teacher)


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Spatial attention map ``Q = vec(mean_c |F_c|^p)`` of ``B×C×H×W``, L2-normalised per sample: ``B×(H·W)``."""
    return F.normalize(feature.abs().pow(p).mean(dim=1).flatten(1), dim=1)


@LOSSES.register("attention_transfer")
def attention_transfer(student: torch.Tensor, teacher: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Attention transfer: squared distance between normalised spatial attention maps (width-agnostic).

    ``Q(F) = vec(mean_c |F_c|^p) / ‖vec(mean_c |F_c|^p)‖₂``; ``L = mean_{b,i} (Q(F_S)_{b,i} − Q(F_T)_{b,i})²``
    (the reference implementation's ``(at(x) − at(y)).pow(2).mean()``; p = 2).

    Source: Zagoruyko & Komodakis, "Paying more attention to attention", ICLR 2017 (eq. 2).
    """
    _check(student, teacher, same_channels=False)
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


def spatial_affinity(feature: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Cosine similarity between every pair of spatial positions: ``B×(H·W)×(H·W)``.

    ``A = F̃ᵀ F̃`` with ``F̃`` the ``C×(H·W)`` feature whose columns are divided by their L2 norm (+ ``eps``).
    """
    f = feature.flatten(2)
    f = f / (f.norm(dim=1, keepdim=True) + eps)
    return f.transpose(1, 2) @ f


@LOSSES.register("fakd")
def fakd(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Feature-affinity KD: L1 distance between the spatial affinity matrices of student and teacher.

    ``L = mean_{b,i,j} |A_S(b,i,j) − A_T(b,i,j)|`` with ``A`` from :func:`spatial_affinity` (width-agnostic).
    Memory grows with ``(H·W)²`` per image: 48×48 patches make 2304² affinity entries.

    Source: He et al., "FAKD: Feature-affinity based knowledge distillation for efficient image
    super-resolution", ICIP 2020 (eq. 2–3).
    """
    _check(student, teacher, same_channels=False)
    return F.l1_loss(spatial_affinity(student), spatial_affinity(teacher))
