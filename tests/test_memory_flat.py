"""The memory benchmark measures what it says: flat for the engine, growing for a distiller that leaks graphs."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from benchmarks.memory_flat import main as memory_flat
from distill.distillers.mrkd import MRKD
from distill.registry import DISTILLERS
from tests.test_distributed import register_toys, toy_recipe


class LeakyMRKD(MRKD):
    """MRKD that keeps every step's loss terms, and with them their autograd graphs: a textbook leak."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: list[dict[str, torch.Tensor]] = []

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        terms = super().training_step(batch)
        self.kept.append(terms)
        return terms


def check(res: dict[str, Any], epochs: int) -> None:
    rss = [s["rss_mib"] for s in res["samples"]]
    assert [s["epoch"] for s in res["samples"]] == list(range(1, epochs + 1))
    assert res["ratio"] == pytest.approx(rss[-1] / rss[0]) and 0.5 < res["ratio"] < 2


def test_toy_recipe_is_flat_and_a_retained_graph_is_counted(tmp_path, capsys, one_thread):
    register_toys()
    if "leaky_mrkd" not in DISTILLERS:
        DISTILLERS.register(LeakyMRKD, name="leaky_mrkd")
    recipe = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by=None)
    args = ["--recipe", str(recipe), "--scale", "small", "--epochs", "4", "--out", str(tmp_path)]
    res = memory_flat(args)
    check(res, 4)
    assert res["tensor_growth"] <= 0, "the engine retains no tensors from one epoch to the next"
    assert "ratio RSS epoch 4 / epoch 1" in capsys.readouterr().out

    leak = memory_flat([*args, "--set", "distiller.name=leaky_mrkd"])
    check(leak, 4)
    steps_per_epoch = 8  # 61 toy items in batches of 8, the last one partial
    assert leak["tensor_growth"] - res["tensor_growth"] == 3 * 3 * steps_per_epoch  # 3 terms/step, epochs 2-4
    assert not leak["flat"] and "GROWS" in capsys.readouterr().out


@pytest.mark.slow
def test_smoke_scale_quickstart_stays_flat(tmp_path, capsys, one_thread):
    res = memory_flat(["--scale", "smoke", "--out", str(tmp_path)])
    check(res, 6)
    assert res["tensor_growth"] <= 0 and res["flat"], res["samples"]
    assert "FLAT" in capsys.readouterr().out
