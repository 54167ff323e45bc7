"""Sharing a student: `distill export --format safetensors / hf` loads back bit-identically wherever a student.pt
does (load_deployable, predict, pretrained:), its model card states the run's numbers, and hf: ids come through
huggingface_hub from a local stand-in for the Hub."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from PIL import Image

from distill.cli import main
from distill.deploy.model import load_deployable
from distill.errors import CheckpointError, DistillError
from distill.models.weights import load_local_weights, load_pretrained
from distill.registry import MODELS
from distill.run.checkpoint import MODEL_FORMAT

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("safetensors") is None, reason="safetensors is not installed (pip install -e .)"
)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, one_thread):
    """A finished toy MRKD run (one epoch, per-distortion groups): student.pt, results.json and report data."""
    from tests.test_distributed import register_toys, toy_recipe

    register_toys()
    tmp = tmp_path_factory.mktemp("share")
    recipe = toy_recipe(tmp / "toy.yaml", "mrkd", epochs=1, checkpoint_every=None)
    assert main(["run", str(recipe), "--out", str(tmp / "run"), "--quiet"]) == 0
    return tmp / "run"


def state_of(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_hf_folder_loads_back_bit_identically_and_its_card_states_the_run(toy_run, tmp_path, capsys):
    out = tmp_path / "toy_hf"
    assert main(["export", str(toy_run / "student.pt"), "--format", "hf", "--out", str(out)]) == 0
    assert "0.00e+00" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "recipe.yaml"]
    model, state = load_deployable(out)
    want = state_of(toy_run / "student.pt")
    got = model.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert state["recipe"]["name"] == "toy_mrkd" and not model.training
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == {"name": "toy_regressor", "args": {"dropout": 0.0}} and config["task"] is None
    assert config["format"] == "distill-model-folder/1" and config["step"] == 8

    card = (out / "README.md").read_text()
    results = json.loads((toy_run / "results.json").read_text())["results"]["test"]
    caption = json.loads((toy_run / "report" / "data.json").read_text())["splits"]["test"]["caption"]
    for role in ("teacher", "student"):
        row = f"| {role} | " + " | ".join(f"{results[role]['overall'][m]:.4f}" for m in ("srcc", "plcc", "rmse"))
        assert row in card, row
    assert caption in card and "seed 0" in caption
    for fact in ("`mrkd`", "teacher | `toy_regressor`", "`toy_iqa`", "train.seed 0", "distill run recipe.yaml"):
        assert fact in card, fact
    assert "SYNTHETIC" not in card  # the toy data is not marked synthetic: the card says nothing it does not know

    assert main(["export", str(toy_run / "student.pt"), "--format", "hf", "--out", str(out)]) == 2
    assert "already exists; nothing was written" in capsys.readouterr().err  # never written over


def test_safetensors_file_and_folder_work_as_pretrained_weights(toy_run, tmp_path):
    single = tmp_path / "student.safetensors"
    assert main(["export", str(toy_run / "student.pt"), "--format", "safetensors", "--out", str(single)]) == 0
    model, _ = load_deployable(single)  # the spec rides in the safetensors metadata
    want = state_of(toy_run / "student.pt")
    assert all(torch.equal(model.state_dict()[k], want[k]) for k in want)
    fresh = MODELS.build("toy_regressor", width=4, dropout=0.0)
    assert load_local_weights(fresh, single) == []
    assert all(torch.equal(fresh.state_dict()[k], want[k]) for k in want)

    folder = tmp_path / "hf"
    assert main(["export", str(toy_run / "checkpoints" / "last.pt"), "--format", "hf", "--out", str(folder)]) == 0
    fresh = MODELS.build("toy_regressor", width=4, dropout=0.0)
    assert load_pretrained(fresh, folder, None) == []  # pretrained: <folder>
    assert all(torch.equal(fresh.state_dict()[k], want[k]) for k in want)
    wider = MODELS.build("toy_regressor", width=8, dropout=0.0)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_local_weights(wider, folder)

    config = json.loads((folder / "config.json").read_text())
    config["model"]["args"]["width"] = 8  # a folder whose weights do not fit the model it names
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"do not fit the 'toy_regressor' model.*shape mismatch"):
        load_deployable(folder)


def test_predict_on_a_model_folder_gives_the_student_pt_scores(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build("resnet_regressor", depth=10).eval()
    spec = {"name": "resnet_regressor", "args": {"depth": 10, "pretrained": None}}
    student = tmp_path / "student.pt"
    torch.save({"format": MODEL_FORMAT, "role": "student", "model": spec, "state_dict": model.state_dict(),
                "recipe": None, "step": 0}, student)  # fmt: skip
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray((torch.rand(40, 40, 3) * 255).byte().numpy()).save(images / f"{i}.png")
    assert main(["export", str(student), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "not known here" in card  # a lone student.pt: no run, no numbers claimed
    for source, out in ((student, "a.csv"), (tmp_path / "hf", "b.csv")):
        assert main(["predict", str(source), str(images), "--out", str(tmp_path / out)]) == 0
    a, b = (list(csv.DictReader((tmp_path / n).open())) for n in ("a.csv", "b.csv"))
    assert a == b and len(a) == 3


# ------------------------------------------------------------------------------------------- hf: through the Hub
class HubHandler(BaseHTTPRequestHandler):
    """Answers huggingface_hub's two calls for a public model repo: revision info, then each file's resolve URL."""

    server: HubServer

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _file(self) -> bytes | None:
        prefix = f"/{self.server.repo}/resolve/"
        if not self.path.startswith(prefix):
            return None
        _rev, _, name = self.path[len(prefix) :].partition("/")
        return self.server.files.get(name.split("?")[0])

    def _send_file(self, head: bool) -> None:
        body = self._file()
        self.server.requests.append((self.command, self.path))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", self.server.sha)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._send_file(head=True)

    def do_GET(self) -> None:
        srv = self.server
        if self.path.startswith(f"/api/models/{srv.repo}/"):
            srv.requests.append((self.command, self.path))
            if "/tree/" in self.path:  # the file list of the revision
                files = [{"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                         for n, b in srv.files.items()]  # fmt: skip
                body = json.dumps(files).encode()
            else:  # the revision's commit
                info = {
                    "id": srv.repo,
                    "sha": srv.sha,
                    "private": False,
                    "siblings": [{"rfilename": n} for n in srv.files],
                }
                body = json.dumps(info).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self._send_file(head=False)


class HubServer(ThreadingHTTPServer):
    def __init__(self, repo: str, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.repo, self.sha = repo, "0123456789abcdef0123456789abcdef01234567"
        self.files = {p.name: p.read_bytes() for p in folder.iterdir()}
        self.requests: list[tuple[str, str]] = []


def test_hf_id_downloads_through_huggingface_hub_from_a_local_server(toy_run, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub", reason="the hub extra is not installed (pip install -e .[hub])")
    from huggingface_hub import constants

    folder = tmp_path / "hf"
    assert main(["export", str(toy_run / "student.pt"), "--format", "hf", "--out", str(folder)]) == 0
    server = HubServer("someone/toy-student", folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        model, _ = load_deployable("hf:someone/toy-student")
        want = state_of(toy_run / "student.pt")
        assert all(torch.equal(model.state_dict()[k], want[k]) for k in want)
        assert any(path.endswith("/model.safetensors") for _, path in server.requests)
        assert (tmp_path / "hub_cache").is_dir()  # in the Hub's cache, not beside the caller
        fresh = MODELS.build("toy_regressor", width=4, dropout=0.0)
        assert load_pretrained(fresh, "hf:someone/toy-student", None) == []  # pretrained: hf:...
        with pytest.raises(DistillError, match=r"cannot download from http://127\.0\.0\.1"):
            load_deployable("hf:someone/missing")
    finally:
        server.shutdown()
        server.server_close()


def test_hf_ids_are_checked_and_need_the_hub_extra(monkeypatch):
    with pytest.raises(DistillError, match="expected hf:OWNER/NAME"):
        load_deployable("hf:no-owner")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if the extra were not installed
    with pytest.raises(DistillError, match=r"pip install 'distill\[hub\]'"):
        load_deployable("hf:someone/toy-student")
