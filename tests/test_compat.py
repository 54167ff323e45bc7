"""The torchvision/basicsr import fixes: they work here and are a no-op where torchvision imports normally."""

from __future__ import annotations

import sys
import types

import distill._compat as compat


def test_torchvision_and_basicsr_import_on_this_machine():
    tv = compat.import_torchvision()
    assert hasattr(tv.models, "resnet18") and hasattr(tv.models, "vgg16")
    basicsr = compat.import_basicsr()
    from basicsr.archs.edsr_arch import EDSR  # the SR architectures issue 4 builds on

    assert basicsr is sys.modules["basicsr"] and EDSR is not None


def test_fix_is_a_no_op_when_torchvision_imports_normally(monkeypatch):
    fake = types.ModuleType("torchvision")
    calls = []

    def import_module(name):
        calls.append(name)
        return fake

    saved = {k: v for k, v in sys.modules.items() if k.startswith("torchvision")}
    monkeypatch.setattr(compat.importlib, "import_module", import_module)
    assert compat.import_torchvision() is fake
    assert calls == ["torchvision"]
    assert {k: v for k, v in sys.modules.items() if k.startswith("torchvision")} == saved  # nothing dropped/stubbed


def test_only_the_missing_operator_error_is_handled(monkeypatch):
    def broken(name):
        raise RuntimeError("some other torchvision failure")

    monkeypatch.setattr(compat.importlib, "import_module", broken)
    try:
        compat.import_torchvision()
    except RuntimeError as err:
        assert "some other" in str(err)
    else:  # pragma: no cover
        raise AssertionError("unrelated errors must propagate")
