"""A fourth task (denoising regression) and a fourth method, added from this file only, through the registries.

Nothing under ``distill/`` knows them: the dataset, model, metric, distiller and task register themselves here, then
train through :class:`~distill.engine.Trainer` and through ``distill run`` / ``predict`` / ``eval``. The task brings its
own check before training (``check_run``), its own section of the report page (``report_entry``/``html_sections``)
and how ``distill eval --save-images`` writes its outputs (``save_outputs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distill.build import Run
from distill.cli import main
from distill.data.base import SeededDataset
from distill.data.images import save_rgb
from distill.distillers.base import Distiller
from distill.engine import RunResult, Trainer, seed_everything
from distill.errors import DataError
from distill.metrics.base import register_metric
from distill.recipe.config import EvalConfig, OptimConfig, TrainConfig
from distill.registry import DATASETS, DISTILLERS, MODELS, TASKS
from distill.tasks import PredictOptions, Task, task_of

pytestmark = pytest.mark.usefixtures("one_thread")


@DATASETS.register("toy_noisy_images")
class ToyNoisyImages(SeededDataset):
    """Random smooth images and their noisy copies (noise level 0.1 or 0.2); target = the clean image."""

    def __init__(self, n: int = 16, size: int = 8, seed: int = 0, root: str | None = None) -> None:
        g = torch.Generator().manual_seed(seed)
        self.clean = F.avg_pool2d(torch.rand(n, 3, size + 2, size + 2, generator=g), 3, stride=1)
        self.levels = [0.1 if i % 2 else 0.2 for i in range(n)]
        noise = torch.randn(self.clean.shape, generator=g) * torch.tensor(self.levels)[:, None, None, None]
        self.noisy = (self.clean + noise).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input": self.noisy[i], "target": self.clean[i], "meta": {"name": str(i), "noise": str(self.levels[i])}}


@MODELS.register("toy_denoiser", task="toy_denoising")  # the one fact that makes it a denoiser
class ToyDenoiser(nn.Module):
    """A residual conv denoiser: x - f(x)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


@register_metric("toy_mse", "sample", higher_is_better=False)
def toy_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image."""
    return ((pred - target) ** 2).flatten(1).mean(1)


@DISTILLERS.register("toy_ramp_kd")
class ToyRampKD(Distiller):
    """L1 to the clean image plus L1 to a frozen teacher, whose weight ramps up over the first ``warmup`` steps."""

    roles = ("teacher", "student")
    frozen_roles = ("teacher",)

    def __init__(self, models: dict[str, nn.Module], warmup: int = 4, weight: float = 1.0) -> None:
        super().__init__(models)
        self.warmup, self.weight = warmup, weight

    def training_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        ramp = min(1.0, (self.context.step + 1) / self.warmup)
        out = self.models["student"](batch["input"])
        teacher = self.frozen_forward("teacher", batch["input"])
        return {"task": F.l1_loss(out, batch["target"]), "kd": self.weight * ramp * F.l1_loss(out, teacher)}


@TASKS.register("toy_denoising")
class DenoisingTask(Task):
    """Denoising: the student maps a noisy image to a clean one; predictions are PNGs."""

    name: ClassVar[str] = "toy_denoising"
    default_metrics: ClassVar[tuple[str, ...]] = ("toy_mse",)
    writes: ClassVar[str] = "one denoised PNG per image"
    default_output: ClassVar[str] = "denoised"
    image_outputs: ClassVar[bool] = True  # distill eval --save-images applies

    def save_outputs(self, outputs: torch.Tensor, batch: Mapping[str, Any], folder: Path) -> None:
        for name, image in zip(batch["meta"]["name"], outputs):
            save_rgb(image.clamp(0, 1), folder / f"denoised_{name}.png")

    def check_run(self, run: Run) -> None:
        """A denoising rule of this task alone: every split holds at least 4 images."""
        for key, ds in {"data.train": run.train_set, **{f"data.eval.{k}": v for k, v in run.eval_sets.items()}}.items():
            if len(ds) < 4:
                raise DataError(f"{key}: {len(ds)} images; the toy denoising task needs at least 4")

    def report_entry(self, run: Run, split: str, folder: Path) -> dict[str, Any]:
        return {"noise_levels": sorted(set(run.eval_sets[split].levels))}

    def html_sections(self, run: Any, split: str, entry: Mapping[str, Any]) -> list[str]:
        return [f"<h3>denoising: {split}</h3><p class='toy-denoise'>noise levels {entry['noise_levels']}</p>"]

    def report(self, run: Run, result: RunResult) -> str:
        test = result.results["test"]["student"]["overall"]["toy_mse"]
        return super().report(run, result) + f"\ndenoising: student MSE {test:.3g} on 'test'\n"

    @torch.no_grad()
    def predict(self, model: nn.Module, paths: Sequence[Path], out: str | Path | None, opts: PredictOptions) -> Path:
        from distill.data.images import load_rgb

        folder = Path(out or self.default_output)
        for path in paths:
            save_rgb(model(load_rgb(path)[None])[0].clamp(0, 1), folder / f"{path.stem}.png")
        return folder


def test_the_fourth_method_and_task_train_through_the_trainer(tmp_path):
    seed_everything(0)
    distiller = ToyRampKD({"teacher": ToyDenoiser(8), "student": ToyDenoiser(4)}, warmup=4, weight=0.1)
    task = task_of(distiller.deployable())
    assert isinstance(task, DenoisingTask)
    trainer = Trainer(
        distiller,
        ToyNoisyImages(16),
        {"test": ToyNoisyImages(8, seed=1)},
        optim={"student": OptimConfig(optimizer="adam", lr=0.01)},
        config=TrainConfig(iterations=40, batch_size=4, eval_every=40, progress=False),
        evaluation=EvalConfig(metrics=list(task.default_metrics), group_by="noise"),
        out_dir=tmp_path / "run",
        tensorboard=False,
    )
    before = trainer.evaluate()["test"]["student"]["overall"]["toy_mse"]
    result = trainer.fit()
    after = result.metric("test", "student", "toy_mse")
    assert after < before  # the student learned to denoise
    assert set(result.results["test"]["student"]["groups"]) == {"0.1", "0.2"}
    assert (tmp_path / "run" / "student.pt").is_file()


def test_the_fourth_method_and_task_run_through_the_cli(tmp_path, capsys):
    recipe = tmp_path / "denoise.yaml"
    recipe.write_text(
        "name: toy_denoise\n"
        "models:\n"
        "  teacher: {name: toy_denoiser, args: {width: 8}}\n"
        "  student: {name: toy_denoiser, args: {width: 4}}\n"
        "distiller: {name: toy_ramp_kd, args: {warmup: 4}}\n"
        "data:\n"
        "  train: {name: toy_noisy_images, args: {n: 16}}\n"
        "  eval: {test: {name: toy_noisy_images, args: {n: 8, seed: 1}}}\n"
        "optim: {student: {optimizer: adam, lr: 0.01}}\n"
        "train: {iterations: 8, batch_size: 4, eval_every: 8, progress: false, device: cpu}\n"
        "eval: {metrics: [toy_mse]}\n"
        "output: {tensorboard: false}\n"
    )
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(tmp_path / "few"), "--set", "data.eval.test.args.n=2"]) == 2
    assert "data.eval.test: 2 images; the toy denoising task needs at least 4" in capsys.readouterr().err  # its check
    assert not (tmp_path / "few").exists()  # refused before anything was written
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "denoising: student MSE" in printed  # the task's own reporter
    assert "toy_mse" in printed
    page = (out / "report.html").read_text()
    assert "<h3>denoising: test</h3><p class='toy-denoise'>noise levels [0.1, 0.2]</p>" in page  # its own section

    image = save_rgb(torch.rand(3, 8, 8), tmp_path / "noisy.png")
    assert main(["predict", str(out / "student.pt"), str(image), "--out", str(tmp_path / "clean")]) == 0
    assert f"({DenoisingTask.writes})" in capsys.readouterr().out
    assert (tmp_path / "clean" / "noisy.png").is_file()
    # distill eval: scored on the run's split, its outputs saved by the task's own hook
    assert main(["eval", str(out / "student.pt"), "test", "--save-images", str(tmp_path / "eval")]) == 0
    assert "task toy_denoising" in capsys.readouterr().out
    saved = sorted(p.name for p in (tmp_path / "eval" / "test").iterdir())
    assert saved == sorted(f"denoised_{i}.png" for i in range(8))
