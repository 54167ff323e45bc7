"""Import fixes for the CPU torch + CUDA torchvision combination (see README, "Installing").

* The registry's torchvision wheels are CUDA builds.  On a CPU-only torch, ``import torchvision`` fails with
  ``RuntimeError: operator torchvision::nms does not exist`` raised by an unguarded fake-op registration in
  ``torchvision._meta_registrations``.  :func:`import_torchvision` drops the half-imported modules, replaces that
  one module with an empty stand-in and imports again.  Where torchvision imports normally nothing is touched.
* basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which newer torchvision removed;
  :func:`import_basicsr` aliases it to ``torchvision.transforms.functional`` only when it is missing.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_TV_PATCHED = False


def import_torchvision() -> Any:
    """Import torchvision, working around the CUDA-wheel-on-CPU-torch fake-op registration failure."""
    global _TV_PATCHED
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "does not exist" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    _TV_PATCHED = True
    return importlib.import_module("torchvision")


def torchvision_was_patched() -> bool:
    """True when :func:`import_torchvision` had to apply the CPU workaround."""
    return _TV_PATCHED


def import_basicsr() -> Any:
    """Import basicsr after making ``torchvision.transforms.functional_tensor`` importable."""
    import_torchvision()
    try:
        importlib.import_module("torchvision.transforms.functional_tensor")
    except ImportError:
        functional = importlib.import_module("torchvision.transforms.functional")
        sys.modules["torchvision.transforms.functional_tensor"] = functional
    return importlib.import_module("basicsr")
