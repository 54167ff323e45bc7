"""The step context: a method with a loss-weight warm-up reads the step from the engine and resumes exactly."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from distill.distillers.base import Distiller
from distill.engine import Trainer, seed_everything
from distill.engine.run_log import read_metrics
from distill.recipe.config import OptimConfig, TrainConfig
from tests.toy import TinyRegressor, ToyIQA

pytestmark = pytest.mark.usefixtures("one_thread")

WARMUP = 6


class WarmupKD(Distiller):
    """Regression KD whose distillation weight ramps linearly over the first WARMUP steps (defined here only)."""

    roles = ("teacher", "student")
    frozen_roles = ("teacher",)

    def __init__(self, models: dict[str, torch.nn.Module], crash_at: int | None = None) -> None:
        super().__init__(models)
        self.crash_at = crash_at
        self.seen: list[tuple[int, int, int, float]] = []

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        ctx = self.context
        if ctx.step == self.crash_at:
            raise KeyboardInterrupt
        weight = min(1.0, (ctx.step + 1) / WARMUP)
        self.seen.append((ctx.step, ctx.epoch, ctx.total_steps, weight))
        pred = self.models["student"](batch["input"])
        teacher = self.frozen_forward("teacher", batch["input"])
        return {"task": F.mse_loss(pred, batch["target"]), "kd": weight * F.mse_loss(pred, teacher)}


def trainer(out, crash_at: int | None = None) -> Trainer:
    seed_everything(0)
    distiller = WarmupKD({"teacher": TinyRegressor(), "student": TinyRegressor()}, crash_at)
    cfg = TrainConfig(epochs=3, batch_size=4, progress=False, log_every=1, checkpoint_every=4)
    return Trainer(distiller, ToyIQA(16), optim={"student": OptimConfig(lr=0.05)}, config=cfg, out_dir=out,
                   tensorboard=False)  # fmt: skip


def test_a_loss_weight_warm_up_sees_the_step_and_resumes_exactly(tmp_path):
    full = trainer(tmp_path / "full")
    full.fit()
    seen = full.distiller.seen
    assert [s for s, *_ in seen] == list(range(12))
    assert [e for _, e, _, _ in seen] == [0] * 4 + [1] * 4 + [2] * 4
    assert {t for *_, t, _ in seen} == {12}
    assert [w for *_, w in seen] == [min(1.0, (s + 1) / WARMUP) for s in range(12)]

    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "cut", crash_at=6).fit()  # dies after the checkpoint at step 4
    resumed = trainer(tmp_path / "cut")
    resumed.fit(resume=True)
    assert resumed.distiller.seen == seen[4:]  # continues from the checkpoint's step and epoch, same weights
    reference = full.distiller.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in resumed.distiller.state_dict().items())
    kd = {r["step"]: r["loss"]["kd"] for r in read_metrics(tmp_path / "full" / "metrics.jsonl") if r["kind"] == "train"}
    kd_cut = {
        r["step"]: r["loss"]["kd"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl") if r["kind"] == "train"
    }
    assert kd_cut == kd and len(kd) == 12
