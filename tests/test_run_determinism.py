"""Two uninterrupted runs of the same recipe on the same machine write the same bytes.

``results.json`` may differ only in its ``finished`` time, ``metrics.jsonl`` not at all (it has no time field). Before
the logistic fits ran with a fixed BLAS thread count and fixed starts, ``plcc_logistic4`` differed in the 16th digit
between two runs (issue 25).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPE = str(ROOT / "recipes" / "quickstart.yaml")
TYPES = "[gaussian_blur, lens_blur, white_noise, jpeg, darken, quantisation]"


def _tiny(data: Path) -> list[str]:
    sets = [
        f"data.root={data}",
        f"data.synthetic.root={data}",  # a synthetic set is written only where the recipe says it may be
        "data.synthetic.args.n_refs=5",
        "data.synthetic.args.size=[48, 48]",
        f"data.synthetic.args.distortions={TYPES}",
        "data.train.args.crop=32",
        "train.epochs=2",
        "train.eval_every=1",
        "train.batch_size=8",
        "train.progress=false",
        "output.tensorboard=false",
    ]
    return [arg for s in sets for arg in ("--set", s)]


def _run(out: Path, data: Path) -> None:
    """One ``distill run`` in its own process, as a user starts it (default thread settings)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "distill", "run", RECIPE, "--out", str(out), *_tiny(data)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow  # two CLI runs of the quickstart at toy size (~20 s each on a busy 2-core machine)
def test_two_uninterrupted_quickstart_runs_write_identical_results_and_logs(tmp_path: Path) -> None:
    data = tmp_path / "kadid"
    _run(tmp_path / "a", data)  # writes the synthetic set
    _run(tmp_path / "b", data)
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("a", "b"))
    assert a.pop("finished") and b.pop("finished")
    assert "plcc_logistic4" in a["results"]["test"]["student"]["overall"]
    text = [(tmp_path / d / "results.json").read_text().splitlines() for d in ("a", "b")]
    assert [line for line in text[0] if '"finished"' not in line] == [
        line for line in text[1] if '"finished"' not in line
    ]
    assert (tmp_path / "a" / "metrics.jsonl").read_bytes() == (tmp_path / "b" / "metrics.jsonl").read_bytes()
    assert json.dumps(a) == json.dumps(b)
