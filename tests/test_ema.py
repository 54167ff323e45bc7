"""EMA weights (``train.ema``, :mod:`distill.engine.ema`): the update rule, the copy that is evaluated, selected and
exported, a SIGKILLed run resumed bit-identically, and 2 gloo processes against one.

The rule and its use follow BasicSR (XPixelGroup/BasicSR @ 8d56e3a): ``basicsr/models/base_model.py`` lines 75-82
(``model_ema``: ``ema.mul_(decay).add_(w, alpha=1 - decay)`` over the named parameters), ``sr_model.py`` line 52
(``model_ema(0)``: the average starts as a copy), lines 118-119 (updated after each ``optimize_parameters``),
lines 122-125 (``net_g_ema`` is the network tested) and lines 275-276 (saved as ``params_ema``).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import yaml

from distill.distillers import MRKD, Supervised
from distill.engine import Trainer, seed_everything
from distill.engine.ema import ModelEMA, averaged_state, for_distiller
from distill.errors import RecipeError
from distill.recipe.config import EMAConfig, EvalConfig, OptimConfig, TrainConfig
from tests.test_crash_resume import assert_same_run, checkpoint_step, run_killable
from tests.test_distributed import ATOL, RTOL, register_toys, torchrun, toy_recipe
from tests.toy import TinyRegressor, ToyIQA

TOY_EVAL = EvalConfig(metrics=["srcc", "plcc"])


def test_update_rule_is_basicsr_model_ema_and_frozen_teachers_have_none():
    seed_everything(0)
    distiller = MRKD({"teacher": TinyRegressor(), "student": TinyRegressor()})
    ema = ModelEMA(distiller, distiller.param_groups()["student"], decay=0.9)
    assert ema.names == [n for n, _ in distiller.named_parameters() if n.startswith("models.student.")]
    start = {n: p.detach().clone() for n, p in distiller.named_parameters()}
    expected = {n: start[n].clone() for n in ema.names}  # model_ema(0): a copy of the initial weights
    for k in range(3):
        with torch.no_grad():
            for p in distiller.parameters():
                p.add_(0.1 * (k + 1))
        ema.update()
        for n, p in distiller.named_parameters():
            if n in expected:
                expected[n] = 0.9 * expected[n] + 0.1 * p.detach()
    for n in ema.names:
        torch.testing.assert_close(ema.shadow[n], expected[n], rtol=1e-6, atol=1e-7)
    assert ema.updates == 3
    # the frozen teacher of a distiller with one is left out
    frozen = for_distiller(Supervised({"student": TinyRegressor()}), 0.5)
    assert all(n.startswith("models.student.") for n in frozen.names)


def test_applied_swaps_the_average_in_and_the_trained_weights_back_bit_for_bit():
    seed_everything(0)
    model = Supervised({"student": TinyRegressor()})
    ema = for_distiller(model, 0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    ema.update()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.applied():
        inside = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(trained[k], v) for k, v in model.state_dict().items())
    for name in ema.names:
        assert torch.equal(inside[name], ema.shadow[name]) and not torch.equal(inside[name], trained[name])
    merged = averaged_state(trained, ema.state_dict())
    assert all(torch.equal(merged[k], inside[k]) for k in inside)


def test_decay_outside_0_1_is_a_recipe_error(tmp_path):
    from distill.recipe.check import load_recipe

    register_toys()
    path = toy_recipe(tmp_path / "toy.yaml", "mrkd", ema={"decay": 1.5})
    with pytest.raises(RecipeError, match=r"train\.ema\.decay: got 1\.5, expected a number in \[0, 1\)"):
        load_recipe(path)


def _trainer(tmp_path: Path | None, decay: float | None, **kw) -> Trainer:  # type: ignore[no-untyped-def]
    seed_everything(0)
    distiller = Supervised({"student": TinyRegressor(dropout=0.0)})
    cfg = TrainConfig(epochs=3, batch_size=4, progress=False, ema=EMAConfig(decay) if decay is not None else None, **kw)
    return Trainer(
        distiller,
        ToyIQA(24),
        {"test": ToyIQA(12, seed=1), "val": ToyIQA(12, seed=2)},
        optim={"student": OptimConfig(lr=0.05)},
        config=cfg,
        evaluation=EvalConfig(metrics=["srcc", "plcc"], selection="best_val"),
        out_dir=tmp_path,
        tensorboard=False,
    )


def test_the_average_is_what_is_evaluated_selected_and_exported(tmp_path):
    trainer = _trainer(tmp_path, 0.8)
    steps: list[dict[str, torch.Tensor]] = []
    step = trainer._train_step

    def recording(batch):  # type: ignore[no-untyped-def]
        out = step(batch)
        steps.append({n: p.detach().clone() for n, p in trainer.distiller.named_parameters()})
        return out

    trainer._train_step = recording  # type: ignore[method-assign]
    result = trainer.fit()
    assert trainer.ema is not None and trainer.ema.updates == len(steps) == result.steps
    # the average follows the trained weights of every optimizer step
    start = _trainer(None, 0.8).distiller  # same seed: the initial weights
    expected = {n: p.detach().clone() for n, p in start.named_parameters()}
    for weights in steps:
        expected = {n: 0.8 * expected[n] + 0.2 * weights[n] for n in expected}
    for n, v in expected.items():
        torch.testing.assert_close(trainer.ema.shadow[n], v, rtol=1e-5, atol=1e-6)
    # exported: student.pt holds the average at the selected (best validation) step, not the trained weights
    exported = torch.load(tmp_path / "student.pt", weights_only=True)["state_dict"]
    live = trainer.distiller.models["student"].state_dict()
    assert any(not torch.equal(exported[k], live[k]) for k in live)
    # evaluated: the reported test numbers are those of the exported (averaged) weights
    check = _trainer(None, None)
    check.distiller.models["student"].load_state_dict(exported)
    again = check.evaluate(["test"])["test"]["student"]["overall"]
    assert again["srcc"] == result.results["test"]["student"]["overall"]["srcc"]
    assert again["plcc"] == pytest.approx(result.results["test"]["student"]["overall"]["plcc"], abs=1e-12)
    if result.selected_step == result.steps:  # selected the last evaluation: the final average was exported
        assert all(torch.equal(exported[f"{k}"], trainer.ema.shadow[f"models.student.{k}"]) for k in exported)


def test_decay_zero_evaluates_exactly_the_trained_weights(tmp_path):
    plain = _trainer(tmp_path / "plain", None).fit()
    ema0 = _trainer(tmp_path / "ema0", 0.0).fit()
    assert json.dumps(plain.results) == json.dumps(ema0.results)


class _Exploding(Supervised):
    def training_step(self, batch):  # type: ignore[no-untyped-def]
        terms = super().training_step(batch)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls in (3, 5):
            terms["task"] = terms["task"] * float("nan")
        return terms


def test_skipped_nonfinite_steps_do_not_update_the_average():
    seed_everything(0)
    d = _Exploding({"student": TinyRegressor()})
    cfg = TrainConfig(epochs=2, batch_size=4, progress=False, nonfinite="skip", ema=EMAConfig(0.9))
    trainer = Trainer(d, ToyIQA(16), optim={"student": OptimConfig()}, config=cfg)
    result = trainer.fit()
    assert result.skipped_steps == 2
    assert trainer.ema is not None and trainer.ema.updates == result.steps - 2
    assert all(torch.isfinite(v).all() for v in trainer.ema.shadow.values())


def test_deploying_a_training_checkpoint_uses_the_average(tmp_path):
    from distill.deploy.model import load_deployable

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None, epochs=1, ema={"decay": 0.5})
    from distill.cli import main

    assert main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 0
    model, _ = load_deployable(tmp_path / "run" / "checkpoints" / "last.pt")
    exported = torch.load(tmp_path / "run" / "student.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, exported[k]) for k, v in model.state_dict().items())


@pytest.mark.slow  # ~40 s on a busy 2-core machine: three subprocess launches
def test_sigkilled_run_with_ema_resumes_bit_identically(tmp_path, one_thread):
    """Killed mid-epoch (step 11, last checkpoint 10) and right after a checkpoint: weights, EMA, student.pt,
    results and log equal the uninterrupted run's."""
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None, ema={"decay": 0.7})
    assert main(["run", str(recipe), "--out", str(tmp_path / "full")]) == 0
    out = tmp_path / "cut"
    proc = run_killable(recipe, out, "step:11")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert checkpoint_step(out) == 10
    proc = run_killable(recipe, out, "after-save:2", resume=True)  # saves 15, 16: dies after 16
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert main(["run", str(recipe), "--out", str(out), "--resume"]) == 0
    assert_same_run(tmp_path / "full", out)
    a, b = (torch.load(d / "checkpoints" / "last.pt", weights_only=True)["ema"] for d in (tmp_path / "full", out))
    assert a["updates"] == b["updates"] == 24
    assert all(torch.equal(a["shadow"][k], b["shadow"][k]) for k in a["shadow"])


def test_resuming_with_ema_turned_on_is_refused(tmp_path):
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None, epochs=1)
    assert main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 0
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--resume", "--set", "train.ema.decay=0.9"]) == 2


@pytest.mark.slow  # ~40 s: a torchrun launch of 2 processes
def test_two_gloo_processes_with_ema_match_one_process(tmp_path, one_thread):
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None, ema={"decay": 0.7})
    assert main(["run", str(recipe), "--out", str(tmp_path / "one")]) == 0
    proc = torchrun("run", str(recipe), "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=True) for d in ("one", "two"))
    assert one["ema"]["updates"] == two["ema"]["updates"] == 24
    for k, v in one["ema"]["shadow"].items():
        assert torch.allclose(v, two["ema"]["shadow"][k], rtol=RTOL, atol=ATOL), k
    s1, s2 = (torch.load(tmp_path / d / "student.pt", weights_only=True)["state_dict"] for d in ("one", "two"))
    for k, v in s1.items():  # the exported student is the average (of rank 0, equal to every rank's)
        assert torch.allclose(v, two["ema"]["shadow"][f"models.student.{k}"], rtol=RTOL, atol=ATOL), k
        assert torch.allclose(v, s2[k], rtol=RTOL, atol=ATOL), k
    assert yaml.safe_load((tmp_path / "two" / "recipe.yaml").read_text())["train"]["ema"] == {"decay": 0.7}
