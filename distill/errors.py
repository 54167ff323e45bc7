"""Exceptions that the CLI reports as one clear line with exit code 2.

Everything a *user* can cause (a bad recipe, a missing dataset, a diverging loss) raises a subclass of
:class:`DistillError`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DistillError(Exception):
    """Base class of user-facing errors: the message alone must tell the user what is wrong and what to do."""


class RegistryError(DistillError, KeyError):
    """An unknown name was looked up in a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RecipeError(DistillError):
    """A recipe file or override is malformed: names the file, the dotted key, the value and what is allowed."""


class DataError(DistillError):
    """A dataset is missing, malformed or holds a corrupt sample: names the file."""


class CheckpointError(DistillError):
    """A checkpoint is missing, corrupt or does not belong to this recipe/model."""


class NonFiniteLossError(DistillError):
    """A loss term became NaN or infinite: names the step and the term."""

    def __init__(self, step: int, term: str, value: float, hint: str = "") -> None:
        self.step, self.term, self.value = step, term, value
        msg = f"non-finite loss at step {step}: term '{term}' = {value}"
        super().__init__(msg + (f". {hint}" if hint else ""))
