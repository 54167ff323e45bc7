"""Functional distillation and reconstruction losses, registered in :data:`~distill.registry.LOSSES`.

Every loss takes ``(prediction-like, target-like)`` tensors and returns a scalar tensor. Class logits are
``(B, C)`` with the class dimension at ``dim=1``. The teacher side is *not* detached here: callers pass
``teacher_logits.detach()`` (or compute them under ``torch.no_grad()``) when the teacher must stay frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distill.registry import LOSSES

__all__ = ["cross_entropy", "hinton_kd", "l1", "mse", "soft_target_ce"]


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student/teacher logits differ in shape: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}"
        )
    if student_logits.dim() < 2:
        raise ValueError(f"logits must be (B, C, ...), got shape {tuple(student_logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


@LOSSES.register("mse")
def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predictions and targets.

    ``L = mean((pred - target)²)`` over every element.

    Source: MRKD (Yuan et al.), eq. 5 — the score-regression / feature-matching term.
    """
    return F.mse_loss(pred, target, reduction="mean")


@LOSSES.register("l1")
def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between predictions and targets.

    ``L = mean(|pred - target|)`` over every element.

    Source: the L1 reconstruction loss of EDSR (Lim et al., CVPR-W 2017), also MiPKD's reconstruction term.
    """
    return F.l1_loss(pred, target, reduction="mean")


@LOSSES.register("cross_entropy")
def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of class logits against integer class labels (the classification task loss).

    ``L = (1/B) Σ_b −log softmax(z_b)[y_b] = (1/B) Σ_b (log Σ_c exp z_bc − z_b,y_b)`` for logits ``z`` of shape
    ``(B, C)`` and labels ``y`` in ``0 … C−1`` (any integer-valued dtype).

    Source: the softmax classification loss; here SCNN's distortion type × level pre-training (Zhang et al.,
    "Blind image quality assessment using a deep bilinear convolutional neural network", TCSVT 2020).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (B, C), got shape {tuple(logits.shape)}")
    target = target.reshape(-1)
    if target.numel() != logits.shape[0]:
        raise ValueError(f"{target.numel()} labels for {logits.shape[0]} logit rows")
    return F.cross_entropy(logits, target.long(), reduction="mean")


@LOSSES.register("hinton_kd")
def hinton_kd(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0, t_squared: bool = True
) -> torch.Tensor:
    """Hinton knowledge-distillation loss: KL divergence between temperature-softened teacher and student.

    ``L = (T² if t_squared else 1) · (1/B) Σ_b KL(p_b ‖ q_b)``, ``p = softmax(teacher/T)``,
    ``q = softmax(student/T)``, ``KL(p ‖ q) = Σ_c p_c (log p_c − log q_c)`` ("batchmean" reduction).
    The T² factor keeps gradient magnitudes comparable across temperatures.

    Source: Hinton, Vinyals & Dean, "Distilling the knowledge in a neural network", NeurIPS DL Workshop 2015.
    """
    _check_logits(student_logits, teacher_logits, temperature)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    loss = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return loss * temperature**2 if t_squared else loss


@LOSSES.register("soft_target_ce")
def soft_target_ce(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 10.0
) -> torch.Tensor:
    """Cross-entropy of the student against the teacher's softened distribution (CQD's distillation term).

    ``L = (1/B) Σ_b H(p_b, q_b)``, ``H(p, q) = −Σ_c p_c log q_c``, ``p = softmax(teacher/T)``,
    ``q = softmax(student/T)``; no T² factor. ``H(p, q) = H(p) + KL(p ‖ q)``, so it differs from
    :func:`hinton_kd` (without T²) by the teacher's entropy, a constant for the student.

    Source: Su & Maji, "Adapting models to signal degradation using distillation", BMVC 2017.
    """
    _check_logits(student_logits, teacher_logits, temperature)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    p = F.softmax(teacher_logits / temperature, dim=1)
    return -(p * log_q).sum(dim=1).mean()
