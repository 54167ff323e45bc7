"""Engine behaviour: schedules (MRKD eq. 6), gradients, frozen teachers, resume, non-finite losses."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch

from distill.distillers import MRKD, LogitsKD, Supervised
from distill.engine import Trainer, seed_everything
from distill.engine.run_log import read_metrics
from distill.errors import DistillError, NonFiniteLossError, RecipeError
from distill.recipe.config import EvalConfig, OptimConfig, ScheduleConfig, TrainConfig
from tests.toy import TinyRegressor, ToyIQA

TOY_EVAL = EvalConfig(metrics=["srcc", "plcc"])  # a toy regressor is of no task, so its metrics are named


def cosine(eta_max: float, eta_min: float, t: int, t_max: int) -> float:
    """MRKD eq. 6 written out."""
    return eta_min + 0.5 * (eta_max - eta_min) * (1 + math.cos(t / t_max * math.pi))


def mrkd_trainer(tmp_path=None, *, epochs=2, detach=False, seed=0, **train_kw) -> Trainer:
    seed_everything(seed)
    distiller = MRKD({"teacher": TinyRegressor(), "student": TinyRegressor()}, detach_teacher=detach)
    optim = {
        "teacher": OptimConfig(lr=0.2, schedule=ScheduleConfig(name="cosine", eta_min=0.002, t_max=10)),
        "student": OptimConfig(lr=0.05, schedule=ScheduleConfig(name="cosine", eta_min=0.0005, t_max=16)),
    }
    cfg = TrainConfig(epochs=epochs, batch_size=4, seed=seed, progress=False, log_every=1, **train_kw)
    return Trainer(
        distiller,
        ToyIQA(32),
        {"test": ToyIQA(16, seed=1)},
        optim=optim,
        config=cfg,
        evaluation=EvalConfig(metrics=["srcc", "plcc"], group_by="distortion"),
        out_dir=tmp_path,
        tensorboard=False,
    )


def test_per_group_lr_follows_eq6(tmp_path):
    trainer = mrkd_trainer(tmp_path)
    trainer.fit()
    logged = {r["step"]: r["lr"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"}
    # record at step s holds the lr used for update s (T = s - 1 iterations since the start)
    for step in (1, 4, 6, 11, 16):
        t = step - 1
        assert logged[step]["teacher"] == pytest.approx(cosine(0.2, 0.002, min(t, 10), 10), rel=1e-12)
        assert logged[step]["student"] == pytest.approx(cosine(0.05, 0.0005, min(t, 16), 16), rel=1e-12)
    assert logged[11]["teacher"] == pytest.approx(0.002)  # clamped at eta_min after T_max
    # and the optimizer really used them: the last lr set in the param group
    assert trainer.optimizers["student"].param_groups[0]["lr"] == pytest.approx(cosine(0.05, 0.0005, 15, 16))


@pytest.mark.parametrize("detach", [False, True])
def test_mutual_term_gradient_reaches_the_right_models(detach):
    seed_everything(0)
    d = MRKD({"teacher": TinyRegressor(dropout=0), "student": TinyRegressor(dropout=0)}, detach_teacher=detach)
    batch = {"input": torch.rand(4, 3, 8, 8), "target": torch.rand(4) * 4 + 1}
    terms = d.training_step(batch)
    terms["mutual"].backward()
    student_grad = sum(p.grad.abs().sum() for p in d.models["student"].parameters())
    teacher_grads = [p.grad for p in d.models["teacher"].parameters()]
    assert student_grad > 0
    if detach:
        assert all(g is None for g in teacher_grads)
    else:
        assert sum(g.abs().sum() for g in teacher_grads) > 0
    # the supervised terms only touch their own model
    d.zero_grad(set_to_none=True)
    terms = d.training_step(batch)
    terms["teacher"].backward()
    assert all(p.grad is None for p in d.models["student"].parameters())


def test_frozen_teacher_never_changes_and_stays_in_eval(tmp_path):
    seed_everything(0)
    teacher, student = TinyRegressor(dropout=0.5), TinyRegressor()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    modes = []
    teacher.register_forward_hook(lambda m, i, o: modes.append(m.training))
    d = LogitsKD({"teacher": teacher, "student": student}, task_loss="mse", kd_loss="mse")
    s_before = {k: v.clone() for k, v in student.state_dict().items()}
    trainer = Trainer(
        d,
        ToyIQA(16),
        optim={"student": OptimConfig(lr=0.1)},
        config=TrainConfig(epochs=2, batch_size=4, progress=False),
    )
    assert list(trainer.optimizers) == ["student"]
    trainer.fit()
    assert modes and not any(modes)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert any(not torch.equal(s_before[k], v) for k, v in student.state_dict().items())


def test_optim_groups_must_match_the_distiller():
    d = MRKD({"teacher": TinyRegressor(), "student": TinyRegressor()})
    with pytest.raises(RecipeError, match=r"missing: \['student'\]"):
        Trainer(d, ToyIQA(8), optim={"teacher": OptimConfig()}, config=TrainConfig(epochs=1, batch_size=4))


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.distiller.state_dict().items()}


class _Crash(Exception):
    pass


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    full = mrkd_trainer(tmp_path / "full", epochs=3, checkpoint_every=3)
    full_result = full.fit()
    reference = _weights(full)

    crashing = mrkd_trainer(tmp_path / "cut", epochs=3, checkpoint_every=3)
    original = crashing._train_step
    crash_at = 13  # mid epoch 2, one step after the checkpoint at 12

    def step_then_crash(batch):
        if crashing.step == crash_at:
            raise _Crash
        return original(batch)

    crashing._train_step = step_then_crash
    with pytest.raises(_Crash):
        crashing.fit()
    resumed = mrkd_trainer(tmp_path / "cut", epochs=3, checkpoint_every=3, seed=0)
    resumed_result = resumed.fit(resume=True)
    assert all(torch.equal(reference[k], v) for k, v in resumed.distiller.state_dict().items())
    assert json.dumps(resumed_result.results) == json.dumps(full_result.results)  # NaN-safe equality
    steps = [r["step"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == sorted(set(steps)) == list(range(1, 25))  # records of the redone steps are not duplicated


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    mrkd_trainer(tmp_path, epochs=1).fit()
    with pytest.raises(DistillError, match="--resume"):
        mrkd_trainer(tmp_path, epochs=1).fit()


def test_resume_refuses_a_different_recipe(tmp_path):
    t = mrkd_trainer(tmp_path, epochs=1)
    t.recipe = {"optim": {"student": {"lr": 0.05}}}
    t.fit()
    t2 = mrkd_trainer(tmp_path, epochs=1)
    t2.recipe = {"optim": {"student": {"lr": 0.07}}}
    with pytest.raises(DistillError, match=r"optim.student.lr \(0.05 -> 0.07\)"):
        t2.fit(resume=True)


class _Exploding(Supervised):
    def training_step(self, batch):
        terms = super().training_step(batch)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls in (3, 5):
            terms["task"] = terms["task"] * float("nan")
        return terms


def test_nonfinite_loss_stops_naming_step_and_term():
    d = _Exploding({"student": TinyRegressor()})
    t = Trainer(
        d, ToyIQA(16), optim={"student": OptimConfig()}, config=TrainConfig(epochs=2, batch_size=4, progress=False)
    )
    with pytest.raises(NonFiniteLossError, match=r"step 3: term 'task' = nan"):
        t.fit()


def test_nonfinite_loss_can_be_skipped_and_counted():
    d = _Exploding({"student": TinyRegressor()})
    cfg = TrainConfig(epochs=2, batch_size=4, progress=False, nonfinite="skip")
    result = Trainer(d, ToyIQA(16), optim={"student": OptimConfig()}, config=cfg).fit()
    assert result.skipped_steps == 2
    assert all(torch.isfinite(p).all() for p in d.parameters())


def test_evaluation_reports_both_models_overall_and_per_group(tmp_path):
    result = mrkd_trainer(tmp_path, epochs=1).fit()
    test = result.results["test"]
    assert set(test) == {"teacher", "student"}
    assert set(test["student"]["groups"]) == {"g0", "g1"}
    assert test["student"]["groups"]["g0"]["n"] == 8
    assert (tmp_path / "student.pt").exists() and (tmp_path / "results.json").exists()
    exported = torch.load(tmp_path / "student.pt", weights_only=True)
    assert set(exported["state_dict"]) == set(TinyRegressor().state_dict())


def test_best_val_selection_reports_test_at_best_validation_step(tmp_path):
    seed_everything(0)
    d = Supervised({"student": TinyRegressor()})
    ev = EvalConfig(metrics=["rmse", "srcc"], selection="best_val", select_split="val")
    t = Trainer(
        d,
        ToyIQA(32),
        {"val": ToyIQA(16, seed=2), "test": ToyIQA(16, seed=3)},
        optim={"student": OptimConfig(lr=0.05)},
        config=TrainConfig(epochs=4, batch_size=4, progress=False),
        evaluation=ev,
        out_dir=tmp_path,
        tensorboard=False,
    )
    result = t.fit()
    vals = {r["step"]: r["results"]["student"]["overall"]["rmse"] for r in result.history if r["split"] == "val"}
    best_step = min(vals, key=vals.get)  # rmse: lower is better
    assert result.selected_step == best_step
    tests = {r["step"]: r["results"] for r in result.history if r["split"] == "test"}
    assert result.results["test"] == tests[best_step]


def test_iteration_based_training_evaluates_every_n_iterations(tmp_path):
    t = mrkd_trainer(tmp_path, epochs=None, iterations=10, eval_every=4)
    result = t.fit()
    assert result.steps == 10
    assert sorted({r["step"] for r in result.history}) == [4, 8, 10]
    assert t.epoch == 1 and t.step_in_epoch == 2  # 8 batches per epoch: the run wrapped into a second epoch


def test_gradient_clipping_bounds_each_groups_update():
    seed_everything(0)
    d = Supervised({"student": TinyRegressor(dropout=0)})
    before = [p.detach().clone() for p in d.parameters()]
    cfg = OptimConfig(optimizer="sgd", lr=1.0, momentum=0.0, clip_grad_norm=1e-3)
    Trainer(d, ToyIQA(4), optim={"student": cfg}, config=TrainConfig(iterations=1, batch_size=4, progress=False)).fit()
    step = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(d.parameters(), before)))
    assert step.item() == pytest.approx(1e-3, rel=1e-3)  # lr 1 × clipped gradient norm


def test_fp16_on_cpu_is_a_clear_error():
    d = Supervised({"student": TinyRegressor()})
    with pytest.raises(RecipeError, match="fp16 autocast needs CUDA"):
        cfg = TrainConfig(epochs=1, batch_size=4, device="cpu", precision="fp16")
        Trainer(d, ToyIQA(8), optim={"student": OptimConfig()}, config=cfg)


def test_bf16_autocast_runs_on_cpu():
    seed_everything(0)
    d = Supervised({"student": TinyRegressor()})
    cfg = TrainConfig(epochs=1, batch_size=4, precision="bf16", progress=False)
    Trainer(d, ToyIQA(8), {"test": ToyIQA(8)}, optim={"student": OptimConfig()}, config=cfg, evaluation=TOY_EVAL).fit()
    assert all(p.dtype == torch.float32 for p in d.parameters())  # weights stay fp32 under autocast


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_training_with_amp(precision, tmp_path):
    t = mrkd_trainer(tmp_path, epochs=1, device="cuda", precision=precision)
    result = t.fit()
    assert next(t.distiller.parameters()).is_cuda
    assert result.steps == t.total_steps and set(result.results["test"]) == {"teacher", "student"}
    assert all(torch.isfinite(p).all() for p in t.distiller.parameters())


def _trained_weights(**train: Any) -> tuple[dict[str, torch.Tensor], Trainer]:
    seed_everything(0)
    d = Supervised({"student": TinyRegressor(dropout=0)})
    cfg = TrainConfig(iterations=3, batch_size=4, progress=False, **train)
    trainer = Trainer(
        d, ToyIQA(8), {"test": ToyIQA(8)}, optim={"student": OptimConfig()}, config=cfg, evaluation=TOY_EVAL
    )
    trainer.fit()
    return {k: v.detach().clone() for k, v in d.state_dict().items()}, trainer


def test_channels_last_trains_the_same_model_in_the_other_layout():
    plain, _ = _trained_weights()
    fast, trainer = _trained_weights(channels_last=True)
    conv = trainer.distiller.models["student"].conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert plain.keys() == fast.keys()
    assert all(torch.allclose(plain[k], fast[k], atol=1e-6) for k in plain)


@pytest.mark.slow
def test_compiled_step_trains_the_same_model_and_keeps_state_dict_keys():
    plain, _ = _trained_weights()
    compiled, _ = _trained_weights(compile=True)
    assert plain.keys() == compiled.keys()  # no `_orig_mod.` prefixes: checkpoints stay loadable without compile
    assert all(torch.allclose(plain[k], compiled[k], atol=1e-5) for k in plain)


def test_run_logger_refuses_an_unknown_tensorboard_setting_and_creates_nothing(tmp_path):
    from distill.engine.run_log import RunLogger

    with pytest.raises(ValueError, match=r"output\.tensorboard must be true, false or auto, got 'off'"):
        RunLogger(tmp_path, "off")  # type: ignore[arg-type]
    RunLogger(tmp_path, False)
    assert list(tmp_path.iterdir()) == []  # tensorboard off: no empty tensorboard/ folder


def test_unset_metrics_follow_the_students_task_and_a_model_of_no_task_must_name_them():
    from distill.build import build_model
    from distill.recipe.config import ComponentSpec
    from distill.tasks import resolve_metrics

    cfg = TrainConfig(epochs=1, batch_size=4, progress=False)
    sr = Supervised({"student": build_model(ComponentSpec("edsr", {"num_feat": 4, "num_block": 1, "upscale": 2}))})
    evaluation = resolve_metrics(EvalConfig(), sr.deployable())
    trainer = Trainer(
        sr, ToyIQA(8), {"test": ToyIQA(8)}, optim={"student": OptimConfig()}, config=cfg, evaluation=evaluation
    )
    assert trainer.evaluation.metrics == ["psnr", "ssim"] and list(trainer.evaluator.metrics) == ["psnr", "ssim"]
    toy = Supervised({"student": TinyRegressor()})
    with pytest.raises(RecipeError, match=r"eval\.metrics: not set, and the student \(TinyRegressor\) is of no task"):
        resolve_metrics(EvalConfig(), toy.deployable())
    with pytest.raises(RecipeError, match=r"eval\.metrics: not set; name the metrics"):  # the engine resolves nothing
        Trainer(toy, ToyIQA(8), {"test": ToyIQA(8)}, optim={"student": OptimConfig()}, config=cfg)
    Trainer(toy, ToyIQA(8), optim={"student": OptimConfig()}, config=cfg)  # no evaluation: no metrics needed
