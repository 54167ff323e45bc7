"""Which evaluation a run reports (``eval.selection``): the last one, or the best on a validation split."""

from __future__ import annotations

import math
from typing import Any

from distill.recipe.config import EvalConfig
from distill.registry import METRICS
from distill.run.folder import Results


class Selection:
    """The selected evaluation: its step, its score (``best_val`` only) and its results.

    ``last`` keeps the latest evaluation (the MRKD paper's policy). ``best_val`` keeps the evaluation whose
    ``select_metric`` of ``select_model`` on ``select_split`` is best (in the metric's own direction; a NaN score
    never wins). :meth:`state_dict` goes into checkpoints, so a resumed run selects as an uninterrupted one would.
    """

    def __init__(self, evaluation: EvalConfig, student_role: str) -> None:
        self.evaluation = evaluation
        self.student_role = student_role
        self.step, self.score, self.results = -1, None, {}

    @property
    def role(self) -> str:
        """The model whose score selects: ``select_model``, else the student."""
        return self.evaluation.select_model or self.student_role

    @property
    def metric(self) -> str:
        """The headline metric: ``select_metric``, else the first evaluated metric ("" when nothing is evaluated)."""
        ev = self.evaluation
        return ev.select_metric or (ev.metrics or [""])[0]

    def observe(self, step: int, results: dict[str, Results]) -> bool:
        """Consider one evaluation; True when ``best_val`` selected it (the caller saves that student)."""
        ev = self.evaluation
        if ev.selection == "last":
            self.step, self.score, self.results = step, None, results
            return False
        score = results[ev.select_split][self.role]["overall"][self.metric]
        sign = 1.0 if METRICS.get(self.metric).higher_is_better else -1.0
        if self.score is None or (math.isfinite(score) and sign * score > sign * self.score):
            self.step, self.score, self.results = step, score, results
            return True
        return False

    def finish(self, step: int, evaluated: bool) -> None:
        """At the end of training: under ``last`` (or without evaluation) the final step is the selected one."""
        if self.evaluation.selection == "last" or not evaluated:
            self.step, self.score = step, None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "score": self.score, "results": self.results}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.score, self.results = state["step"], state["score"], state["results"]
