"""The engine's teacher-output cache: equal to online outputs, keyed by teacher/data/view, recomputed on change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from distill.data.base import SeededDataset
from distill.distillers.cqd import CQD
from distill.engine import Trainer
from distill.engine.teacher_cache import CACHE_FORMAT, TeacherOutputs, cache_key, compute_outputs, state_digest
from distill.engine.teacher_cache import prepare as prepare_outputs
from distill.errors import RecipeError
from distill.recipe.config import OptimConfig, TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


class ToyPairs(SeededDataset):
    """Random clean images, their 2x-blurred 'degraded' version, 3 classes; optional random flips (augmentation)."""

    def __init__(self, n: int = 24, seed: int = 0, flip: bool = False, root: str = "toy") -> None:
        g = torch.Generator().manual_seed(seed)
        self.clean = torch.rand(n, 3, 8, 8, generator=g)
        self.degraded = torch.nn.functional.avg_pool2d(self.clean, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)
        self.labels = torch.randint(0, 3, (n,), generator=g)
        self.flip, self.root, self.seed_ = flip, root, seed
        self.reads = 0

    @property
    def augmented(self) -> bool:
        return self.flip

    def cache_identity(self, key: str) -> dict[str, Any]:
        if key != "input_clean":
            raise KeyError(key)
        return {"root": self.root, "seed": self.seed_, "n": len(self.clean), "view": "clean 8x8"}

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> dict[str, Any]:
        self.reads += 1
        x, z = self.clean[i], self.degraded[i]
        if self.flip and bool(torch.rand((), generator=self.rng(i)) < 0.5):
            x, z = x.flip(-1), z.flip(-1)
        return {"input": z, "input_clean": x, "target": self.labels[i], "index": i, "meta": {"name": str(i)}}


class Net(nn.Module):
    """Conv → BatchNorm → pool → linear to 3 logits; counts its forward calls and the images it saw."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.head = nn.Linear(6, 3)
        self.calls = 0
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += x.shape[0]
        return self.head(self.body(x).mean(dim=(2, 3)))


def make_trainer(data: ToyPairs, teacher: nn.Module, mode: str, out: Path | None, cache_dir: Path | None = None,
                 iterations: int = 3) -> Trainer:  # fmt: skip
    cqd = CQD({"teacher": teacher, "student": Net(1)}, temperature=2.0, weight=4.0)
    config = TrainConfig(iterations=iterations, batch_size=8, eval_batch_size=5, device="cpu", progress=False,
                         teacher_cache=mode, teacher_cache_dir=str(cache_dir) if cache_dir else None)  # fmt: skip
    return Trainer(cqd, data, None, optim={"student": OptimConfig(lr=0.1)}, config=config, out_dir=out,
                   tensorboard=False)  # fmt: skip


def prepare(trainer: Trainer) -> TeacherOutputs | None:
    """What the trainer passes to the cache before training."""
    return prepare_outputs(trainer.distiller, trainer.train_set, trainer.config, trainer.device,
                           out_dir=trainer.out_dir, autocast=trainer.autocast(), dist=trainer.dist)  # fmt: skip


def test_cached_outputs_equal_online_outputs_and_train_the_same_student(tmp_path):
    data, teacher = ToyPairs(), Net(0)
    cached = make_trainer(data, teacher, "cached", tmp_path / "run")
    outputs = prepare(cached)
    assert outputs is not None and not outputs.loaded["teacher"]
    with torch.no_grad():
        online = teacher.eval()(data.clean)
    assert torch.allclose(outputs.tables["teacher"], online, atol=1e-6)
    # a batch gets the rows of its own items, by index
    batch = {"index": torch.tensor([5, 0, 17]), "input": data.degraded[[5, 0, 17]]}
    assert torch.allclose(outputs.attach(batch)["cached"]["teacher"], online[[5, 0, 17]], atol=1e-6)
    # training with cached outputs ends with the same student as training with the teacher run online
    students = {}
    for mode in ("cached", "online"):
        teacher_net = Net(0)
        trainer = make_trainer(data, teacher_net, mode, tmp_path / mode)
        calls_before = teacher_net.calls
        trainer.fit()
        steps_calls = teacher_net.calls - calls_before
        # cached: one pass over the set (24 images in batches of 5) before training, none during it
        assert steps_calls == (5 if mode == "cached" else 3), mode
        students[mode] = trainer.distiller.models["student"].state_dict()
        assert trainer.distiller.models["teacher"].training is False
        assert torch.equal(trainer.distiller.models["teacher"].body[1].running_mean, Net(0).body[1].running_mean)
    for k, v in students["cached"].items():
        assert torch.allclose(v.float(), students["online"][k].float(), atol=1e-5), k


def test_the_cache_file_is_reused_and_recomputed_when_the_teacher_changes(tmp_path):
    data, cache = ToyPairs(), tmp_path / "shared_cache"
    teacher = Net(0)
    first = prepare(make_trainer(data, teacher, "auto", tmp_path / "a", cache))
    assert first is not None and not first.loaded["teacher"]
    path = first.files["teacher"]
    assert path is not None and path.parent == cache and path.is_file()
    stored = torch.load(path, weights_only=True)  # plain tensors and strings: loads without unpickling code
    assert stored["format"] == CACHE_FORMAT and torch.equal(stored["outputs"], first.tables["teacher"])
    # another run with the same teacher and data loads the file: no teacher forward at all
    calls = teacher.calls
    second = prepare(make_trainer(data, teacher, "auto", tmp_path / "b", cache))
    assert second is not None and second.loaded["teacher"] and teacher.calls == calls
    assert torch.equal(second.tables["teacher"], first.tables["teacher"])
    # one changed teacher weight: a new key, a new file, new outputs
    with torch.no_grad():
        teacher.head.bias[0] += 1.0
    third = prepare(make_trainer(data, teacher, "auto", tmp_path / "c", cache))
    assert third is not None and not third.loaded["teacher"] and third.files["teacher"] != path
    assert torch.allclose(third.tables["teacher"][:, 0], first.tables["teacher"][:, 0] + 1.0, atol=1e-5)
    # a corrupt file is recomputed, not trusted
    third.files["teacher"].write_bytes(b"not a tensor file")  # type: ignore[union-attr]
    fourth = prepare(make_trainer(data, teacher, "auto", tmp_path / "d", cache))
    assert fourth is not None and not fourth.loaded["teacher"]
    assert torch.equal(fourth.tables["teacher"], third.tables["teacher"])


def test_the_key_covers_teacher_weights_buffers_data_view_and_precision():
    teacher, data = Net(0), ToyPairs()
    key = cache_key(teacher, data.cache_identity("input_clean"), "fp32")
    assert key == cache_key(Net(0), ToyPairs().cache_identity("input_clean"), "fp32")
    assert key != cache_key(Net(2), data.cache_identity("input_clean"), "fp32")  # other weights
    moved = Net(0)
    moved.body[1].running_mean += 0.1  # a buffer, not a parameter, changes the outputs too
    assert state_digest(moved) != state_digest(teacher)
    assert key != cache_key(teacher, ToyPairs(seed=1).cache_identity("input_clean"), "fp32")  # other data
    assert key != cache_key(teacher, ToyPairs(root="elsewhere").cache_identity("input_clean"), "fp32")
    assert key != cache_key(teacher, {**data.cache_identity("input_clean"), "view": "other"}, "fp32")
    assert key != cache_key(teacher, data.cache_identity("input_clean"), "bf16")


def test_augmented_data_runs_the_teacher_online(tmp_path, caplog):
    flipping = ToyPairs(flip=True)
    with caplog.at_level(logging.WARNING, logger="distill.engine.teacher_cache"):
        assert prepare(make_trainer(flipping, Net(0), "auto", tmp_path / "auto")) is None
    assert "augmentation" in caplog.text
    with pytest.raises(RecipeError, match=r"train\.teacher_cache: cannot cache .*augmentation.*online"):
        prepare(make_trainer(flipping, Net(0), "cached", tmp_path / "cached"))
    assert prepare(make_trainer(ToyPairs(), Net(0), "online", tmp_path / "online")) is None
    teacher = Net(0)
    trainer = make_trainer(flipping, teacher, "auto", None)
    trainer.fit()
    assert teacher.calls == 3  # online: one teacher forward per step, on that step's (flipped) views


def test_without_an_output_folder_the_outputs_live_in_memory():
    data, teacher = ToyPairs(), Net(0)
    outputs = prepare(make_trainer(data, teacher, "auto", None))
    assert outputs is not None and outputs.files["teacher"] is None
    direct = compute_outputs(teacher, data, "input_clean", torch.device("cpu"), batch_size=7)
    assert torch.allclose(direct, outputs.tables["teacher"], atol=1e-6)
    rng = torch.get_rng_state()
    compute_outputs(teacher, data, "input_clean", torch.device("cpu"), batch_size=7)
    assert torch.equal(rng, torch.get_rng_state())  # the global RNG is untouched (resume stays exact)


def test_a_shared_cache_folder_loses_only_the_old_leftovers_of_killed_cache_writes(tmp_path):
    import os
    import time

    from distill.run.atomic import STALE_TEMP_AGE_S

    cache = tmp_path / "shared_cache"
    cache.mkdir()
    key = "0123456789abcdef0123456789abcdef"
    old_leftover = cache / f".teacher-{key}.pt.k1ll3d.tmp"  # a run killed while writing, long ago
    live_write = cache / f".teacher-{'f' * 32}.pt.wr1t1ng.tmp"  # another run writing its cache right now
    user_files = [cache / ".notes.txt.tmp", cache / "mine.pt", cache / f".teacher-{key}.pt.txt"]
    for path in (old_leftover, live_write, *user_files):
        path.write_bytes(b"x")
    long_ago = time.time() - STALE_TEMP_AGE_S - 60
    for path in (old_leftover, *user_files):
        os.utime(path, (long_ago, long_ago))
    result = prepare(make_trainer(ToyPairs(), Net(0), "auto", tmp_path / "run", cache))
    assert result is not None and result.files["teacher"].is_file()
    assert not old_leftover.exists()
    assert live_write.exists(), "a temporary another run may still be writing was removed"
    assert all(p.exists() for p in user_files), "a file distill did not write was removed"
