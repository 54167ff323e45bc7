"""What the command line lets libraries print: nothing but errors, unless ``--debug``.

:func:`install` is called once by ``distill`` (and the table benchmarks) before any work:

* **logging**: the root logger (every library's logger that propagates) shows ERROR and above; ``distill``'s own
  loggers keep INFO. This also silences torch's INFO output at exit (the FakeTensor cache statistics that
  ``torch.export``/``torch.compile`` leave registered with ``atexit``).
* **warnings**: a library's warning (torch's ``TracerWarning``, scipy's, numpy's ``RuntimeWarning`` …) is not
  shown; where the user should know, our code catches the expected one and says it in our words. A warning of ours
  (a category defined in distill) is said once per category, as one ``distill: note: …`` line.

With ``--debug`` (or any ``-W``/``PYTHONWARNINGS`` setting, which is left alone) logging shows INFO from everything
and warnings are shown as Python shows them.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any, TextIO

_FORMAT = "%(levelname)s %(name)s: %(message)s"
_said: set[type[Warning]] = set()


def _ours(category: type[Warning]) -> bool:
    """A category defined in distill: a message in our words (a library's warning about a line of ours is not)."""
    return category.__module__.split(".")[0] == "distill"


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` outside ``--debug``: our warnings once per category, a library's not at all."""
    if not _ours(category) or category in _said:
        return
    _said.add(category)
    text = " ".join(str(message).split())
    print(f"distill: note: {text}", file=file or sys.stderr, flush=True)


def install(debug: bool) -> None:
    """Set up logging and warnings for a command-line run (see the module docstring)."""
    level = logging.INFO if debug else logging.ERROR
    logging.basicConfig(level=level, format=_FORMAT)
    logging.getLogger().setLevel(level)  # also when a handler was there before (basicConfig then does nothing)
    logging.getLogger("distill").setLevel(logging.INFO)
    _said.clear()  # each command says its notes once (a process may run several, e.g. tests calling main())
    if debug or sys.warnoptions:
        return
    warnings.simplefilter("default")  # every warning reaches _show (which says each of ours once)
    warnings.showwarning = _show


def said_notes() -> set[type[Any]]:
    """The warning categories already said in this process (for tests)."""
    return set(_said)
