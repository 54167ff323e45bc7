"""Errors that point the right way, and a data.root typo that makes no data.

* a ``data.root`` other than the folder the recipe declares for its synthetic set (``--set``, a copied or edited
  recipe) is never filled: one line naming the folder and ``distill data fetch NAME``, and no file written;
* an unresolvable ``_base_`` names the file that gave it and how relative bases resolve;
* ``--set train..epochs=3`` names the empty key segment;
* the SR quickstart without its teacher names ``recipes/sr_teacher_quickstart.yaml`` (found from the recipes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.cli import main
from distill.recipe.files import recipe_that_writes
from tests.test_mipkd import TINY_DATA

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
QUICKSTART = str(RECIPES / "quickstart.yaml")


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), lines
    return lines[0]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------------------- a typo makes no data
@pytest.mark.parametrize("how", ["set", "copied_recipe", "edited_recipe"])
def test_a_data_root_the_recipe_does_not_declare_is_never_filled(how, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "data" / "kadid10k_typo"
    if how == "set":
        argv = ["run", QUICKSTART, "--set", f"data.root={typo}"]
    else:
        recipe = tmp_path / "mine.yaml"
        if how == "copied_recipe":  # a recipe of one's own on top of the quickstart, with another root
            text = f"_base_: {QUICKSTART}\ndata: {{root: {typo}}}\n"
        else:  # the quickstart copied (bases made absolute) and its data.root edited, its synthetic.root left as is
            text = Path(QUICKSTART).read_text().replace("_base_: [", f"_base_: [{RECIPES}/")
            text = text.replace(", _parts", f", {RECIPES}/_parts")
            text = text.replace("  root: data/kadid10k_synthetic\n", f"  root: {typo}\n", 1)
            assert f"root: {typo}" in text and "root: data/kadid10k_synthetic" in text
        recipe.write_text(text)
        argv = ["run", str(recipe)]
    before = _files(tmp_path)
    assert main(argv) == 2
    err = _error(capsys)
    assert f"data.root {typo}: no such folder, and nothing was written" in err
    assert f"`distill data fetch kadid10k {typo}`" in err and "data.synthetic.root" in err
    assert _files(tmp_path) == before, "a file was written"


def test_the_declared_synthetic_root_is_still_written(tmp_path, monkeypatch, capsys):
    from distill.build import ensure_data
    from distill.recipe.check import load_recipe

    root = tmp_path / "synthetic"
    sets = [f"data.root={root}", f"data.synthetic.root={root}", "data.synthetic.args.n_refs=1"]
    recipe, _ = load_recipe(QUICKSTART, [*sets, "data.synthetic.args.distortions=[jpeg]"])
    ensure_data(recipe.data)
    assert (root / "SYNTHETIC.json").is_file() and (root / "dmos.csv").is_file()


# ------------------------------------------------------------------------------------ errors pointing the way
def test_a_copied_recipe_whose_base_does_not_resolve_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "experiments" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text("_base_: mrkd_kadid_resnet50.yaml\nname: mine\n")
    assert main(["run", str(mine)]) == 2
    err = _error(capsys)
    assert f"{mine}: _base_: recipe file 'mrkd_kadid_resnet50.yaml' not found" in err
    assert f"looked for {mine.parent / 'mrkd_kadid_resnet50.yaml'}" in err
    assert f"resolved against the folder of the file that names it ({mine.parent}/)" in err
    assert "recipes/mrkd_kadid_resnet50.yaml" in err  # the project's recipe it probably meant
    # a base of a base: the file that names the missing one is the one blamed
    (tmp_path / "experiments" / "middle.yaml").write_text("_base_: nowhere/base.yaml\n")
    mine.write_text("_base_: middle.yaml\nname: mine\n")
    assert main(["run", str(mine)]) == 2
    err = _error(capsys)
    assert f"{mine.parent / 'middle.yaml'}: _base_: recipe file 'nowhere/base.yaml' not found" in err


@pytest.mark.parametrize("key", ["train..epochs", ".epochs", "train.", "train. .epochs"])
def test_an_empty_key_segment_is_named(key, capsys):
    assert main(["run", QUICKSTART, "--set", f"{key}=3"]) == 2
    err = _error(capsys)
    assert f"the key {key!r} has an empty segment" in err and "unknown key" not in err


def test_the_sr_quickstart_without_its_teacher_names_the_teacher_quickstart(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no runs/sr_teacher_quickstart/student.pt here
    data = tmp_path / "div2k"
    sets = [f"data.root={data}", f"data.synthetic.root={data}", *TINY_DATA]
    argv = ["run", str(RECIPES / "quickstart_sr.yaml"), *[a for s in sets for a in ("--set", s)]]
    assert main(argv) == 2
    err = _error(capsys)
    assert "runs/sr_teacher_quickstart/student.pt: EDSR c32 b8 x2 weights file not found" in err
    assert "It is written by `distill run " in err and "sr_teacher_quickstart.yaml`" in err
    assert "mipkd_teacher" not in err


def test_the_recipe_that_writes_a_file_is_found_by_its_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "teacher.yaml").write_text("name: my_teacher\n")
    (tmp_path / "r" / "elsewhere.yaml").write_text("name: other\noutput:\n  dir: out/{name}_run\n")
    (tmp_path / "r" / "broken.yaml").write_text("_base_: missing.yaml\n")  # skipped, not an error
    assert recipe_that_writes("runs/my_teacher/student.pt", [tmp_path / "r"]) == tmp_path / "r" / "teacher.yaml"
    assert recipe_that_writes("out/other_run/student.pt", [tmp_path / "r"]) == tmp_path / "r" / "elsewhere.yaml"
    assert recipe_that_writes("runs/nobody/student.pt", [tmp_path / "r"]) is None


# ------------------------------------------------------------------- a writer's refused value names its option
@pytest.mark.parametrize(
    ("writer", "option", "says"),
    [
        ("kadid10k", "n_refs=-1", "n_refs must be at least 1, got -1"),
        ("kadid10k", "size=[4,4]", "size must be at least 8×8"),
        ("kadid10k", "distortions=[foo]", "unknown KADID-10k distortion type 'foo'"),
        ("tid2013", "levels=9", "levels must be in 1..5, got 9"),
        ("cub200", "n_classes=1", "n_classes must be at least 2, got 1"),
        ("div2k", "n_train=0", "n_train must be in 1..800"),
        # the signature check before the writer runs: an unknown key, a value of the wrong type
        (
            "kadid10k",
            "sizee=[8,8]",
            "data.args.sizee: unknown key for synthetic dataset writer 'kadid10k'. Did you mean",
        ),
        ("kadid10k", "size=abc", "data.args.size: got 'abc', expected list[int]"),
    ],
)
def test_distill_data_names_the_set_option_a_writer_refuses(writer, option, says, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["data", writer, str(out), "--set", "seed=3", "--set", option]) == 2
    err = _error(capsys)
    assert err.startswith(f"distill: error: --set {option}: ") and says in err, err
    assert "seed=3" not in err, "an option the message does not name is blamed"
    assert _files(tmp_path) == [], "a refused set wrote files"


def test_a_recipe_value_the_writer_refuses_names_the_file_and_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "synthetic"
    argv = ["run", QUICKSTART, "--set", f"data.root={root}", "--set", f"data.synthetic.root={root}",
            "--set", "data.synthetic.args.n_refs=-1", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    err = _error(capsys)
    assert f"{QUICKSTART}: data.synthetic.args.n_refs: n_refs must be at least 1, got -1" in err, err
    assert _files(tmp_path) == [], "a refused recipe wrote files"


@pytest.mark.parametrize(
    ("option", "says"),
    [("models.student.args.kernels=0", "CNNIQA kernels must be a positive integer, got 0"),
     ("models.teacher.args.lcn_window=4", "lcn_window (the normalisation window) must be a positive odd integer")],
)  # fmt: skip
def test_a_model_argument_the_model_refuses_writes_no_first_use_data(option, says, tmp_path, monkeypatch, capsys):
    """Models are built before the synthetic set a recipe writes on first use: a refused model argument used to
    come only after the set (minutes of writing at paper shapes) was on disk."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "synthetic"
    argv = ["run", QUICKSTART, "--set", f"data.root={root}", "--set", f"data.synthetic.root={root}",
            "--set", option, "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    assert says in _error(capsys)
    assert _files(tmp_path) == [], "a refused model argument wrote files"


@pytest.mark.parametrize(
    ("argv", "name"),
    [(["run", QUICKSTART, "--out", ""], "--out"), (["run", QUICKSTART, "--out="], "--out"),
     (["data", "kadid10k", " "], "OUT"), (["predict", "student.pt", ""], "INPUTS")],
)  # fmt: skip
def test_an_empty_argument_is_an_error_not_the_default(argv, name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # `--out ""` used to train into runs/<name> under the current folder
    assert main(argv) == 2
    assert _error(capsys) == f"distill: error: {name}: got an empty value; give a path or value (or leave it out)"
    assert _files(tmp_path) == []


def test_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys):
    """Building the parser imports torch for seconds; a Ctrl-C then used to print torch's import traceback."""
    import distill.cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(distill.cli, "build_parser", interrupted)
    assert main(["run", QUICKSTART, "--set", "train.epochs=2"]) == 130
    said = capsys.readouterr().err
    again = f"distill run {QUICKSTART} --set train.epochs=2"
    assert said == f"distill: interrupted while starting, nothing was done; start it again with: {again}\n"
