"""Multi-process training: samplers, and 2 CPU processes under torchrun (gloo) against one process on the same
global batch.

Run as a module it is a ``distill`` command line with tiny toy components registered, so torchrun can launch it::

    torchrun --standalone --nproc_per_node=2 -m tests.test_distributed run RECIPE --out DIR

Tolerance of the 1-vs-2-process comparison: the toy models have no BatchNorm and dropout is off, so the only
difference is floating-point summation order (a mean over 8 samples vs the weighted mean of two means over 4 + 4, or
3 + 2 for the final partial batch), which 24 SGD steps with momentum amplify a little. Every weight must satisfy
``|w1 - w2| <= ATOL + RTOL * |w2|`` with ATOL = 1e-5, RTOL = 1e-4, and every logged loss must agree within
METRIC_ATOL = 1e-4 (observed: weights ≤ 2.2e-6 absolute). Reported metrics get the tolerance their conditioning
allows (:func:`metric_tolerance`): the toy student's test predictions spread over only ~7e-4, so the 7e-7 rounding
difference of its predictions moved PLCC by 1.0e-4 on one machine (both runs single-threaded); the two-process
evaluation itself matches a one-process evaluation of the same weights exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from distill.distillers.supervised import Supervised
from distill.engine.distributed import (
    DistInfo,
    EpochBatches,
    ShardSampler,
    batches_per_epoch,
    shard_bounds,
    wrap_ddp,
)
from distill.errors import RecipeError
from distill.metrics.base import register_metric
from distill.registry import DATASETS, DISTILLERS, METRICS, MODELS
from tests.toy import TinyRegressor, ToyIQA

ROOT = Path(__file__).resolve().parent.parent
ATOL, RTOL, METRIC_ATOL = 1e-5, 1e-4, 1e-4


# ----------------------------------------------------------------------------------------------- toy components
def toy_abs_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error per sample (a *sample* metric, averaged over the split like PSNR or top-1)."""
    return (pred.reshape(-1) - target.reshape(-1)).abs()


class ToyStochastic(Supervised):
    """A student with two heads, one chosen at random per step: some parameters get no gradient in a step."""

    has_stochastic_paths = True

    def __init__(self, models: dict[str, torch.nn.Module], loss: str = "mse") -> None:
        super().__init__(models, loss)
        self.extra_head = torch.nn.Linear(4, 1)

    def param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        groups = super().param_groups()
        groups["student"] = [*groups["student"], *self.extra_head.parameters()]
        return groups

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        student = self.models["student"]
        features = torch.relu(student.conv(batch["input"])).mean(dim=(2, 3))
        head = self.extra_head if torch.rand(()) < 0.5 else student.head
        return {"task": self.loss_fn(head(features).squeeze(-1), batch["target"])}


def register_toys() -> None:
    """Register the toy model, dataset, metric and distiller under ``toy_*`` names (idempotent).

    Names already taken are left alone: pytest may import this file twice (as ``test_distributed`` and as
    ``tests.test_distributed``), which makes two copies of the classes defined here.
    """
    for registry, name, obj in (
        (MODELS, "toy_regressor", TinyRegressor),
        (DATASETS, "toy_iqa", ToyIQA),
        (DISTILLERS, "toy_stochastic", ToyStochastic),
    ):
        if name not in registry:
            registry.register(obj, name=name)
    if "toy_abs_error" not in METRICS:
        register_metric("toy_abs_error", "sample", higher_is_better=False)(toy_abs_error)


def toy_recipe(path: Path, distiller: str = "mrkd", group_by: str | None = "distortion", **train: Any) -> Path:
    """A recipe over the toy components: 61 training items (so the last batch of 8 is partial), 25 test items.

    ``train`` overrides keys of the ``train`` section; ``group_by=None`` skips per-group metrics (and the plot).
    """
    mrkd = distiller == "mrkd"
    optim = {"student": {"lr": 0.02, "schedule": {"name": "cosine"}}}
    if mrkd:
        optim["teacher"] = {"lr": 0.08, "schedule": {"name": "cosine"}, "clip_grad_norm": 5.0}
    roles = ("teacher", "student") if distiller != "toy_stochastic" else ("student",)
    recipe = {
        "name": f"toy_{distiller}",
        "models": {r: {"name": "toy_regressor", "args": {"dropout": 0.0}} for r in roles},
        "distiller": {"name": distiller},
        "data": {
            "train": {"name": "toy_iqa", "args": {"n": 61}},
            "eval": {"test": {"name": "toy_iqa", "args": {"n": 25, "seed": 1}}},
        },
        "optim": optim,
        "train": {
            "epochs": 3,
            "batch_size": 8,
            "drop_last": False,
            "device": "cpu",  # the toy's CPU kernels are deterministic without train.deterministic
            "progress": False,
            "log_every": 1,
            "checkpoint_every": 5,
            **train,
        },
        "eval": {"metrics": ["srcc", "plcc", "rmse", "toy_abs_error"], "group_by": group_by},
        "output": {"tensorboard": False},
    }
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def torchrun(
    *args: str, nproc: int = 2, module: str = "tests.test_distributed", timeout: float = 180
) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=N -m MODULE ARGS`` with one thread per process."""
    exe = Path(sys.executable).with_name("torchrun")
    launcher = [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [*launcher, "--standalone", f"--nproc_per_node={nproc}", "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["distiller"]


def evaluate_in_one_process(recipe: Path, out: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The final weights of the run in ``out`` evaluated by one process: (results of every split, student
    predictions on the whole test split)."""
    from distill.build import build_run
    from distill.recipe.check import load_recipe

    trainer = build_run(*load_recipe(recipe), out=None).trainer
    trainer.distiller.load_state_dict(final_weights(out))
    test = trainer.eval_sets["test"]
    batch = {"input": torch.stack([test[i]["input"] for i in range(len(test))])}  # type: ignore[arg-type]
    with torch.no_grad():
        trainer.distiller.eval()
        preds = {k: v.reshape(-1) for k, v in trainer.distiller.eval_outputs(batch).items()}
    return trainer.evaluate(), preds


def metric_tolerance(key: str, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """How far a reported number may move between runs whose predictions differ by rounding only.

    Sample metrics and RMSE are 1-Lipschitz in the predictions: METRIC_ATOL. A Pearson correlation moves by at
    most about ``2 max|Δp| / std(p)``, which is large when a model's predictions are nearly constant (the toy student's
    spread is ~1e-3, so a 1e-6 rounding difference moves its PLCC by ~1e-4 — why this test once failed on one
    machine and passed on another). Rank correlations are equal when no two predictions are closer than
    ``2 max|Δp|`` (no rank can swap), else they may differ by a swap.
    """
    role, metric = key.split(".")[1], key.rsplit(".", 1)[-1]
    if role not in a or metric not in ("plcc", "srcc", "krcc"):
        return METRIC_ATOL
    delta = float((a[role] - b[role]).abs().max())
    if metric == "plcc":
        return METRIC_ATOL + 2 * delta / float(a[role].std())
    gaps = a[role].sort().values.diff().abs()
    return METRIC_ATOL if float(gaps.min()) > 2 * delta else 1.0


def numbers(results: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a results.json ``results`` tree, by dotted path."""
    if isinstance(results, dict):
        return {k: v for key, sub in results.items() for k, v in numbers(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): float(results)} if isinstance(results, (int, float)) else {}


# ------------------------------------------------------------------------------------------------------ samplers
@pytest.mark.parametrize(("n", "bs", "drop_last"), [(61, 8, False), (61, 8, True), (64, 8, False), (9, 8, False)])
def test_rank_slices_of_each_global_batch_are_the_single_process_batch(n, bs, drop_last):
    for epoch in (0, 3):
        single = EpochBatches(n, bs, seed=5, epoch=epoch, drop_last=drop_last).batches
        ranks = [EpochBatches(n, bs, 5, epoch, drop_last, rank=r, world=2).batches for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == batches_per_epoch(n, bs, drop_last, 2)
        joined = [a + b for a, b in zip(*ranks)]
        # a final partial batch smaller than the world size would leave a rank without data: dropped
        assert joined == (single[:-1] if n % bs == 1 and not drop_last else single)
        assert all(len(a) - len(b) in (0, 1) and b for a, b in zip(*ranks))
        resumed = [EpochBatches(n, bs, 5, epoch, drop_last, skip=3, rank=r, world=2).batches for r in range(2)]
        assert resumed == [r[3:] for r in ranks]


def test_single_process_batches_are_unchanged():
    """The one-process order is what the engine always drew: a (seed, epoch) permutation cut into batches."""
    g = torch.Generator().manual_seed(7 * 1_000_003 + 2)
    order = torch.randperm(20, generator=g).tolist()
    assert EpochBatches(20, 6, 7, 2, drop_last=False).batches == [order[:6], order[6:12], order[12:18], order[18:]]
    assert EpochBatches(20, 6, 7, 2, drop_last=True).batches == [order[:6], order[6:12], order[12:18]]


@pytest.mark.parametrize(("n", "world"), [(25, 2), (25, 4), (3, 4), (0, 2)])
def test_eval_shards_cover_the_split_once_in_order(n, world):
    shards = [list(ShardSampler(n, r, world)) for r in range(world)]
    assert [i for s in shards for i in s] == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [shard_bounds(n, r, world)[1] - shard_bounds(n, r, world)[0] for r in range(world)] == list(map(len, shards))


def test_sync_batchnorm_on_cpu_is_a_clear_error():
    register_toys()
    distiller = Supervised({"student": torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))})
    with pytest.raises(RecipeError, match=r"train\.sync_batchnorm: SyncBatchNorm needs CUDA devices"):
        wrap_ddp(distiller, DistInfo(0, 2, 0, torch.device("cpu")), False, sync_batchnorm=True)


# ------------------------------------------------------------------------------------------- 2 processes vs 1
# MRKD (two online models) by default; a frozen-teacher distiller too with -m slow (each launch is ~10 s of CPU)
@pytest.mark.parametrize("distiller", ["mrkd", pytest.param("logits_kd", marks=pytest.mark.slow)])
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, distiller, one_thread):
    from distill.cli import main

    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", distiller)
    assert main(["run", str(recipe), "--out", str(tmp_path / "one")]) == 0

    proc = torchrun("run", str(recipe), "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run folder:") == 1, "only rank 0 prints the report"

    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key], two[key], rtol=RTOL, atol=ATOL), (key, (one[key] - two[key]).abs().max())
    res1 = json.loads((tmp_path / "one" / "results.json").read_text())
    res2 = json.loads((tmp_path / "two" / "results.json").read_text())
    n1, n2 = numbers(res1["results"]), numbers(res2["results"])
    assert n1.keys() == n2.keys() and n1["test.student.n"] == n2["test.student.n"] == 25  # no padded duplicates
    assert n2["test.student.groups.g0.n"] == 13 and n2["test.student.groups.g1.n"] == 12
    # the two-process evaluation (sharded, gathered) is exact: one process evaluating the same weights agrees
    two_evaluated, two_preds = evaluate_in_one_process(recipe, tmp_path / "two")
    for key, value in numbers(two_evaluated).items():
        assert n2[key] == pytest.approx(value, abs=1e-9), key
    # 1 vs 2 processes: the metrics move only as much as the (rounding-level) prediction differences allow
    _, one_preds = evaluate_in_one_process(recipe, tmp_path / "one")
    for key in n1:
        assert n1[key] == pytest.approx(n2[key], abs=metric_tolerance(key, one_preds, two_preds)), key
    assert res1["steps"] == res2["steps"] == 3 * 8

    # rank 0 alone wrote the log: every step once, the same logged loss values as one process
    logs = [
        [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("one", "two")
    ]
    train_steps = [r["step"] for r in logs[1] if r["kind"] == "train"]
    assert train_steps == list(range(1, 25))
    for a, b in zip(logs[0], logs[1]):
        if a["kind"] == "train":
            assert a["loss"] == pytest.approx(b["loss"], abs=METRIC_ATOL)
    ckpt = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng_ranks"]) == 2
    assert not torch.equal(ckpt["rng_ranks"][0]["torch"], ckpt["rng_ranks"][1]["torch"]), "ranks draw own streams"


@pytest.mark.slow
def test_stochastic_paths_need_find_unused_parameters_and_the_engine_sets_it(tmp_path):
    register_toys()
    recipe = toy_recipe(tmp_path / "toy.yaml", "toy_stochastic", epochs=1)
    proc = torchrun("run", str(recipe), "--out", str(tmp_path / "auto"))  # has_stochastic_paths → flag set
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "auto" / "results.json").exists()

    proc = torchrun("run", str(recipe), "--out", str(tmp_path / "off"), "--set", "train.find_unused_parameters=false")
    assert proc.returncode != 0
    assert "distill: error:" in proc.stderr and "set train.find_unused_parameters: true" in proc.stderr
    assert "Traceback" not in "".join(line for line in proc.stderr.splitlines() if "distill: error" in line)


if __name__ == "__main__":  # the distill command line with the toy components (torchrun -m tests.test_distributed)
    from distill.cli import main

    register_toys()
    sys.exit(main())


@pytest.mark.parametrize("local_rank", [0, 1])
def test_local_rank_0_builds_first_so_only_it_downloads_missing_weights(monkeypatch, local_rank):
    import distill.build as build

    calls: list[str] = []
    monkeypatch.setattr(build.distributed, "is_local_main", lambda: local_rank == 0)
    monkeypatch.setattr(build.distributed, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(build, "build_distiller", lambda recipe: calls.append("build") or "distiller")
    assert build.build_distiller_local_main_first(None) == "distiller"  # type: ignore[arg-type]
    # local rank 0 builds (and downloads) before the barrier; the others build after it, from the node's cache
    assert calls == (["build", "barrier"] if local_rank == 0 else ["barrier", "build"])


def test_is_local_main_reads_torchruns_local_rank(monkeypatch):
    from distill.engine import distributed

    monkeypatch.setenv("LOCAL_RANK", "3")
    assert not distributed.is_local_main()
    monkeypatch.delenv("LOCAL_RANK")
    assert distributed.is_local_main()
