"""The headline path at tiny size on a clean folder: SCNN pre-training as DBCNN did, then `recipes/mrkd_tid.yaml`.

Synthetic stand-ins in the official layouts replace `distill data fetch` (tested with the fetch command); the VGG
ImageNet weights come through `pretrained: imagenet` from a local HTTP server standing in for download.pytorch.org.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

from distill._compat import import_torchvision
from distill.cli import main
from distill.models.iqa.dbcnn import DBCNN

import_torchvision()
from torchvision.models import VGG11_Weights, vgg11  # noqa: E402

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SMALL_VGG = ["models.teacher.args.backbone=vgg11", "models.student.args.backbone=vgg11"]


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.mark.slow
def test_scnn_pretrain_then_mrkd_tid_on_a_clean_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)
    features = {k: v for k, v in vgg11(weights=None).state_dict().items() if k.startswith("features.")}
    torch.save(features, served / "w.pth")
    name = f"vgg11-{hashlib.sha256((served / 'w.pth').read_bytes()).hexdigest()[:8]}.pth"
    (served / "w.pth").rename(served / name)
    httpd, base = _serve(served)
    monkeypatch.setattr(VGG11_Weights.IMAGENET1K_V1.value, "url", f"{base}/{name}")
    try:
        # 1. the data, in the official layouts (`distill data fetch ...` on a real machine)
        assert main(["data", "waterloo", "data/waterloo", "--set", "n_images=6"]) == 0
        assert main(["data", "voc2012", "data/voc2012", "--set", "n_images=6"]) == 0
        tid = ["n_refs=5", "distortions=[1,8]", "levels=2", "size=[48,64]"]
        assert main(["data", "tid2013", "data/tid2013", *[a for s in tid for a in ("--set", s)]]) == 0

        # 2. MRKD before the SCNN exists: one line naming the key and the command that makes the file
        mrkd = [str(RECIPES / "mrkd_tid.yaml"), *[a for s in SMALL_VGG for a in ("--set", s)]]
        capsys.readouterr()
        assert main(["run", *mrkd]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]  # above it: the VGG download's progress bar
        assert err.startswith("distill: error: models.teacher.args.scnn_pretrained: runs/scnn_pretrain/student.pt")
        assert "`distill run recipes/scnn_pretrain.yaml`" in err

        # 3. SCNN pre-training, DBCNN's protocol at toy size
        small = ["train.epochs=1", "train.batch_size=8", "train.num_workers=0", "train.eval_every=1"]
        for split in ("train", "eval.test"):
            small += [f"data.{split}.args.resize=40", f"data.{split}.args.size=32", f"data.{split}.args.length=32"]
        assert main(["run", str(RECIPES / "scnn_pretrain.yaml"), *[a for s in small for a in ("--set", s)]]) == 0
        scnn = torch.load("runs/scnn_pretrain/student.pt", weights_only=True)
        assert scnn["model"] == {"name": "scnn", "args": {"num_classes": 39}}

        # 4. the headline run: ImageNet VGG through the hub cache, the exported SCNN by its documented key
        tiny = [*SMALL_VGG, "train.epochs=1", "train.batch_size=4", "train.num_workers=0"]
        tiny += ["data.train.args.train_fraction=0.6", "data.eval.test.args.train_fraction=0.6"]
        assert main(["run", str(RECIPES / "mrkd_tid.yaml"), *[a for s in tiny for a in ("--set", s)]]) == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (tmp_path / "torch_home" / "hub" / "checkpoints" / name).is_file()
    results = json.loads(Path("runs/mrkd_tid_dbcnn/results.json").read_text())
    assert set(results["results"]["test"]) == {"teacher", "student"}
    start = DBCNN(backbone="vgg11", scnn_pretrained="runs/scnn_pretrain/student.pt")  # what step 4 started from
    for key, value in start.scnn.state_dict().items():
        assert torch.equal(value, scnn["state_dict"][key]), key
