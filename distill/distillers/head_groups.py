"""The last layer's weight and bias as trainable groups of their own (CQD's official fc8 learning-rate multipliers).

The authors' MatConvNet code gives the re-initialised last layer learning-rate multipliers ``[10 20]`` and
weight-decay multipliers ``[1 0]`` (weight, bias). Here that is three trainable groups of one role, each with its own
``optim:`` entry: ``<role>`` (everything else), ``<role>_head_weight`` and ``<role>_head_bias``.
"""

from __future__ import annotations

from torch import nn

from distill.errors import RecipeError

__all__ = ["HEAD_GROUP_SUFFIXES", "split_head_groups"]

HEAD_GROUP_SUFFIXES = ("head_weight", "head_bias")


def split_head_groups(
    groups: dict[str, list[nn.Parameter]], model: nn.Module, role: str
) -> dict[str, list[nn.Parameter]]:
    """``groups`` with ``role``'s last-layer weight and bias moved to ``<role>_head_weight`` / ``<role>_head_bias``.

    The last layer is the model's ``head_prefix`` (``classifier.6.`` for VGG, ``fc.`` for ResNet).
    """
    prefix = getattr(model, "head_prefix", None)
    named = dict(model.named_parameters())
    head = {suffix: named.get(f"{prefix}{suffix.split('_')[1]}") for suffix in HEAD_GROUP_SUFFIXES} if prefix else {}
    if not head or any(p is None for p in head.values()):
        raise RecipeError(
            f"distiller.args.head_groups: the {role} model ({type(model).__name__}) has no last layer with a weight "
            "and a bias (head_prefix); set head_groups: false"
        )
    ids = {id(p) for p in head.values()}
    out = {**groups, role: [p for p in groups[role] if id(p) not in ids]}
    for suffix, param in head.items():
        out[f"{role}_{suffix}"] = [param] if param.requires_grad else []  # type: ignore[list-item]
    return out
