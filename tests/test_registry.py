"""Registries: decorator forms, lookup errors with suggestions, and third-party entry-point plugins."""

from __future__ import annotations

import sys
import textwrap

import pytest

import distill.registry as registry_module
from distill.errors import RegistryError
from distill.registry import DISTILLERS, REGISTRIES, Registry


def test_decorator_forms_and_descriptions():
    reg: Registry = Registry("widget")

    @reg.register
    class Plain:
        """A plain widget."""

    @reg.register("fancy")
    class Other:
        """A fancy widget.

        More text."""

    @reg.register(name="fn")
    def make():
        """Makes one."""

    assert reg.get("plain") is Plain and reg.get("fancy") is Other and reg.get("fn") is make
    assert reg.describe("fancy") == "A fancy widget."
    with pytest.raises(ValueError, match="already registered"):
        reg.register("fancy")(Plain)


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(RegistryError, match=r"unknown distiller 'mkrd'. Did you mean 'mrkd'\? Valid: .*supervised"):
        DISTILLERS.get("mkrd")


def test_builtin_registries_are_populated():
    for kind in ("distillers", "models", "losses", "metrics", "datasets"):
        assert len(REGISTRIES[kind]) > 0, kind
    assert {"mrkd", "supervised", "logits_kd"} <= set(DISTILLERS.names())


def test_entry_point_plugin_adds_a_distiller(tmp_path, monkeypatch):
    pkg = tmp_path / "my_kd_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from distill.distillers.supervised import Supervised
            from distill.registry import DISTILLERS

            @DISTILLERS.register("plugin_kd")
            class PluginKD(Supervised):
                """A distiller from a third-party package."""
            '''
        )
    )
    dist = tmp_path / "my_kd_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-kd-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[distill.plugins]\nmy_kd = my_kd_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry_module, "_loaded", False)
    try:
        assert "plugin_kd" in DISTILLERS
        assert DISTILLERS.describe("plugin_kd") == "A distiller from a third-party package."
    finally:
        DISTILLERS._entries.pop("plugin_kd", None)
        sys.modules.pop("my_kd_plugin", None)


def test_a_broken_plugin_warns_instead_of_breaking(tmp_path, monkeypatch, caplog):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[distill.plugins]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry_module, "_loaded", False)
    assert "mrkd" in DISTILLERS
    assert "no_such_module_xyz" in caplog.text


def test_each_task_is_named_by_its_registry_key():
    from distill.registry import TASKS

    assert {key: TASKS.get(key).name for key in TASKS.names()} == {key: key for key in TASKS.names()}
    assert {"iqa", "sr", "recognition"} <= set(TASKS.names())
