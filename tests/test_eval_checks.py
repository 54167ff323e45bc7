"""``distill eval`` and ``distill predict`` check what they are given before scoring, in one line each (before:
tracebacks from torch, the model or a metric): a device this machine lacks, images the model cannot take, images
of several sizes in one batch, a dataset of another task."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from distill.cli import main
from distill.data.iqa.synthetic_kadid import write_synthetic_kadid
from distill.data.sr.synthetic import write_synthetic_sr_benchmark
from tests.test_resume_anytime import tiny_quickstart


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("eval_checks")
    kadid = write_synthetic_kadid(tmp / "kadid", n_refs=3, size=(40, 40), distortions=["gaussian_blur", "jpeg"])
    recipe = tiny_quickstart(tmp, kadid, epochs=1)  # two CNNIQAs (they need at least 7x7 pixels)
    assert main(["run", str(recipe), "--out", str(tmp / "run")]) == 0
    sr = write_synthetic_sr_benchmark(tmp / "sr", sets=["Set5"], n_images=2, size=(24, 24), scales=[2])
    return {"tmp": tmp, "kadid": kadid, "student": tmp / "run" / "student.pt", "sr": sr / "Set5"}


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), lines
    return lines[0]


def _resized(kadid: Path, out: Path, size: tuple[int, int], only: str = "") -> Path:
    shutil.copytree(kadid, out)
    for image in (out / "images").glob(f"*{only}.png" if only else "*.png"):
        Image.open(image).resize(size).save(image)
    return out


@pytest.mark.parametrize("command", ["eval", "predict"])
@pytest.mark.parametrize(("device", "says"), [("banana", "not a device"), ("cuda:99", "CUDA")])
def test_a_device_this_machine_lacks_is_one_line(world, command, device, says, tmp_path, capsys):
    import torch

    if torch.cuda.is_available() and device.startswith("cuda"):
        says = "CUDA device(s)"
    target = f"kadid10k:{world['kadid']}" if command == "eval" else str(world["kadid"] / "images" / "I01.png")
    extra = ["--out", str(tmp_path / "p.csv")] if command == "predict" else []
    assert main([command, str(world["student"]), target, "--device", device, *extra]) == 2
    err = _error(capsys)
    assert err.startswith(f"distill: error: --device: got '{device}'") and says in err, err


def test_eval_names_a_dataset_whose_images_the_model_cannot_take(world, tmp_path, capsys):
    tiny = _resized(world["kadid"], tmp_path / "tiny", (5, 5))
    assert main(["eval", str(world["student"]), f"kadid10k:{tiny}"]) == 2
    assert "dataset kadid10k: the model cannot process its inputs of shape 3×5×5: CNNIQA needs" in _error(capsys)


def test_eval_names_a_dataset_of_several_sizes_before_scoring(world, tmp_path, capsys):
    mixed = _resized(world["kadid"], tmp_path / "mixed", (50, 30), only="_01_01")
    assert main(["eval", str(world["student"]), f"kadid10k:{mixed}"]) == 2
    err = _error(capsys)
    assert "dataset kadid10k: images differ in size" in err
    assert err.endswith("cannot be stacked; pass --batch-size 1") and "args.crop" not in err  # what eval can take
    assert main(["eval", str(world["student"]), f"kadid10k:{mixed}", "--batch-size", "1"]) == 0


def test_eval_of_a_dataset_of_another_task_is_one_line(world, capsys):
    assert main(["eval", str(world["student"]), f"sr_benchmark:{world['sr']}"]) == 2
    err = _error(capsys)
    assert "sr_benchmark: a super-resolution dataset, but" in err and "score it on a dataset of its own task" in err


def test_predict_names_the_image_the_model_cannot_take(world, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(world["kadid"] / "images" / "I01.png", folder / "a.png")
    Image.new("RGB", (1, 1)).save(folder / "tiny.png")
    assert main(["predict", str(world["student"]), str(folder), "--out", str(tmp_path / "p.csv")]) == 2
    err = _error(capsys)
    assert f"the model cannot process {folder / 'tiny.png'} (1×1 px): CNNIQA needs images of at least 7x7" in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            {"name": "cnniqa", "args": {"lcn_window": -1}},
            "its model spec 'cnniqa' does not build: lcn_window (the normalisation window)",
        ),
        ("cnniqa", "its model spec is not {name, args} (got 'cnniqa'); the file is damaged"),
        ({"name": "cnniqa"}, "its model spec is not {name, args}"),
    ],
    ids=["refused_argument", "a_string", "no_args"],
)
def test_a_student_file_with_a_damaged_model_spec_is_one_line(world, spec, says, tmp_path, capsys):
    import torch

    state = torch.load(world["student"], weights_only=True)
    state["model"] = spec
    damaged = tmp_path / "student.pt"
    torch.save(state, damaged)
    image = world["kadid"] / "images" / "I01.png"
    assert main(["predict", str(damaged), str(image), "--out", str(tmp_path / "p.csv")]) == 2
    assert _error(capsys).startswith(f"distill: error: {damaged}: {says}")


# ------------------------------------------------------------------- distill report on a damaged or killed run folder
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (("metrics.jsonl", b'{"bad json\n{"kind": "x"}\n'), "metrics.jsonl, line {n}: not a JSON record"),
        (("metrics.jsonl", b"\xff\xfe\n"), "metrics.jsonl: not a text file"),
        (("results.json", b"[1, 2]"), "results.json: holds a list, not a mapping"),
        (("results.json", b"{"), "results.json: cannot be read as the run wrote it"),
        (("recipe.yaml", b"- a\n"), "recipe.yaml: holds a list, not a mapping"),
    ],
    ids=["metrics_line", "metrics_binary", "results_list", "results_cut", "recipe_list"],
)
def test_report_on_a_damaged_run_folder_is_one_line(world, damage, says, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world["student"].parent, run)
    name, data = damage
    lines = len((run / "metrics.jsonl").read_text().splitlines())
    with open(run / name, "ab" if name == "metrics.jsonl" else "wb") as fh:
        fh.write(data)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 2
    assert _error(capsys).startswith(f"distill: error: {run / says.format(n=lines + 1)}")
    assert not (tmp_path / "r.html").exists()


def test_report_of_a_run_killed_mid_line_leaves_the_cut_line_out(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world["student"].parent, run)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "train", "step": 99, "lo')  # what a SIGKILL mid-write leaves
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()
