"""`distill report`: a self-contained HTML page for IQA, SR and classification runs; the live training console."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from distill.cli import main
from distill.engine.run_log import Console, format_metric
from tests.test_cqd import RECIPES
from tests.test_cqd import TINY as CQD_TINY
from tests.test_mipkd import TINY_DATA as SR_TINY
from tests.test_mrkd_e2e import RECIPE, tiny

pytest.importorskip("matplotlib")


def _sets(*items: str) -> list[str]:
    return [arg for s in items for arg in ("--set", s)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny IQA (MRKD), SR (teacher, then MiPKD from it) and classification (single-model teacher) run."""
    tmp = tmp_path_factory.mktemp("report")
    with contextlib.redirect_stderr(io.StringIO()) as console:  # the live console: progress on
        assert main(["run", RECIPE, "--out", str(tmp / "iqa"), *tiny(tmp, "train.progress=true")]) == 0
    (tmp / "iqa_stderr.txt").write_text(console.getvalue())
    sr_data, sr_synthetic = f"data.root={tmp / 'div2k'}", f"data.synthetic.root={tmp / 'div2k'}"
    arch = "num_feat: 8, num_block: 2, upscale: 2"
    args = ["run", str(RECIPES / "sr_teacher_quickstart.yaml"), "--out", str(tmp / "sr_teacher")]
    assert main([*args, *_sets(sr_data, sr_synthetic, *SR_TINY, f"models.student.args={{{arch}}}")]) == 0
    teacher = f"models.teacher.args={{{arch}, pretrained: {tmp / 'sr_teacher' / 'student.pt'}}}"
    student = "models.student.args={num_feat: 4, num_block: 2, upscale: 2}"
    args = ["run", str(RECIPES / "quickstart_sr.yaml"), "--out", str(tmp / "sr")]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main([*args, *_sets(sr_data, *SR_TINY, teacher, student)]) == 0
    (tmp / "sr_stdout.txt").write_text(printed.getvalue())
    model = "models.student.args={num_classes: 4, width: 0.1, fc_dim: 16, pool: 1, batch_norm: true}"
    args = ["run", str(RECIPES / "cqd_quickstart_teacher.yaml"), "--out", str(tmp / "cls"), "--quiet"]
    cub = (f"data.root={tmp / 'cub'}", f"data.synthetic.root={tmp / 'cub'}")
    sets = _sets(*cub, model, *CQD_TINY, "train.progress=true")
    with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.redirect_stderr(io.StringIO()) as console:
        assert main([*args, *sets]) == 0
    (tmp / "cls_stdout.txt").write_text(printed.getvalue())
    (tmp / "cls_stderr.txt").write_text(console.getvalue())
    return tmp


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _decoded(page: _Page) -> list[Image.Image]:
    """Every embedded image, decoded; anything not embedded as a data URI fails (the page must stand alone)."""
    images = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.width > 8 and image.height > 8
        images.append(image)
    return images


def test_every_run_writes_a_report_whose_images_decode(runs):
    for name in ("iqa", "sr", "cls"):
        page = _parse(runs / name / "report.html")
        assert len(_decoded(page)) >= 2, name


def test_iqa_report_has_curves_per_distortion_bars_and_the_fig1_plot(runs):
    page = _parse(runs / "iqa" / "report.html")
    text = " ".join(page.text)
    assert "per distortion" in text and "hardest (red)" in text and "easiest (green)" in text
    assert "Fig. 1" in text and "training" in text
    assert len(page.images) == 3  # curves, bars, violins


def test_sr_report_shows_bicubic_student_teacher_and_hr_with_psnr(runs, capsys):
    data = json.loads((runs / "sr" / "report" / "data.json").read_text())
    sr = data["splits"]["valid"]["sr"]
    assert sr["models"] == ["bicubic", "student", "teacher"] and len(sr["samples"]) == 1
    psnr = {m: sr["samples"][0]["metrics"][m]["psnr"] for m in sr["models"]}
    assert all(5 < v < 80 for v in psnr.values())
    page = _parse(runs / "sr" / "report.html")
    text = " ".join(page.text)
    for column in ("bicubic", "teacher", "student", "HR"):
        assert column in text
    assert f"{psnr['bicubic']:.2f} dB" in text
    crops = _decoded(page)[1:]  # after the training curves: one row of 4 crops
    assert len(crops) == 4 and len({c.size for c in crops}) == 1


def test_classification_report_has_per_class_accuracy_and_confusions(runs):
    data = json.loads((runs / "cls" / "report" / "data.json").read_text())
    predictions = data["splits"]["test"]["predictions"]
    assert len(predictions["target"]) == len(predictions["outputs"]["student"]) == 8  # 4 classes x 2 test images
    page = _parse(runs / "cls" / "report.html")
    assert len(_decoded(page)) == 5  # curves + (accuracy, confusion) for each of the two splits
    text = " ".join(page.text)
    assert "classes: test" in text and "classes: test_low_resolution" in text
    # a single-model run (here the CQD teacher being trained) is not labelled "student"
    assert "student" not in text.replace("quickstart", "")
    assert "model" in text


def test_printed_results_say_top1_in_percent_and_label_a_single_model_run_model(runs):
    printed = (runs / "cls_stdout.txt").read_text()
    table = printed.split("\n\n")[0].splitlines()
    assert "top1 %" in table[1] and table[3].startswith("model ")
    top1 = json.loads((runs / "cls" / "results.json").read_text())["results"]["test"]["student"]["overall"]["top1"]
    assert f"{100 * top1:.2f}" in table[3]
    assert "student" not in printed.replace("student.pt", "").replace("quickstart", "")


def test_sr_run_prints_bicubic_and_the_teacher_beside_the_student(runs):
    printed = (runs / "sr_stdout.txt").read_text()
    data = json.loads((runs / "sr" / "report" / "data.json").read_text())
    metrics = data["splits"]["valid"]["sr"]["samples"][0]["metrics"]
    block = printed[printed.index("bicubic (torch) beside the SR models") :]
    for model in ("bicubic", "teacher", "student"):
        line = next(line for line in block.splitlines()[1:] if line.startswith(f"{model} "))
        assert f"{metrics[model]['psnr']:.2f} dB" in line
    # the comparison covers the main table's images: its student row is the main table's student
    main_table = json.loads((runs / "sr" / "results.json").read_text())["results"]["valid"]["student"]
    assert block.startswith(f"bicubic (torch) beside the SR models on all {main_table['n']} images")
    student = next(line for line in block.splitlines()[1:] if line.startswith("student "))
    assert f"{main_table['overall']['psnr']:.2f} dB" in student


def test_report_of_several_runs_puts_them_side_by_side(runs, capsys):
    out = runs / "both.html"
    assert main(["report", str(runs / "iqa"), str(runs / "cls"), "--out", str(out)]) == 0
    page = _parse(out)
    text = " ".join(page.text)
    assert "quickstart_mrkd vs cqd_quickstart_teacher" in text
    assert "test: teacher" in text and "test: model" in text  # the comparison table's columns
    assert len(_decoded(page)) >= 6


def test_report_of_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]  # fmt: skip


def screenshot(page: Path, shot: Path, tmp: Path, width: int = 1400, height: int = 2400) -> Image.Image:
    """A headless Chromium screenshot of ``page`` at ``width`` px (skips the test when no Chromium is installed)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no chromium installed (Debian: apt-get install chromium)")
    profile = tmp / "chromium-profile"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
         f"--window-size={width},{height}", page.as_uri()],
        check=True, timeout=180, capture_output=True,
    )  # fmt: skip
    return Image.open(shot).convert("RGB")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["iqa", "sr", "cls", "comparison"])
def test_report_renders_in_a_headless_browser(runs, tmp_path, name):
    """The page as a browser draws it at 1400 px: a screenshot of that width with text and figures on it."""
    page = runs / name / "report.html"
    if name == "comparison":
        page = runs / "comparison.html"
        assert main(["report", str(runs / "iqa"), str(runs / "cls"), "--out", str(page)]) == 0
    image = screenshot(page, tmp_path / "shot.png", tmp_path)
    assert image.size == (1400, 2400)
    grey = image.convert("L")
    dark = sum(grey.histogram()[:128]) / (image.width * image.height)
    assert 0.002 < dark < 0.5  # text and plot lines drawn on a white page, not a blank or black one
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # figures (antialiased lines, coloured bars), not a bare error page


def test_console_prints_the_run_folder_and_one_line_per_evaluation():
    lines = []
    console = Console(True, total_steps=20, steps_per_epoch=10, epochs=2, metric="top1", write=lines.append)
    console.start(Path("runs/x"), 0)
    console.evaluation(10, {"test": {"teacher": {"overall": {"top1": 0.5}}, "student": {"overall": {"top1": 0.25}}}})
    assert lines[0] == "run folder: runs/x"
    assert lines[1].startswith("eval  epoch 1/2  step 10/20 | test: teacher top1 50.0 %, student top1 25.0 %")
    assert "elapsed" in lines[1] and "left" in lines[1]
    assert console.epoch_label(1) == "epoch 2/2"
    quiet: list[str] = []
    Console(False, 20, 10, 2, "srcc", write=quiet.append).evaluation(10, {"test": {}})
    assert quiet == []


def test_cli_run_console_and_quiet(runs):
    err = (runs / "iqa_stderr.txt").read_text()
    assert err.index(f"run folder: {runs / 'iqa'}") < err.index("epoch 1/2")  # the folder before any training
    assert err.count("eval  epoch") == 2 and "eval  epoch 2/2" in err and "epoch 2/2:" in err
    quiet = (runs / "cls_stderr.txt").read_text()  # --quiet, although the recipe asked for a progress bar
    assert "eval  epoch" not in quiet and "run folder" not in quiet and "epoch 1/" not in quiet
    assert "report:" in (runs / "cls_stdout.txt").read_text()  # results and the report still come


def test_metric_formatting_reads_as_people_expect():
    assert format_metric("top1", 0.8125) == "81.2 %"
    assert format_metric("psnr", 31.234) == "31.23 dB"
    assert format_metric("srcc", 0.123456) == "0.1235"
    assert format_metric("srcc", float("nan")) == "n/a"
