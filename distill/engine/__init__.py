"""The training engine shared by every distiller."""

from distill.engine.evaluator import Evaluator
from distill.engine.runtime import seed_everything
from distill.engine.trainer import Trainer
from distill.run.folder import RunResult

__all__ = ["Evaluator", "RunResult", "Trainer", "seed_everything"]
