"""The training engine shared by every distiller."""

from distill.engine.evaluator import Evaluator
from distill.engine.trainer import RunResult, Trainer, seed_everything

__all__ = ["Evaluator", "RunResult", "Trainer", "seed_everything"]
