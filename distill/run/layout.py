"""The one place that names a run folder's files (no torch import: the command line reads it before any work).

A run folder holds ``recipe.yaml`` (the resolved recipe), ``metrics.jsonl`` (one record per logged step and
evaluation), ``checkpoints/last.pt`` and ``checkpoints/best_student.pt``, and at the end ``student.pt``,
``results.json``, ``report/`` and ``report.html``; repeats of one recipe are ``ROOT/seed{k}`` folders.
"""

from __future__ import annotations

from pathlib import Path


class RunFolder:
    """The files of the run folder at ``path``: ``RunFolder(out).results``, ``RunFolder.of_seed(root, 2).path``."""

    RECIPE = "recipe.yaml"
    METRICS = "metrics.jsonl"
    RESULTS = "results.json"
    STUDENT = "student.pt"
    REPORT_PAGE = "report.html"
    REPORT_DIR = "report"
    CHECKPOINTS = "checkpoints"
    LAST = "last.pt"
    BEST_STUDENT = "best_student.pt"
    TENSORBOARD = "tensorboard"
    REPORT_DATA = "data.json"
    TEACHER_CACHE = "teacher_cache"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def of_seed(cls, root: str | Path, seed: int) -> RunFolder:
        """The folder of one repeat (seed ``seed``) under ``root``."""
        return cls(Path(root) / f"seed{seed}")

    @property
    def recipe(self) -> Path:
        return self.path / self.RECIPE

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def results(self) -> Path:
        return self.path / self.RESULTS

    @property
    def student(self) -> Path:
        return self.path / self.STUDENT

    @property
    def report_page(self) -> Path:
        return self.path / self.REPORT_PAGE

    @property
    def report_dir(self) -> Path:
        return self.path / self.REPORT_DIR

    @property
    def report_data(self) -> Path:
        """``report/data.json``: what the report page draws beyond metrics.jsonl and results.json."""
        return self.report_dir / self.REPORT_DATA

    @property
    def teacher_cache(self) -> Path:
        """``teacher_cache/``: the frozen teacher's cached outputs, unless ``train.teacher_cache_dir`` names another
        folder."""
        return self.path / self.TEACHER_CACHE

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def last(self) -> Path:
        """``checkpoints/last.pt``: what ``--resume`` continues."""
        return self.checkpoints / self.LAST

    @property
    def best_student(self) -> Path:
        """``checkpoints/best_student.pt``: the student at the best validation step (``best_val`` selection)."""
        return self.checkpoints / self.BEST_STUDENT

    @classmethod
    def files(cls) -> tuple[str, ...]:
        """Every file a run writes, relative to its folder."""
        return (
            cls.RECIPE,
            cls.METRICS,
            cls.RESULTS,
            cls.STUDENT,
            cls.REPORT_PAGE,
            f"{cls.REPORT_DIR}/{cls.REPORT_DATA}",
            f"{cls.CHECKPOINTS}/{cls.LAST}",
            f"{cls.CHECKPOINTS}/{cls.BEST_STUDENT}",
        )

    @classmethod
    def folders(cls) -> tuple[str, ...]:
        """Folders a run writes into as a whole."""
        return (cls.CHECKPOINTS, cls.TENSORBOARD, cls.REPORT_DIR)
