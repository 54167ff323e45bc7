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


def test_a_models_task_is_the_one_fact_its_registration_names(monkeypatch):
    from torch import nn

    from distill.build import build_model
    from distill.deploy.model import deployable_task
    from distill.errors import DistillError
    from distill.models.iqa.resnet import ResNetRegressor
    from distill.recipe.check import load_recipe, recipe_task
    from distill.recipe.config import ComponentSpec
    from distill.registry import MODELS, TASKS
    from distill.tasks import IQATask, RecognitionTask, SRTask, Task, task_of

    builtin = {n: MODELS.task(n) for n in ("edsr", "rcan", "swinir", "resnet_regressor", "hyperiqa", "dbcnn", "vgg_m",
                                           "vgg16", "resnet_classifier", "routed_classifier", "scnn")}  # fmt: skip
    assert builtin == {"edsr": "sr", "rcan": "sr", "swinir": "sr", "resnet_regressor": "iqa", "hyperiqa": "iqa",
                       "dbcnn": "iqa", "vgg_m": "recognition", "vgg16": "recognition",
                       "resnet_classifier": "recognition", "routed_classifier": "recognition",
                       "scnn": "recognition"}  # fmt: skip
    assert all(MODELS.task(n) in TASKS for n in MODELS.names() if MODELS.task(n) is not None)
    # built from its spec (a factory's model: basicsr's EDSR class is not registered), or by hand from its class
    edsr = build_model(ComponentSpec("edsr", {"num_feat": 4, "num_block": 1, "upscale": 2}))
    assert isinstance(task_of(edsr), SRTask)
    assert isinstance(task_of(ResNetRegressor(depth=10)), IQATask)
    # a recipe's task: its student's registration (quality_router's student role is its quality predictor)
    assert recipe_task(load_recipe("recipes/quickstart_sr.yaml")[0]) == "sr"
    assert recipe_task(load_recipe("recipes/cqd_cub_multires.yaml")[0]) == "recognition"

    # a model registered without a task: the generic task (reports only); predicting with it is one clear error
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_descriptions", dict(MODELS._descriptions))
    monkeypatch.setattr(MODELS, "_tasks", dict(MODELS._tasks))

    @MODELS.register("test_untasked")
    class Untasked(nn.Linear):
        """No task."""

    @MODELS.register("test_classifier", task="recognition")
    class Tasked(Untasked):
        """A classifier."""

    assert type(task_of(Untasked(2, 2))) is Task and MODELS.task("test_untasked") is None
    assert isinstance(task_of(Tasked(2, 2)), RecognitionTask)  # its own registration, not its base class's
    assert type(task_of(nn.Linear(2, 2))) is Task  # no registered class
    with pytest.raises(DistillError, match=r"Untasked predicts: its model registration names no task"):
        deployable_task(Untasked(2, 2))
    MODELS.register("test_untasked_again", task="no_such_task")(type("Bad", (nn.Linear,), {}))
    with pytest.raises(RegistryError, match=r"unknown task 'no_such_task'"):
        task_of(MODELS.get("test_untasked_again")(2, 2))
