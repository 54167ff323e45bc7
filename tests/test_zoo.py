"""The zoo: `distill weights list|fetch` through 127.0.0.1 (checked, resumed, refused and retried, offline),
``pretrained: zoo:NAME`` in models, and the paper recipes starting from the table's rows."""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from distill.cli import main
from distill.deploy.model import load_deployable
from distill.errors import CheckpointError
from distill.models.convert import FORMATS
from distill.models.iqa.dbcnn import SCNN
from distill.models.sr.archs import edsr
from distill.models.weights import WeightsError, is_zoo_ref, load_pretrained
from distill.models.zoo import ZOO, ZooEntry, converted_path, resolve_zoo
from distill.recipe.check import load_recipe
from distill.registry import MODELS
from tests.fetch_server import MirrorServer, serve_mirror
from tests.test_convert import _close, _EDSRPyTorch, _randomize, _SCNNRef

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; returns its hub ``checkpoints`` folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MirrorServer]:
    yield from serve_mirror(monkeypatch)


def _bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _scnn_file() -> tuple[nn.Module, bytes]:
    """A DBCNN-PyTorch/pyiqa SCNN file (DataParallel keys) and its reference module."""
    ref = _randomize(_SCNNRef(), 21)
    return ref, _bytes({f"module.{k}": v for k, v in ref.state_dict().items()})


def _publish(monkeypatch, name: str, data: bytes, **changes) -> ZooEntry:
    """Row ``name`` made to describe ``data`` (its real size, sha256 and hash prefix are the published file's)."""
    stem, suffix = ZOO[name].file.rsplit("-", 1)
    changes.setdefault("file", f"{stem}-{_sha(data)[:8]}.{suffix.split('.', 1)[1]}")
    entry = replace(ZOO[name], size=len(data), sha256=_sha(data), **changes)
    monkeypatch.setitem(ZOO, name, entry)
    return entry


def _tiny_row(monkeypatch, server: MirrorServer, data: bytes, file: str = "tiny_edsr.pt", **kw) -> ZooEntry:
    """A row without a published hash: checked against the sha256 recorded at its first download."""
    entry = ZooEntry(
        name="tiny_edsr", title="tiny", file=file, url=server.base + file, model="edsr",
        args={"num_feat": 8, "num_block": 1, "upscale": 2, "res_scale": 1.0}, converter="edsr-pytorch",
        licence="test", page="test", source="test", **kw,
    )  # fmt: skip
    monkeypatch.setitem(ZOO, entry.name, entry)
    server.files[file] = data
    return entry


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("distill: error: ") and sum("error" in x for x in lines) == 1, lines
    return lines[-1]


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


# ------------------------------------------------------------------------------------------------ fetch
def test_fetch_checks_the_hash_converts_once_and_recipes_take_zoo_names(hub, server, capsys, monkeypatch) -> None:
    ref, data = _scnn_file()
    entry = _publish(monkeypatch, "dbcnn_scnn", data)
    server.files[entry.file] = data
    assert main(["weights", "fetch", "dbcnn_scnn"]) == 0  # the mirror (DISTILL_FETCH_MIRROR) stands in for the host
    out = capsys.readouterr().out
    assert f"zoo:dbcnn_scnn: {entry.file} (sha256 {entry.sha256[:12]}…, checked: sha256 as published)" in out
    path = converted_path(entry)
    assert path == hub / "distill" / "dbcnn_scnn.pt" and (hub / entry.file).read_bytes() == data
    model, state = load_deployable(path)
    assert state["source"]["sha256"] == entry.sha256 and state["source"]["zoo"] == "dbcnn_scnn"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), ref((x - model.mean) / model.std), atol=1e-5)
    served = len(server.requests)
    assert load_deployable("zoo:dbcnn_scnn")[1]["source"]["zoo"] == "dbcnn_scnn"  # predict/export/eval take the name
    trunk = SCNN(num_classes=None)  # what DBCNN(scnn_pretrained="zoo:dbcnn_scnn"), the MRKD recipes' start, does
    load_pretrained(trunk, "zoo:dbcnn_scnn", None, arg="scnn_pretrained", ignore_prefixes=("head.",))
    assert len(server.requests) == served  # converted once: no download, no conversion
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, state["state_dict"][key]), key
    assert main(["weights", "list"]) == 0
    assert re.search(r"dbcnn_scnn +scnn +downloads .*\[converted\]", capsys.readouterr().out)


def test_cut_download_resumes_and_corrupt_download_is_refused_and_retried(hub, server, capsys, monkeypatch) -> None:
    _, data = _scnn_file()
    entry = _publish(monkeypatch, "dbcnn_scnn", data)
    server.files[entry.file] = data
    server.cut_after = len(data) // 3
    assert main(["weights", "fetch", "dbcnn_scnn"]) == 0
    assert server.requests[-1] == (f"/{entry.file}", f"bytes={len(data) // 3}-")  # the retry resumed
    assert f"stopped at {len(data) // 3} of {len(data)} bytes" in capsys.readouterr().out

    class CorruptFirst(dict):  # serves flipped bytes the first `left` times
        left = 1

        def get(self, key, default=None):
            body = super().get(key, default)
            if body is None or self.left <= 0:
                return body
            self.left -= 1
            return body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]

    server.files = CorruptFirst(server.files)
    assert main(["weights", "fetch", "dbcnn_scnn", "--force"]) == 0
    out = capsys.readouterr().out
    assert "does not match the expected" in out and "trying again" in out
    assert _sha((hub / entry.file).read_bytes()) == entry.sha256

    server.files.left = 10  # every try corrupt: refused, nothing left behind
    (hub / entry.file).unlink()
    converted_path(entry).unlink()
    assert main(["weights", "fetch", "dbcnn_scnn"]) == 2
    err = _error(capsys)
    assert "does not match the expected" in err and "(after 3 tries)" in err and entry.file in err
    assert sorted(p.name for p in hub.iterdir()) == ["distill", "distill_zoo.json"]
    assert not converted_path(entry).exists()


def test_offline_is_one_line_naming_the_file_the_folder_and_the_url(hub, capsys, monkeypatch) -> None:
    url = _closed_port()
    assert main(["weights", "fetch", "swinir_m_x4", "--url", url]) == 2
    err = _error(capsys)
    file = ZOO["swinir_m_x4"].file
    assert f"cannot download {file} from {url}{file}" in err and f"Put {file} in {hub}/" in err
    monkeypatch.setenv("DISTILL_FETCH_MIRROR", url)
    file = ZOO["edsr_baseline_x2"].file
    with pytest.raises(WeightsError, match=rf"cannot download {re.escape(file)} from {re.escape(url)}"):
        MODELS.build("edsr", **{**ZOO["edsr_baseline_x2"].args, "pretrained": "zoo:edsr_baseline_x2"})


def test_hash_prefix_and_recorded_sha256_guard_files_without_a_published_sha(hub, server, capsys, monkeypatch) -> None:
    ref = _randomize(_EDSRPyTorch(8, 1, 2, 1.0), 22, skip=("sub_mean", "add_mean"))
    data = _bytes(ref.state_dict())
    _tiny_row(monkeypatch, server, data)
    assert main(["weights", "fetch", "tiny_edsr"]) == 0
    assert "checked: sha256 recorded at the first download" in capsys.readouterr().out
    record = json.loads((hub / "distill_zoo.json").read_text())
    assert record["tiny_edsr.pt"]["sha256"] == _sha(data)
    net = edsr(num_feat=8, num_block=1, upscale=2, pretrained="zoo:tiny_edsr")  # the SR loader takes zoo names
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        _close(net(x) * 255, ref(x * 255))

    server.files["tiny_edsr.pt"] = _bytes(_randomize(_EDSRPyTorch(8, 1, 2, 1.0), 23).state_dict())  # host changed
    assert main(["weights", "fetch", "tiny_edsr", "--force"]) == 2
    assert "recorded at the first download" in _error(capsys)

    wrong = _bytes(ref.state_dict())  # a name whose hash prefix the bytes do not have
    _tiny_row(monkeypatch, server, wrong, file="tiny_edsr-00000000.pt")
    assert main(["weights", "fetch", "tiny_edsr", "--force"]) == 2
    assert "does not start with 00000000, the hash in its published name" in _error(capsys)
    assert not (hub / "tiny_edsr-00000000.pt").exists()


def test_a_wrong_file_under_a_rows_name_is_refused(hub, server, capsys, monkeypatch) -> None:
    other = _bytes(_randomize(_EDSRPyTorch(8, 2, 2, 1.0), 24, skip=("sub_mean", "add_mean")).state_dict())
    entry = _publish(monkeypatch, "edsr_baseline_x2", other)
    server.files[entry.file] = other
    assert main(["weights", "fetch", "edsr_baseline_x2"]) == 2
    err = _error(capsys)
    assert "reads as edsr(num_feat=8, num_block=2)" in err and "zoo:edsr_baseline_x2 is edsr with" in err
    assert not converted_path(entry).exists()


def test_interactive_hosts_take_file(hub, tmp_path, capsys, monkeypatch) -> None:
    assert main(["weights", "fetch", "rcan_x4"]) == 2
    err = _error(capsys)
    assert "RCAN_BIX4.pt is only on an interactive page: open https://www.dropbox.com/" in err
    assert "`distill weights fetch rcan_x4 --file PATH`" in err
    from tests.test_convert import _RCAN

    ref = _randomize(_RCAN(64, 10, 1, 16, 4), 25, skip=("sub_mean", "add_mean"))  # RCAN's widths, 1 block/group
    monkeypatch.setitem(ZOO, "rcan_x4", replace(ZOO["rcan_x4"], args={**ZOO["rcan_x4"].args, "num_block": 1}))
    torch.save(ref.state_dict(), tmp_path / "RCAN_BIX4.pt")
    assert main(["weights", "fetch", "rcan_x4", "--file", str(tmp_path / "RCAN_BIX4.pt")]) == 0
    model, _ = load_deployable(converted_path("rcan_x4"))
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        _close(model(x) * 255, ref(x * 255))
    assert main(["weights", "fetch", "rcan_x4", "--file", str(tmp_path / "none.pt")]) == 2
    assert "none.pt: no such file (--file of zoo:rcan_x4, published as RCAN_BIX4.pt)" in _error(capsys)


def test_unknown_names_are_one_line_with_the_closest() -> None:
    with pytest.raises(CheckpointError, match=r"zoo:edsr_x5: no such published model; did you mean .*edsr_x4"):
        resolve_zoo("zoo:edsr_x5")
    assert is_zoo_ref("zoo:edsr_x4") and not is_zoo_ref("zoo:") and not is_zoo_ref("weights/x.pth")


# ------------------------------------------------------------------------------------------------ the table
def test_every_row_names_its_host_licence_and_a_model_that_takes_its_args() -> None:
    assert {"dbcnn_scnn", "dbcnn_tid2013", "dbcnn_livec", "dbcnn_koniq", "hyperiqa_koniq", "edsr_baseline_x4",
            "edsr_x2", "edsr_x3", "edsr_x4", "rcan_x2", "rcan_x3", "rcan_x4", "swinir_m_x2", "swinir_m_x3",
            "swinir_m_x4", "matconvnet_vggm", "matconvnet_vgg16"} <= set(ZOO)  # fmt: skip
    for name, e in ZOO.items():
        assert e.name == name and e.page and e.licence and e.source, name
        assert (e.url is None) == (e.interactive_page is not None), name
        assert e.url is None or e.url.split("?")[0].endswith("/" + e.file), name
        assert all(m.endswith(e.file) or "scnn.pkl" in m for m in e.mirrors), name
        assert e.sha256 is None or e.hash_prefix is None or e.sha256.startswith(e.hash_prefix), name
        assert e.converter in FORMATS, name
        params = inspect.signature(MODELS.get(e.model)).parameters
        assert set(e.args) <= set(params), (name, set(e.args) - set(params))
        for scores in e.scores.values():
            assert e.scores_source and scores and all(isinstance(v, float) for v in scores.values()), name


#: recipe model argument → the model the zoo row must convert to (DBCNN's SCNN branch is an SCNN)
_ARG_MODEL = {"scnn_pretrained": "scnn"}


def _zoo_uses() -> list[tuple[str, str, str, dict, str]]:
    uses = []
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        recipe, _ = load_recipe(path)
        for role, spec in recipe.models.items():
            for arg, value in spec.args.items():
                if is_zoo_ref(value):
                    uses.append((path.name, role, spec.name, dict(spec.args), _ARG_MODEL.get(arg, spec.name), value))
    return uses


def test_paper_recipes_start_from_the_published_checkpoints() -> None:
    starts = {(name, role): value for name, role, _, _, _, value in _zoo_uses()}
    assert starts[("mrkd_tid.yaml", "teacher")] == starts[("mrkd_tid.yaml", "student")] == "zoo:dbcnn_scnn"
    assert starts[("mrkd_livec.yaml", "student")] == "zoo:dbcnn_scnn"
    assert starts[("mipkd_edsr_x4.yaml", "teacher")] == "zoo:edsr_x4"
    assert starts[("mipkd_edsr_x2.yaml", "teacher")] == "zoo:edsr_x2"
    assert starts[("mipkd_rcan_x4.yaml", "teacher")] == "zoo:rcan_x4"
    assert starts[("mipkd_swinir_x4.yaml", "teacher")] == "zoo:swinir_m_x4"
    assert starts[("cqd_cub_low_resolution.yaml", "student")] == "zoo:matconvnet_vggm"
    assert starts[("cqd_cub_vgg16_teacher.yaml", "student")] == "zoo:matconvnet_vgg16"
    assert not any(name == "scnn_pretrain.yaml" for name, _ in starts)  # stays the from-scratch path


@pytest.mark.parametrize("use", _zoo_uses(), ids=lambda u: f"{u[0]}:{u[1]}")
def test_each_recipes_zoo_row_fits_its_model(use) -> None:
    name, role, model, args, expect, value = use
    entry = ZOO[value.removeprefix("zoo:")]
    assert entry.model == expect, (name, role)
    if expect != model:
        return
    skip = {"num_classes"} if args.get("reset_head") else set()  # a fresh head for CUB's 200 classes
    differ = {k: (args[k], v) for k, v in entry.args.items() if k in args and k not in skip and args[k] != v}
    assert not differ, (name, role, differ)
