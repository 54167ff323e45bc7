"""Recipes: inheritance, overrides, type checking and the promised error messages."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from distill.errors import RecipeError
from distill.recipe.check import load_recipe
from distill.recipe.config import Recipe

BASE = """
name: base_run
models:
  teacher: {name: resnet_regressor, args: {depth: 10}}
  student: {name: resnet_regressor, args: {depth: 10}}
distiller: {name: mrkd, args: {alpha: 1.0}}
data:
  root: data/x
  train: {name: kadid10k, args: {split: train, crop: 32}}
  eval:
    test: {name: kadid10k, args: {split: test}}
optim:
  teacher: {lr: 0.2, schedule: {name: cosine}}
  student: {lr: 0.05, schedule: {name: cosine}}
train: {epochs: 2, batch_size: 4}
eval: {metrics: [srcc, plcc], group_by: distortion}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


def test_base_recipe_loads_typed(base):
    recipe, resolved = load_recipe(base)
    assert isinstance(recipe, Recipe)
    assert recipe.optim["teacher"].lr == 0.2 and recipe.optim["teacher"].schedule.name == "cosine"
    assert recipe.train.epochs == 2 and recipe.train.iterations is None
    assert resolved["models"]["student"]["args"] == {"depth": 10}


def test_inheritance_overrides_only_what_changes(tmp_path, base):
    child = write(tmp_path, "urkd.yaml", "_base_: base.yaml\nname: urkd\noptim: {teacher: {lr: 0.05}}\n")
    recipe, _ = load_recipe(child)
    assert recipe.name == "urkd"
    assert recipe.optim["teacher"].lr == 0.05
    assert recipe.optim["teacher"].schedule.name == "cosine"  # merged, not replaced
    assert recipe.optim["student"].lr == 0.05


def test_replace_marker_replaces_a_mapping(tmp_path, base):
    child = write(tmp_path, "c.yaml", "_base_: base.yaml\ndistiller: {_replace_: true, name: mrkd}\n")
    recipe, _ = load_recipe(child)
    assert recipe.distiller.args == {}


def test_set_overrides_are_type_checked(base):
    recipe, _ = load_recipe(base, ["train.epochs=5", "optim.student.lr=1e-3", "distiller.args.detach_teacher=true"])
    assert recipe.train.epochs == 5 and recipe.optim["student"].lr == 1e-3
    assert recipe.distiller.args["detach_teacher"] is True
    with pytest.raises(RecipeError, match=r"^--set: train.epochs: got 'many', expected an integer"):
        load_recipe(base, ["train.epochs=many"])


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        ("train: {epoch: 3}", r"bad.yaml: train.epoch: unknown key for TrainConfig. Did you mean 'epochs'\?"),
        ("train: {batch_size: big}", r"train.batch_size: got 'big', expected an integer"),
        (
            "optim: {teacher: {optimizer: sgdd}}",
            r"optim.teacher.optimizer: got 'sgdd'. Did you mean 'sgd'\? Allowed: sgd, adam, adamw",
        ),
        ("distiller: {name: mrdk}", r"distiller.name: unknown distiller 'mrdk'. Did you mean 'mrkd'\? Valid: .*mrkd"),
        (
            "distiller: {args: {alpah: 2}}",
            r"distiller.args.alpah: unknown key for distiller 'mrkd'. Did you mean 'alpha'\?",
        ),
        ("models: {student: {args: {dropout: high}}}", r"models.student.args.dropout: got 'high', expected a number"),
        ("eval: {metrics: [srcc, srocc]}", r"eval.metrics\[1\]: unknown metric 'srocc'. Did you mean 'srcc'\?"),
        ("train: {iterations: 10}", r"train: set exactly one of train.epochs or train.iterations"),
        ("eval: {selection: best_val}", r"eval.select_split: selection best_val needs a 'val' split"),
    ],
)
def test_bad_keys_name_file_key_value_and_choices(tmp_path, base, extra, pattern):
    child = write(tmp_path, "bad.yaml", f"_base_: base.yaml\n{extra}\n")
    with pytest.raises(RecipeError, match=pattern) as info:
        load_recipe(child)
    assert str(info.value).startswith(str(tmp_path)), "the message starts with the file the key came from"


def test_error_points_at_the_base_file_when_the_bad_key_lives_there(tmp_path):
    write(tmp_path, "base.yaml", BASE.replace("batch_size: 4", "batch_size: four"))
    child = write(tmp_path, "child.yaml", "_base_: base.yaml\nname: child\n")
    with pytest.raises(RecipeError, match=r"base.yaml: train.batch_size: got 'four'"):
        load_recipe(child)


def test_malformed_yaml_names_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "name: x\ntrain: {epochs: 2\n")
    with pytest.raises(RecipeError, match=r"broken.yaml \(line \d+, column \d+\): malformed YAML"):
        load_recipe(path)


def test_missing_file_and_base_cycle(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    write(tmp_path, "a.yaml", "_base_: b.yaml\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(RecipeError, match="inheritance cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_yaml_tags_are_not_executed(tmp_path):
    path = write(tmp_path, "evil.yaml", "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="malformed YAML"):
        load_recipe(path)


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_laughs(9), "expands to more than 100000 values"),  # 10**9 values from 430 bytes: hung the command
        ("a: &x [*x]\n", "alias (*name) is used inside the value it names"),  # was a RecursionError traceback
        ("a: &x {b: *x}\n", "alias (*name) is used inside the value it names"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_yaml_that_would_hang_or_crash_the_loader_is_one_recipe_error(tmp_path, text, says):
    import time

    path = write(tmp_path, "bad.yaml", text)
    start = time.perf_counter()
    with pytest.raises(RecipeError, match=re.escape(says)):
        load_recipe(path)
    assert time.perf_counter() - start < 10
    if text.startswith("a: &x"):  # the same value given with --set
        with pytest.raises(RecipeError, match=re.escape(says)):
            load_recipe(write(tmp_path, "ok.yaml", "{}\n"), ["train.epochs=" + text.removeprefix("a: ").strip()])


def test_a_set_on_one_use_of_a_yaml_anchor_changes_that_use_only():
    from distill.recipe.files import apply_overrides, load_raw

    parts = Path(__file__).parent.parent / "recipes" / "_parts" / "cub_vggm.yaml"
    data, prov = load_raw(parts)  # three optimiser groups share `schedule: *cqd_lr`
    apply_overrides(data, ["optim.student_head_weight.schedule.name=cosine"], prov)
    names = {group: data["optim"][group]["schedule"]["name"] for group in ("student", "student_head_weight",
                                                                            "student_head_bias")}  # fmt: skip
    assert names == {"student": "piecewise", "student_head_weight": "cosine", "student_head_bias": "piecewise"}


def test_a_set_through_a_scalar_names_the_missing_key():
    from distill.recipe.files import apply_overrides

    says = r"--set train\.progress=false: train is 5, not a mapping, so it has no key 'progress'"
    with pytest.raises(RecipeError, match=says):
        apply_overrides({"train": 5}, ["train.progress=false"], {})


def test_shipped_recipes_all_validate():
    root = Path(__file__).parent.parent.joinpath("recipes")
    recipes = sorted(p for p in root.rglob("*.yaml") if "_parts" not in p.parts)  # parts are fragments
    assert recipes, "the project ships recipes"
    for path in recipes:
        recipe, resolved = load_recipe(path)
        assert yaml.safe_load(yaml.safe_dump(resolved)) == resolved
        assert recipe.eval.selection in ("last", "best_val")


def test_model_arg_choices_come_from_the_signature(tmp_path, base):
    child = write(tmp_path, "d.yaml", "_base_: base.yaml\nmodels: {student: {args: {depth: 12}}}\n")
    with pytest.raises(RecipeError, match=r"models.student.args.depth: got 12. Allowed: 10, 18, 34, 50, 101, 152"):
        load_recipe(child)


# ------------------------------------------------------------------------------------------------------------ vars
def test_vars_are_substituted_typed_and_set_once(tmp_path, base):
    child = write(
        tmp_path,
        "v.yaml",
        """\
        _base_: base.yaml
        vars: {crop: 48, tag: wide}
        description: "crop ${crop}, ${tag}"
        data: {train: {args: {crop: "${crop}"}}}
        output: {dir: "runs/${tag}_${crop}"}
        """,
    )
    recipe, resolved = load_recipe(child)
    assert recipe.data.train.args["crop"] == 48  # a whole reference keeps the variable's type
    assert recipe.description == "crop 48, wide" and recipe.output.dir == "runs/wide_48"
    assert resolved["vars"] == {"crop": 48, "tag": "wide"}  # kept in the saved recipe beside the values
    recipe, _ = load_recipe(child, ["vars.crop=64"])  # one override changes every use
    assert recipe.data.train.args["crop"] == 64 and recipe.output.dir == "runs/wide_64"


@pytest.mark.parametrize(
    ("sets", "pattern"),
    [
        (
            ["data.train.args.crop=${crops}"],
            r"^--set: data\.train\.args\.crop: \$\{crops\} is not defined in vars "
            r"\(defined: crop\)",
        ),
        (["data.train.args.crop=${ crop}"], r"data\.train\.args\.crop: got '\$\{ crop\}': a reference is written"),
        (["vars=[1]"], r"^--set: vars: expected a mapping of names to values"),
        (["vars.crop=[1, 2]"], r"^--set: vars\.crop: got \[1, 2\]; a variable is one number, string or bool"),
        (
            ["vars.crop=wide"],
            r"^v\.yaml \(\$\{crop\} = vars\.crop from --set\): data\.train\.args\.crop: got 'wide', "
            r"expected",
        ),
    ],
)
def test_bad_vars_name_the_key_and_where_the_value_came_from(tmp_path, base, sets, pattern, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "v.yaml", '_base_: base.yaml\nvars: {crop: 48}\ndata: {train: {args: {crop: "${crop}"}}}\n')
    with pytest.raises(RecipeError, match=pattern):
        load_recipe("v.yaml", sets)


SR_RECIPES = sorted(
    p for p in Path(__file__).parent.parent.joinpath("recipes").glob("*.yaml") if "scale" in load_recipe(p)[1]["vars"]
)


def test_sr_recipes_write_their_scale_once():
    """Every SR recipe takes model upscale, dataset scale and metric crop_border from ``vars.scale``, so one
    ``--set vars.scale=N`` moves them all (the teacher's pretrained file is still the recipe's to change)."""
    assert len(SR_RECIPES) >= 15
    for path in SR_RECIPES:
        recipe, _ = load_recipe(path, ["vars.scale=3"])
        ups = {spec.args["upscale"] for spec in recipe.models.values()}
        sets = [recipe.data.train, *recipe.data.eval.values()]
        scales = {spec.args["scale"] for spec in sets}
        crops = {args["crop_border"] for args in recipe.eval.metric_args.values()}
        assert ups == scales == crops == {3}, path.name


def test_vars_alone_are_no_resume_difference_but_what_they_set_is():
    from distill.run.folder import recipe_differences

    _, new = load_recipe(Path(__file__).parent.parent / "recipes" / "quickstart_sr.yaml")
    old = {k: v for k, v in new.items() if k != "vars"}  # a run folder saved before vars existed
    assert recipe_differences(old, new) == []
    _, x3 = load_recipe(Path(__file__).parent.parent / "recipes" / "quickstart_sr.yaml", ["vars.scale=3"])
    assert "models.student.args.upscale (2 -> 3)" in recipe_differences(new, x3)
