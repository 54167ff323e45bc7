"""Exponential moving average (EMA) of the trained weights (``train.ema: {decay: 0.999}``).

The rule is BasicSR's ``model_ema`` (``basicsr/models/base_model.py`` lines 75-82): after every optimizer step,
``ema = decay * ema + (1 - decay) * w`` for each trainable parameter, starting from a copy of the initial weights
(``sr_model.py`` line 52, ``model_ema(0)``). As BasicSR evaluates and saves ``net_g_ema`` (``sr_model.py`` lines
122-125, 275-276), the engine evaluates, selects and exports the averaged weights: :meth:`ModelEMA.applied` swaps
them into the live modules for the duration of an evaluation or an export and swaps the trained weights back
unchanged.

Generic over distillers: the averaged tensors are the parameters of the distiller's trainable groups
(:meth:`Distiller.param_groups`), keyed by their name in the distiller's state dict; frozen teachers have none.
Buffers (BatchNorm statistics) are not averaged: the evaluated model uses the trained model's own, which are
themselves running averages (BasicSR's EMA network never updates its buffers; its SR models have none).
Under DDP every rank averages the unwrapped module's identical weights, so the copies agree across ranks; a step
skipped for a non-finite loss is not an optimizer step and does not update the average.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from distill.errors import CheckpointError


class ModelEMA:
    """The moving average of the trainable parameters of ``module`` (a distiller)."""

    def __init__(self, module: nn.Module, params: list[nn.Parameter], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        wanted = {id(p) for p in params}
        self.module = module
        self.names = [name for name, p in module.named_parameters() if id(p) in wanted]
        live = dict(module.named_parameters())
        self.shadow = {name: live[name].detach().clone() for name in self.names}
        self.updates = 0

    def _live(self) -> dict[str, nn.Parameter]:
        params = dict(self.module.named_parameters())
        return {name: params[name] for name in self.names}

    @torch.no_grad()
    def update(self) -> None:
        """One EMA step towards the current weights (call after each optimizer step)."""
        for name, p in self._live().items():
            self.shadow[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        self.updates += 1

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the live parameters inside the block; the trained ones restored bit for bit."""
        live = self._live()
        with torch.no_grad():
            for name, p in live.items():
                p.data, self.shadow[name] = self.shadow[name], p.data
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in live.items():
                    p.data, self.shadow[name] = self.shadow[name], p.data

    def state_dict(self) -> dict[str, Any]:
        shadow = {k: v.detach().clone() for k, v in self.shadow.items()}
        return {"decay": self.decay, "updates": self.updates, "shadow": shadow}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`; a checkpoint without EMA state, or of other parameters, is refused."""
        if not state:
            raise CheckpointError(
                "the checkpoint has no EMA weights but the recipe sets train.ema; resume with the recipe it was "
                "trained with, or start a new run with --out"
            )
        if sorted(state["shadow"]) != sorted(self.names):
            raise CheckpointError("the checkpoint's EMA weights do not fit this distiller's trainable parameters")
        for name in self.names:
            self.shadow[name].copy_(state["shadow"][name])
        self.updates = int(state["updates"])


def for_distiller(distiller: nn.Module, decay: float) -> ModelEMA:
    """The EMA of every trainable group of ``distiller`` (a :class:`distill.distillers.base.Distiller`)."""
    params = [p for group in distiller.param_groups().values() for p in group]  # type: ignore[operator]
    return ModelEMA(distiller, params, decay)


def averaged_state(distiller_state: dict[str, Any], ema_state: dict[str, Any] | None) -> dict[str, Any]:
    """A checkpoint's distiller state dict with its EMA weights in place of the trained ones (as evaluated)."""
    if not ema_state:
        return distiller_state
    return {**distiller_state, **ema_state["shadow"]}


@contextmanager
def maybe_applied(ema: ModelEMA | None) -> Iterator[None]:
    """:meth:`ModelEMA.applied`, or nothing when the run keeps no EMA."""
    if ema is None:
        yield
    else:
        with ema.applied():
            yield
