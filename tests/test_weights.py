"""`pretrained:` values: torchvision weight names through the torch hub cache, downloads from a local server only."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from distill._compat import import_torchvision
from distill.build import build_distiller
from distill.errors import CheckpointError
from distill.models.iqa.dbcnn import DBCNN
from distill.models.iqa.resnet import ResNetRegressor
from distill.models.recognition.classification import vgg_m
from distill.models.weights import WeightsError, hub_checkpoint, resolve_pretrained
from distill.recipe.check import load_recipe

import_torchvision()
from torchvision.models import ResNet18_Weights, VGG11_Weights, resnet18  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME: the hub cache is ``<it>/hub/checkpoints``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _resnet18_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return resnet18(weights=None).state_dict()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A local HTTP server on 127.0.0.1 serving ``<tmp>/served``: (base url, folder, requested paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder, requests
    httpd.shutdown()
    httpd.server_close()


def _closed_port_url(name: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def test_imagenet_loads_the_preplaced_hub_cache_file(torch_home: Path) -> None:
    state = _resnet18_state(1)
    torch_home.mkdir(parents=True)
    torch.save(state, torch_home / "resnet18-f37072fd.pth")  # the file name torchvision's URL ends in
    for value in ("imagenet", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        model = ResNetRegressor(depth=18, pretrained=value)
        assert torch.equal(model.trunk.conv1.weight, state["conv1.weight"]), value
        assert torch.equal(model.trunk.layer4[1].bn2.running_mean, state["layer4.1.bn2.running_mean"])
    assert hub_checkpoint(ResNet18_Weights.IMAGENET1K_V1.url) == torch_home / "resnet18-f37072fd.pth"


def test_a_local_path_keeps_working(tmp_path: Path, torch_home: Path) -> None:
    state = _resnet18_state(2)
    torch.save(state, tmp_path / "mine.pth")
    model = ResNetRegressor(depth=18, pretrained=str(tmp_path / "mine.pth"))
    assert torch.equal(model.trunk.conv1.weight, state["conv1.weight"])
    assert not torch_home.exists()  # nothing was fetched


def test_download_goes_to_the_hub_cache_once(torch_home: Path, server, monkeypatch: pytest.MonkeyPatch) -> None:
    base, folder, requests = server
    state = _resnet18_state(3)
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    name = f"resnet18-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"  # torch hub's hash-prefix naming
    tmp.rename(folder / name)
    monkeypatch.setattr(ResNet18_Weights.IMAGENET1K_V1.value, "url", f"{base}/{name}")
    model = ResNetRegressor(depth=18, pretrained="imagenet")
    assert torch.equal(model.trunk.conv1.weight, state["conv1.weight"])
    assert (torch_home / name).read_bytes() == (folder / name).read_bytes()
    ResNetRegressor(depth=18, pretrained="IMAGENET1K_V1")  # second use: from the cache
    assert requests == [f"/{name}"]


def test_download_with_a_wrong_hash_leaves_nothing(torch_home: Path, server, monkeypatch) -> None:
    base, folder, _ = server
    torch.save(_resnet18_state(4), folder / "resnet18-00000000.pth")
    monkeypatch.setattr(ResNet18_Weights.IMAGENET1K_V1.value, "url", f"{base}/resnet18-00000000.pth")
    with pytest.raises(WeightsError, match="cannot download") as err:
        resolve_pretrained("imagenet", "resnet18")
    assert "\n" not in str(err.value)
    assert not (torch_home / "resnet18-00000000.pth").exists()


def test_offline_names_the_file_the_folder_and_the_url(torch_home: Path, monkeypatch) -> None:
    url = _closed_port_url("vgg11-8a719046.pth")
    monkeypatch.setattr(VGG11_Weights.IMAGENET1K_V1.value, "url", url)
    with pytest.raises(WeightsError) as err:
        DBCNN(backbone="vgg11", pretrained="imagenet")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"put vgg11-8a719046.pth in {torch_home}/" in msg
    assert url in msg
    assert err.value.arg == "pretrained"


def test_unknown_names_and_models_without_torchvision_weights(torch_home: Path) -> None:
    with pytest.raises(WeightsError, match=r"IMAGENET1K_V7: not a torchvision weight of 'resnet18'.*IMAGENET1K_V1"):
        resolve_pretrained("IMAGENET1K_V7", "resnet18")
    with pytest.raises(WeightsError, match=r"VGG16_Weights\.IMAGENET1K_V1: not a torchvision weight of 'resnet18'"):
        resolve_pretrained("VGG16_Weights.IMAGENET1K_V1", "resnet18")
    with pytest.raises(WeightsError, match=r"distill convert vggm imagenet-vgg-m\.mat OUT\.pt"):
        vgg_m(num_classes=10, width=0.125, fc_dim=16, pretrained="imagenet")
    with pytest.raises(CheckpointError, match=r"torchvision publishes no weights for this model"):
        ResNetRegressor(depth=10, pretrained="imagenet")


def test_headline_recipe_errors_name_the_key_and_the_command(tmp_path: Path, torch_home: Path, monkeypatch) -> None:
    """`recipes/mrkd_tid.yaml` on a fresh machine: the published SCNN offline, or a missing SCNN export, names its key
    and what to do."""
    monkeypatch.chdir(tmp_path)
    small = ["models.teacher.args.backbone=vgg11", "models.student.args.backbone=vgg11"]
    no_vgg = ["models.teacher.args.pretrained=null", "models.student.args.pretrained=null"]
    offline = _closed_port_url("")
    monkeypatch.setenv("DISTILL_FETCH_MIRROR", offline)  # every host unreachable
    recipe, _ = load_recipe(REPO / "recipes" / "mrkd_tid.yaml", [*small, *no_vgg])
    with pytest.raises(WeightsError) as err:
        build_distiller(recipe)
    msg = str(err.value)
    head = "models.teacher.args.scnn_pretrained: cannot download DBCNN_scnn-7ea73d75.pth from "
    assert msg.startswith(head + offline)
    assert f"Put DBCNN_scnn-7ea73d75.pth in {torch_home}/" in msg and "\n" not in msg

    own = ["models.teacher.args.scnn_pretrained=runs/scnn_pretrain/student.pt"]
    recipe, _ = load_recipe(REPO / "recipes" / "mrkd_tid.yaml", [*small, *no_vgg, *own])
    with pytest.raises(WeightsError) as err:
        build_distiller(recipe)
    msg = str(err.value)
    assert msg.startswith("models.teacher.args.scnn_pretrained: runs/scnn_pretrain/student.pt: SCNN weights file not")
    assert "`distill run recipes/scnn_pretrain.yaml`" in msg and "imagenet" not in msg
    monkeypatch.delenv("DISTILL_FETCH_MIRROR")

    monkeypatch.setattr(VGG11_Weights.IMAGENET1K_V1.value, "url", _closed_port_url("vgg11-8a719046.pth"))
    recipe, _ = load_recipe(REPO / "recipes" / "mrkd_tid.yaml", [*small, *own])
    with pytest.raises(WeightsError, match=r"^models\.teacher\.args\.pretrained: imagenet \(VGG11_Weights"):
        build_distiller(recipe)

    recipe, _ = load_recipe(
        REPO / "recipes" / "mrkd_tid.yaml", [*small, *own, "models.teacher.args.pretrained=weights/vgg11.pth"]
    )
    with pytest.raises(WeightsError, match=r"^models\.teacher\.args\.pretrained: weights/vgg11\.pth: .*imagenet"):
        build_distiller(recipe)


def test_every_weights_file_error_names_its_recipe_key(tmp_path: Path, monkeypatch) -> None:
    """The same key prefix for SR teachers (BasicSR checkpoints) and CQD classifiers as for the IQA models."""
    monkeypatch.chdir(tmp_path)
    recipe, _ = load_recipe(REPO / "recipes" / "quickstart_sr.yaml")
    with pytest.raises(WeightsError, match=r"^models\.teacher\.args\.pretrained: runs/sr_teacher_quickstart/student"):
        build_distiller(recipe)
    recipe, _ = load_recipe(REPO / "recipes" / "quickstart_cqd.yaml")
    with pytest.raises(WeightsError, match=r"^models\.teacher\.args\.pretrained: runs/cqd_quickstart_teacher/student"):
        build_distiller(recipe)
