"""The declared dataset contract: defaults for plain datasets, forwarding wrappers, what the engine calls."""

from __future__ import annotations

import pytest
import torch

from distill.data.base import DatasetWrapper, DistillDataset, as_distill_dataset
from distill.distillers import Supervised
from distill.engine import Trainer
from distill.recipe.config import EvalConfig, OptimConfig, TrainConfig
from tests.toy import TinyRegressor, ToyIQA

pytestmark = pytest.mark.usefixtures("one_thread")


class Plain(torch.utils.data.Dataset):
    """A plain torch dataset: items only, no declared capability."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {"input": torch.full((3, 4, 4), i / 8), "target": torch.tensor(i / 8)}


class Recording(ToyIQA):
    """ToyIQA that records the engine's set_seed/set_epoch calls and reports corrupt files."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.calls: list[tuple[str, int]] = []
        self.corrupt_files = ["bad.png"]

    def set_epoch(self, epoch: int) -> None:
        self.calls.append(("epoch", epoch))
        super().set_epoch(epoch)

    def set_seed(self, seed: int) -> None:
        self.calls.append(("seed", seed))
        super().set_seed(seed)


def test_a_plain_dataset_gets_the_declared_defaults():
    wrapped = as_distill_dataset(Plain())
    assert isinstance(wrapped, DistillDataset) and len(wrapped) == 8
    assert (wrapped.is_synthetic, wrapped.augmented, list(wrapped.corrupt_files), wrapped.group_names) == (
        False,
        False,
        [],
        None,
    )
    assert wrapped.cache_identity("input") is None
    wrapped.set_epoch(3)  # a no-op, not an error
    declared = ToyIQA(4)
    assert as_distill_dataset(declared) is declared


def test_a_wrapper_forwards_the_inner_datasets_capabilities():
    inner = ToyIQA(16)
    wrapper = DatasetWrapper(inner)
    before = [wrapper[i]["input"] for i in range(16)]
    wrapper.set_epoch(1)  # reaches the inner dataset: its per-item flips are redrawn
    assert inner.epoch == 1
    assert any(not torch.equal(a, wrapper[i]["input"]) for i, a in enumerate(before))
    inner.corrupt_files = ["x.png"]
    assert list(wrapper.corrupt_files) == ["x.png"]


def test_the_engine_calls_the_declared_hooks_each_epoch_and_reports_corrupt_files():
    data = Recording(8)
    cfg = TrainConfig(epochs=2, batch_size=4, seed=5, progress=False)
    distiller = Supervised({"student": TinyRegressor()}, loss="mse")
    evaluation = EvalConfig(metrics=["srcc"])  # a toy regressor is of no task: name what to evaluate
    trainer = Trainer(
        distiller, data, {"test": Plain()}, optim={"student": OptimConfig()}, config=cfg, evaluation=evaluation
    )
    result = trainer.fit()
    assert data.calls == [("epoch", 0), ("seed", 5), ("epoch", 1), ("seed", 5)]
    assert result.corrupt_skipped == {"train": ["bad.png"]}
