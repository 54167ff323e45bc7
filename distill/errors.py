"""Exceptions that the CLI reports as one clear line with exit code 2.

Everything a *user* can cause (a bad recipe, a missing dataset, a diverging loss) raises a subclass of
:class:`DistillError`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


def check_names(what: str, expected: Iterable[str], given: Iterable[str], extra_label: str = "unexpected") -> None:
    """Raise :class:`RecipeError` ``"{what} {expected}; got {given} (missing: …) ({extra_label}: …)"`` on a mismatch."""
    expected, given = list(expected), list(given)
    missing = [n for n in expected if n not in given]
    extra = [n for n in given if n not in expected]
    if missing or extra:
        raise RecipeError(
            f"{what} {expected}; got {given}"
            + (f" (missing: {missing})" if missing else "")
            + (f" ({extra_label}: {extra})" if extra else "")
        )


def one_line(err: BaseException) -> str:
    """The user-facing message of ``err`` on one line.

    A DataLoader worker re-raises a dataset's error with the worker's traceback in the message; only the original
    message (its last line, without the ``module.Class:`` prefix) is kept.
    """
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        prefix = f"{type(err).__module__}.{type(err).__name__}: "
        text = last.removeprefix(prefix).removeprefix(f"{type(err).__name__}: ")
    return " ".join(text.split("\n")).strip()


def first_line(err: BaseException, limit: int = 160) -> str:
    """The first line of ``err``'s message (its type's name when empty): a library error quoted inside ours.

    A line longer than ``limit`` keeps its first sentence (torch's "failed finding central directory. This is an
    internal miniz error. If you are seeing this error …"), else its first ``limit`` characters and "…".
    """
    line = (str(err).strip().splitlines() or [type(err).__name__])[0].strip()
    if len(line) <= limit:
        return line
    end = line.find(". ")
    if 0 < end < limit:
        return line[:end]
    return line[: limit - 1].rstrip() + "…"


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


class OutputPathError(DistillError):
    """An output path is a file where a folder is needed, lies under a file, or is in a read-only folder."""


class CheckpointError(DistillError):
    """A checkpoint is missing, corrupt or does not belong to this recipe/model."""


class NonFiniteLossError(DistillError):
    """A loss term became NaN or infinite: names the step and the term."""

    def __init__(self, step: int, term: str, value: float, hint: str = "") -> None:
        self.step, self.term, self.value = step, term, value
        msg = f"non-finite loss at step {step}: term '{term}' = {value}"
        super().__init__(msg + (f". {hint}" if hint else ""))
