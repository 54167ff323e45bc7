"""Tasks: what IQA, SR and recognition each own around training (metrics, reports, predictions)."""

from distill.tasks.base import PredictOptions, Task, resolve_metrics, task_of
from distill.tasks.iqa import IQATask
from distill.tasks.recognition import RecognitionTask
from distill.tasks.sr import SRTask

__all__ = ["IQATask", "PredictOptions", "RecognitionTask", "SRTask", "Task", "resolve_metrics", "task_of"]
