"""MRKD end to end on a tiny synthetic KADID-layout set, through the CLI exactly as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from distill.cli import main
from distill.models import CNNIQA

RECIPE = str(Path(__file__).parent.parent / "recipes" / "quickstart.yaml")
TYPES = "[gaussian_blur, lens_blur, white_noise, jpeg, darken, quantisation]"


def tiny(tmp_path: Path, *extra: str) -> list[str]:
    sets = [
        f"data.root={tmp_path / 'kadid'}",
        f"data.synthetic.root={tmp_path / 'kadid'}",  # where the synthetic set may be written
        "data.synthetic.args.n_refs=5",
        "data.synthetic.args.size=[48, 48]",
        f"data.synthetic.args.distortions={TYPES}",
        "data.train.args.crop=32",
        "train.eval_every=1",
        "train.epochs=2",
        "train.batch_size=8",
        "train.progress=false",
        "output.tensorboard=off",
        *extra,
    ]
    return [arg for s in sets for arg in ("--set", s)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    out = tmp / "run"
    code = main(["run", RECIPE, "--out", str(out), *tiny(tmp)])
    return tmp, out, code


def test_quickstart_recipe_trains_and_reports_both_models(finished_run, capsys):
    tmp, out, code = finished_run
    assert code == 0
    for name in ("recipe.yaml", "metrics.jsonl", "results.json", "student.pt", "checkpoints/last.pt"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())["results"]["test"]
    assert set(results) == {"teacher", "student"}
    assert set(results["student"]["groups"]) == {"01", "02", "10", "11", "17", "22"}
    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["train"]["epochs"] == 2 and resolved["distiller"]["name"] == "mrkd"
    assert (tmp / "kadid" / "SYNTHETIC.json").exists() and (tmp / "kadid" / "dmos.csv").exists()


def test_exported_student_loads_into_a_plain_model(finished_run):
    _, out, _ = finished_run
    exported = torch.load(out / "student.pt", weights_only=True)
    assert exported["model"] == {"name": "cnniqa", "args": {"lcn_window": 7, "lcn_c": 0.01}}
    model = CNNIQA(**exported["model"]["args"])
    model.load_state_dict(exported["state_dict"])  # strict: no helper or teacher keys
    assert model(torch.rand(2, 3, 32, 32)).shape == (2,)


def test_rerun_without_resume_refuses_and_keeps_outputs(finished_run, capsys):
    tmp, out, _ = finished_run
    before = (out / "checkpoints" / "last.pt").read_bytes()
    code = main(["run", RECIPE, "--out", str(out), *tiny(tmp)])
    assert code == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_with_a_changed_recipe_is_refused(finished_run, capsys):
    tmp, out, _ = finished_run
    code = main(["run", RECIPE, "--out", str(out), "--resume", *tiny(tmp, "optim.student.lr=0.01")])
    assert code == 2
    assert "optim.student.lr (0.0005 -> 0.01)" in capsys.readouterr().err


def test_missing_dataset_names_the_folder_and_what_to_do(tmp_path, capsys):
    code = main(["run", RECIPE, "--out", str(tmp_path / "r"), *tiny(tmp_path, "data.synthetic=null")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "kadid") in err and "distill data kadid10k" in err
