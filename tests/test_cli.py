"""The command line: exit codes, one-line errors, listing, and the promised messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from distill import __version__
from distill.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, timeout=120)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"distill {__version__}"


def test_list_prints_every_kind_with_descriptions(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("distillers:", "models:", "datasets:", "losses:", "metrics:", "distortions:", "writers:"):
        assert kind in out
    assert "mrkd" in out and "Multi-rate online distillation" in out
    assert main(["list", "metrics"]) == 0
    assert "srcc" in capsys.readouterr().out


def test_list_unknown_kind_is_a_user_error(capsys):
    assert main(["list", "gizmos"]) == 2
    assert "unknown kind 'gizmos'" in capsys.readouterr().err


def test_bad_recipe_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("_base_: " + str(tmp_path / "../../../nonexistent.yaml") + "\n")
    proc = run_cli("run", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error:") and "_base_: recipe file" in lines[0]
    assert "not found" in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "run", str(tmp_path / "missing.yaml"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "RecipeError" in proc.stderr


def test_unknown_override_key_names_it(tmp_path, capsys):
    code = main(["run", "recipes/quickstart.yaml", "--set", "train.epochz=3", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--set: train.epochz: unknown key for TrainConfig. Did you mean 'epochs'?" in err
    assert not (tmp_path / "r").exists(), "a rejected recipe writes nothing"


def test_data_command_writes_a_synthetic_set_and_checks_options(tmp_path, capsys):
    out = tmp_path / "k"
    args = ["data", "kadid10k", str(out), "--set", "n_refs=2", "--set", "size=[32, 32]"]
    assert main([*args, "--set", "distortions=[gaussian_blur, white_noise]"]) == 0
    assert (out / "dmos.csv").read_text().count("\n") == 1 + 2 * 2 * 5
    assert main(["data", "kadid10k", str(tmp_path / "k2"), "--set", "n_ref=2"]) == 2
    err = capsys.readouterr().err
    assert "n_ref: unknown key for synthetic dataset writer 'kadid10k'. Did you mean 'n_refs'?" in err
    assert main([*args]) == 2, "an existing set is not overwritten"
    assert "overwrite" in capsys.readouterr().err


def test_run_over_seeds_prints_mean_std_and_median(tmp_path, capsys):
    from tests.test_mrkd_e2e import RECIPE, tiny

    code = main(["run", RECIPE, "--seeds", "0,1", "--out", str(tmp_path / "rep"), *tiny(tmp_path, "train.epochs=1")])
    assert code == 0
    out = capsys.readouterr().out
    assert "seeds [0, 1]" in out and "±" in out and "median" in out
    assert f"report: {tmp_path / 'rep' / 'report.html'}" in out  # the seeds side by side
    assert (tmp_path / "rep" / "report.html").read_text().count("<section>") == 2
    assert (tmp_path / "rep" / "seed0" / "results.json").exists() and (
        tmp_path / "rep" / "seed1" / "results.json"
    ).exists()
