"""`distill data fetch`: downloads from a local HTTP server (never the internet), resume, checksums, safe extraction.

The server on 127.0.0.1 stands in for the official hosts through ``DISTILL_FETCH_MIRROR`` (or ``--url``); it can
cut a transfer after N bytes, stall it (for a killed process), or ignore Range requests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from distill.cli import main
from distill.data.fetch import MIRROR_ENV, RECORD, SOURCES
from distill.data.fetch import checks as fetch_checks
from distill.data.images import save_rgb
from distill.registry import DATASETS, WRITERS
from tests.fetch_server import MirrorServer, rar_bytes, serve_mirror, tar_gz_bytes, tree_files, zip_bytes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(monkeypatch) -> Iterator[MirrorServer]:
    """The local stand-in for the official hosts (``DISTILL_FETCH_MIRROR``)."""
    yield from serve_mirror(monkeypatch)


@pytest.fixture(scope="module")
def tid_files(tmp_path_factory) -> dict[str, bytes]:
    """A miniature TID2013 (1 reference × 2 types × 2 levels = 4 distorted images) nested in ``tid2013/``."""
    out = tmp_path_factory.mktemp("tid") / "set"
    WRITERS.build("tid2013", out=str(out), n_refs=1, size=(16, 16), distortions=["i01", "i02"], levels=2)
    return tree_files(out, "tid2013/")


@pytest.fixture(scope="module")
def kadid_files(tmp_path_factory) -> dict[str, bytes]:
    """A miniature KADID-10k (1 reference × 1 type × 3 levels = 3 distorted images) at the archive's top level."""
    out = tmp_path_factory.mktemp("kadid") / "set"
    WRITERS.build("kadid10k", out=str(out), n_refs=1, size=(16, 16), distortions=["01"], levels=3)
    return tree_files(out, "kadid10k/")


def _png(h: int, w: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.png"
        save_rgb(torch.rand(3, h, w), path)
        return path.read_bytes()


def _fetch(*args: str) -> int:
    return main(["data", "fetch", *map(str, args)])


def _one_line_error(capsys) -> str:
    """The error line, which must be stderr's last line and its only error line (progress bars may precede it)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("distill: error: "), lines
    assert sum("error" in line for line in lines) == 1, lines
    return lines[-1]


def _without_official_sizes(monkeypatch, name: str) -> None:
    """The table's sizes are the official files'; a miniature is checked by its recorded sha256 instead."""
    source = SOURCES[name]
    monkeypatch.setitem(SOURCES, name, replace(source, archives=tuple(replace(a, size=None) for a in source.archives)))


def _nothing_beside(root: Path) -> list[str]:
    """Entries beside ``root`` other than the downloads folder and root itself (temporary folders must be gone)."""
    return sorted(p.name for p in root.parent.iterdir() if p.name not in ("downloads", root.name))


# -------------------------------------------------------------------------------------------------- full fetch
def test_fetch_tid2013_from_mirror_counts_records_and_is_idempotent(server, tmp_path, tid_files, capsys):
    archive = zip_bytes(tid_files)  # served under the official name tid2013.rar: the kind is read from the content
    server.files["tid2013.rar"] = archive
    root = tmp_path / "data" / "tid2013"
    (tmp_path / "data" / ".tid2013.extract-killed" / "distorted_images").mkdir(parents=True)  # an earlier crash
    assert _fetch("tid2013", root) == 0
    out = capsys.readouterr().out
    assert "all: 4 items" in out
    sha = hashlib.sha256(archive).hexdigest()
    assert f"sha256 {sha} (no published checksum: recorded in {RECORD} for later fetches" in out
    assert "downloaded archives kept in" in out
    record = json.loads((root / RECORD).read_text())
    assert record["dataset"] == "tid2013" and record["counts"] == {"all": 4}
    assert record["archives"][0]["sha256"] == sha and record["archives"][0]["size"] == len(archive)
    assert (root / "mos_with_names.txt").is_file() and (root / "distorted_images").is_dir()
    assert (tmp_path / "data" / "downloads" / "tid2013.rar").read_bytes() == archive
    assert not list((tmp_path / "data" / "downloads").glob("*.part"))
    assert _nothing_beside(root) == []
    assert len(server.requests) == 1

    assert _fetch("tid2013", root) == 0  # already there: no download, same counts
    assert "already in" in capsys.readouterr().out
    assert _fetch("tid2013", root, "--force") == 0  # the cached archive is re-checked against the record
    assert "matches the last fetch" in capsys.readouterr().out
    assert len(server.requests) == 1


def test_fetch_kadid_tar_gz_with_url_override(server, tmp_path, kadid_files, capsys):
    server.files["mirror/kadid.tar.gz"] = tar_gz_bytes(kadid_files)
    root = tmp_path / "kadid"
    assert _fetch("kadid10k", root, "--url", server.base + "mirror/kadid.tar.gz") == 0
    assert "all: 3 items" in capsys.readouterr().out
    assert (root / "dmos.csv").is_file()
    assert server.requests == [("/mirror/kadid.tar.gz", None)]


def test_fetch_local_archive_without_network(tmp_path, tid_files, capsys, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    local = tmp_path / "my_copy.zip"
    local.write_bytes(zip_bytes(tid_files))
    root = tmp_path / "tid"
    assert _fetch("tid2013", root, "--archive", local) == 0
    assert "all: 4 items" in capsys.readouterr().out
    assert json.loads((root / RECORD).read_text())["archives"][0]["source"] == f"local file {local}"
    assert local.is_file()  # the user's file is left alone


def test_force_replaces_a_synthetic_stand_in_only(tmp_path, tid_files, capsys):
    root = tmp_path / "tid"
    WRITERS.build("tid2013", out=str(root), n_refs=1, size=(16, 16), distortions=["i01"], levels=1)
    local = tmp_path / "tid2013.zip"
    local.write_bytes(zip_bytes(tid_files))
    assert _fetch("tid2013", root, "--archive", local) == 2
    assert "holds a synthetic stand-in; pass --force" in _one_line_error(capsys)
    assert _fetch("tid2013", root, "--archive", local, "--force") == 0
    assert "all: 4 items" in capsys.readouterr().out
    assert not (root / "SYNTHETIC.json").exists() and (root / RECORD).is_file()
    assert _nothing_beside(root) == ["tid2013.zip"]


def test_div2k_selected_scale_and_benchmark_sets_share_one_archive(server, tmp_path, capsys, monkeypatch):
    hr = {"DIV2K_train_HR/0001.png": _png(16, 16), "DIV2K_train_HR/0002.png": _png(16, 16)}
    server.files["DIV2K_train_HR.zip"] = zip_bytes(hr)
    server.files["DIV2K_valid_HR.zip"] = zip_bytes({"DIV2K_valid_HR/0801.png": _png(16, 16)})
    server.files["DIV2K_train_LR_bicubic_X4.zip"] = zip_bytes(
        {f"DIV2K_train_LR_bicubic/X4/000{i}x4.png": _png(4, 4) for i in (1, 2)}
    )
    server.files["DIV2K_valid_LR_bicubic_X4.zip"] = zip_bytes({"DIV2K_valid_LR_bicubic/X4/0801x4.png": _png(4, 4)})
    _without_official_sizes(monkeypatch, "div2k")
    assert _fetch("div2k", tmp_path / "DIV2K", "--scale", "4") == 0
    assert "train x4: 2 items, valid x4: 1 items" in capsys.readouterr().out
    assert {p for p, _ in server.requests} == {f"/{f}" for f in server.files}

    sets = {}
    for name, n in (("Set5", 2), ("Set14", 1)):
        for i in range(n):
            sets[f"benchmark/{name}/HR/img{i}.png"] = _png(12, 12)
            for s in (2, 3, 4) if name == "Set5" else (2, 4):  # a set without one scale still fetches
                sets[f"benchmark/{name}/LR_bicubic/X{s}/img{i}x{s}.png"] = _png(12 // s, 12 // s)
    server.files["benchmark.tar"] = tar_gz_bytes(sets)
    server.requests.clear()
    assert _fetch("set5", tmp_path / "benchmark" / "Set5") == 0
    assert "x2: 2 items, x3: 2 items, x4: 2 items" in capsys.readouterr().out
    assert _fetch("set14", tmp_path / "benchmark" / "Set14") == 0
    assert "set14: x2: 1 items, x4: 1 items in" in capsys.readouterr().out
    assert len(server.requests) == 1  # one download for both sets
    assert sorted(p.name for p in (tmp_path / "benchmark").iterdir()) == ["Set14", "Set5", "downloads"]


def test_scnn_pretraining_sources_land_in_their_reader_roots(server, tmp_path, capsys, monkeypatch):
    """Waterloo (RAR) and VOC 2012 (tar) miniatures: ROOT is the folder holding pristine_images/ or JPEGImages/."""
    pytest.importorskip("rarfile")
    server.files["exploration_database_and_code.rar"] = rar_bytes(
        {f"exploration_database_and_code/pristine_images/0000{i}.bmp": _png(8, 8) for i in (1, 2)}
    )
    server.files["VOCtrainval_11-May-2012.tar"] = tar_gz_bytes(
        {f"VOCdevkit/VOC2012/JPEGImages/2012_00000{i}.jpg": b"jpeg" for i in (1, 2, 3)}
    )
    voc = SOURCES["voc2012"]
    size = len(server.files["VOCtrainval_11-May-2012.tar"])  # the miniature's size, not the official 2 GB
    monkeypatch.setitem(SOURCES, "voc2012", replace(voc, archives=(replace(voc.archives[0], size=size),)))
    for name, root, folder, n in (
        ("waterloo", tmp_path / "waterloo", "pristine_images", 2),
        ("voc2012", tmp_path / "VOC2012", "JPEGImages", 3),
    ):
        assert _fetch(name, root) == 0
        assert len(list((root / folder).iterdir())) == n
        out = capsys.readouterr().out
        if SOURCES[name].reader in DATASETS:  # engineer B's readers, once registered
            assert f"{n} items" in out, out
        else:
            assert "count skipped" in out, out


# ----------------------------------------------------------------------------------------- resume and verify
def test_cut_transfer_resumes_with_range_request(server, tmp_path, tid_files, capsys):
    archive = zip_bytes(tid_files)
    server.files["tid2013.rar"] = archive
    server.cut_after = len(archive) // 3
    root = tmp_path / "tid"
    part = tmp_path / "downloads" / "tid2013.rar.part"
    assert _fetch("tid2013", root) == 2
    err = _one_line_error(capsys)
    assert f"stopped at {len(archive) // 3} of {len(archive)} bytes" in err and "re-run" in err
    assert part.stat().st_size == len(archive) // 3
    assert not (tmp_path / "downloads" / "tid2013.rar").exists() and not root.exists()

    assert _fetch("tid2013", root) == 0
    assert server.requests[-1] == ("/tid2013.rar", f"bytes={len(archive) // 3}-")
    assert f"sha256 {hashlib.sha256(archive).hexdigest()}" in capsys.readouterr().out
    assert not part.exists()


# A subprocess `distill data fetch` on a machine that could extract RARs (the served "RAR" is a zip; the check for
# unrar/unar/bsdtar before the first byte would otherwise stop it here, where none is installed).
_FETCH_WITH_A_RAR_TOOL = (
    "import sys; import distill.data.fetch.checks as c; c.rar_tool = lambda: 'unar'; "
    "from distill.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.slow  # a fresh interpreter imports torch: ~5 s idle, ~30 s on the shared 2-core machine
def test_killed_fetch_resumes(server, tmp_path, tid_files, capsys):
    """A fetch process killed mid-transfer leaves a .part that the next run continues (Range) to the right file."""
    archive = zip_bytes(tid_files)
    server.files["tid2013.rar"] = archive
    server.cut_after, server.stall = len(archive) // 2, threading.Event()
    root = tmp_path / "tid"
    part = tmp_path / "downloads" / "tid2013.rar.part"
    env = {**os.environ, "PYTHONPATH": str(REPO), MIRROR_ENV: server.base}
    proc = subprocess.Popen(
        [sys.executable, "-c", _FETCH_WITH_A_RAR_TOOL, "data", "fetch", "tid2013", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (part.is_file() and part.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert part.is_file() and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        server.stall.set()
    got = part.stat().st_size
    assert 0 < got <= len(archive) // 2 and not (tmp_path / "downloads" / "tid2013.rar").exists()
    assert _fetch("tid2013", root) == 0
    assert server.requests[-1][1] == f"bytes={got}-"
    assert (
        hashlib.sha256((tmp_path / "downloads" / "tid2013.rar").read_bytes()).hexdigest()
        == hashlib.sha256(archive).hexdigest()
    )
    assert "all: 4 items" in capsys.readouterr().out


def test_server_ignoring_range_restarts_cleanly(server, tmp_path, tid_files, capsys):
    archive = zip_bytes(tid_files)
    server.files["tid2013.rar"] = archive
    server.ranges = False
    part = tmp_path / "downloads" / "tid2013.rar.part"
    part.parent.mkdir()
    part.write_bytes(b"\0" * 100)  # not even a prefix of the file: appending to it would corrupt the archive
    assert _fetch("tid2013", tmp_path / "tid") == 0
    out = capsys.readouterr().out
    assert "ignores resume requests" in out and "all: 4 items" in out
    assert (tmp_path / "downloads" / "tid2013.rar").read_bytes() == archive


def test_published_checksum_mismatch_deletes_download(server, tmp_path, tid_files, capsys, monkeypatch):
    archive = zip_bytes(tid_files)
    good = SOURCES["tid2013"]
    published = replace(good.archives[0], md5=hashlib.md5(archive).hexdigest(), checksum_source="the test")
    monkeypatch.setitem(SOURCES, "tid2013", replace(good, archives=(published,)))
    server.files["tid2013.rar"] = archive[:-10] + b"corrupted!"
    assert _fetch("tid2013", tmp_path / "tid") == 2
    err = _one_line_error(capsys)
    assert "md5" in err and "does not match" in err and "deleted" in err
    assert list((tmp_path / "downloads").iterdir()) == [] and not (tmp_path / "tid").exists()
    server.files["tid2013.rar"] = archive
    assert _fetch("tid2013", tmp_path / "tid") == 0
    assert "(published md5 verified)" in capsys.readouterr().out


def test_refetch_is_checked_against_recorded_sha256(server, tmp_path, tid_files, capsys):
    archive = zip_bytes(tid_files)
    server.files["tid2013.rar"] = archive
    root = tmp_path / "tid"
    assert _fetch("tid2013", root) == 0
    (tmp_path / "downloads" / "tid2013.rar").unlink()
    server.files["tid2013.rar"] = zip_bytes({**tid_files, "tid2013/extra.txt": b"changed upstream"})
    capsys.readouterr()
    assert _fetch("tid2013", root, "--force") == 2
    err = _one_line_error(capsys)
    assert "sha256" in err and "recorded by the last fetch" in err
    assert json.loads((root / RECORD).read_text())["archives"][0]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert not (tmp_path / "downloads" / "tid2013.rar").exists()


def test_offline_is_one_line_naming_url_file_and_archive_option(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/")
    assert _fetch("voc2012", tmp_path / "voc") == 2
    err = _one_line_error(capsys)
    assert f"http://127.0.0.1:{port}/VOCtrainval_11-May-2012.tar" in err
    assert "--archive PATH/VOCtrainval_11-May-2012.tar" in err and "refused" in err.lower()


def test_no_name_resolution_is_one_line_naming_the_official_url(tmp_path, capsys, monkeypatch):
    """Offline as a real machine is: the official host's name does not resolve (no socket is opened)."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(fetch_checks, "rar_tool", lambda: "unar")  # the machine could extract the RARs
    for name in ("tid2013", "waterloo", "voc2012"):
        assert _fetch(name, tmp_path / name) == 2
        err = _one_line_error(capsys)
        url = SOURCES[name].archives[0].url
        assert f"from {url}: " in err and "name resolution" in err, err
        assert f"--archive PATH/{SOURCES[name].archives[0].file}" in err
        assert not (tmp_path / name).exists()


def test_missing_file_on_the_host_is_one_line(server, tmp_path, capsys):
    assert _fetch("tid2013", tmp_path / "tid") == 2  # the mirror does not serve tid2013.rar
    err = _one_line_error(capsys)
    assert f"from {server.base}tid2013.rar: HTTP 404" in err and "--archive PATH/tid2013.rar" in err
    assert not (tmp_path / "tid").exists() and not list((tmp_path / "downloads").iterdir())


def test_size_other_than_the_official_file_is_one_line(server, tmp_path, capsys):
    """VOC 2012's table holds the official tar's size: a host serving another size, or a local file of another
    size, is refused before anything is written or extracted."""
    tar = tar_gz_bytes({"VOCdevkit/VOC2012/JPEGImages/2012_000001.jpg": b"jpeg"}, mode="w")
    server.files["VOCtrainval_11-May-2012.tar"] = tar
    official = SOURCES["voc2012"].archives[0].size
    assert _fetch("voc2012", tmp_path / "voc") == 2
    err = _one_line_error(capsys)
    assert f"serves {len(tar)} bytes for VOCtrainval_11-May-2012.tar, expected {official}" in err
    assert not (tmp_path / "voc").exists() and not list((tmp_path / "downloads").iterdir())
    local = tmp_path / "VOCtrainval_11-May-2012.tar"
    local.write_bytes(tar)
    assert _fetch("voc2012", tmp_path / "voc", "--archive", local) == 2
    assert f"{len(tar)} bytes, expected {official}" in _one_line_error(capsys)
    assert not (tmp_path / "voc").exists()


def test_manual_source_without_url_says_where_to_download(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert _fetch("livec", tmp_path / "livec") == 2
    err = _one_line_error(capsys)
    assert "no stable download URL" in err and "live.ece.utexas.edu" in err and "--archive" in err


# ----------------------------------------------------------------------------------------- hostile archives
def _evil_symlink_tar() -> bytes:
    return tar_gz_bytes({"tid2013/link/evil.txt": b"x"}, links={"tid2013/link": "../../../outside"})


@pytest.mark.parametrize(
    "name, data",
    [
        ("abs.zip", lambda: zip_bytes({"/tmp/distill_fetch_evil_abs.txt": b"x"})),
        ("dotdot.zip", lambda: zip_bytes({"tid2013/../../evil.txt": b"x"})),
        ("abs.tar.gz", lambda: tar_gz_bytes({"/evil.txt": b"x"})),
        ("dotdot.tar.gz", lambda: tar_gz_bytes({"tid2013/../../evil.txt": b"x"})),
        ("symlink.tar.gz", _evil_symlink_tar),
        ("abslink.tar.gz", lambda: tar_gz_bytes({}, links={"tid2013/passwd": "/etc/passwd"})),
    ],
)
def test_hostile_archive_is_refused_and_nothing_escapes(tmp_path, capsys, name, data):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    archive = tmp_path / name
    archive.write_bytes(data())
    root = work / "tid"
    assert _fetch("tid2013", root, "--archive", archive) == 2
    assert "refusing to extract" in _one_line_error(capsys)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a", "a/b", name]
    assert not Path("/tmp/distill_fetch_evil_abs.txt").exists()


def test_zip_symlink_member_is_refused(tmp_path, capsys):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("tid2013/link")
        info.external_attr = (0o120777 << 16) | 0
        zf.writestr(info, "/etc")
    archive = tmp_path / "link.zip"
    archive.write_bytes(buf.getvalue())
    assert _fetch("tid2013", tmp_path / "tid", "--archive", archive) == 2
    assert "symbolic link" in _one_line_error(capsys)


# ---------------------------------------------------------------------------------------- layouts and extras
@pytest.mark.parametrize(
    "name, expected, page",
    [
        ("tid2013", "no folder with distorted_images, reference_images, mos_with_names.txt", "ponomarenko.info"),
        ("waterloo", "no folder with pristine_images", "uwaterloo.ca"),
        ("voc2012", "no folder with JPEGImages", "host.robots.ox.ac.uk"),
    ],
)
def test_unknown_layout_says_what_was_found_and_expected(tmp_path, capsys, monkeypatch, name, expected, page):
    _without_official_sizes(monkeypatch, name)
    archive = tmp_path / "odd.zip"
    archive.write_bytes(zip_bytes({"stuff/readme.txt": b"hello", "stuff/img/1.bmp": b"x"}))
    root = tmp_path / name
    assert _fetch(name, root, "--archive", archive) == 2
    err = _one_line_error(capsys)
    assert expected in err and "stuff/readme.txt" in err and page in err
    assert not root.exists() and _nothing_beside(root) == ["odd.zip"]


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_corrupt_archive_without_checksum_is_one_line(tmp_path, tid_files, capsys, cut):
    whole = tar_gz_bytes(tid_files)
    archive = tmp_path / "tid2013.tar.gz"
    archive.write_bytes(whole[: int(len(whole) * cut)])
    assert _fetch("tid2013", tmp_path / "tid", "--archive", archive) == 2
    err = _one_line_error(capsys)
    assert f"cannot extract {archive}" in err and "delete it and fetch again" in err
    assert not (tmp_path / "tid").exists() and _nothing_beside(tmp_path / "tid") == ["tid2013.tar.gz"]


def test_layout_the_reader_rejects_is_one_line(tmp_path, tid_files, capsys):
    broken = {k: v for k, v in tid_files.items() if "distorted_images/" not in k or k.endswith("_1.bmp")}
    archive = tmp_path / "broken.zip"
    archive.write_bytes(zip_bytes(broken))
    assert _fetch("tid2013", tmp_path / "tid", "--archive", archive) == 2
    err = _one_line_error(capsys)
    assert "does not open with the 'tid2013' reader" in err and "not found" in err
    assert not (tmp_path / "tid").exists()


def test_rar_archive_is_extracted(server, tmp_path, tid_files, capsys):
    pytest.importorskip("rarfile")
    server.files["tid2013.rar"] = rar_bytes(tid_files)
    assert _fetch("tid2013", tmp_path / "tid") == 0
    assert "all: 4 items" in capsys.readouterr().out


def test_hostile_rar_is_refused(tmp_path, capsys):
    pytest.importorskip("rarfile")
    archive = tmp_path / "evil.rar"
    archive.write_bytes(rar_bytes({"tid2013/../../evil.txt": b"x"}))
    assert _fetch("tid2013", tmp_path / "w" / "tid", "--archive", archive) == 2
    assert "refusing to extract" in _one_line_error(capsys)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "w" / "tid").exists()


def test_rar_without_the_extra_names_extra_and_tool(tmp_path, tid_files, capsys, monkeypatch):
    archive = tmp_path / "tid2013.rar"
    archive.write_bytes(rar_bytes(tid_files))
    monkeypatch.setitem(sys.modules, "rarfile", None)  # as if the extra were not installed
    assert _fetch("tid2013", tmp_path / "tid", "--archive", archive) == 2
    err = _one_line_error(capsys)
    assert ".[archives]" in err and "unrar" in err and "unar" in err and "bsdtar" in err


@pytest.mark.skipif(
    any(shutil.which(t) for t in ("unrar", "unar", "bsdtar", "7z", "7zz")), reason="a RAR tool is installed"
)
def test_compressed_rar_without_a_system_tool_names_the_tools(tmp_path, capsys):
    pytest.importorskip("rarfile")
    archive = tmp_path / "tid2013.rar"
    archive.write_bytes(rar_bytes({"tid2013/mos_with_names.txt": b"\0" * 16}, method=0x33))
    assert _fetch("tid2013", tmp_path / "tid", "--archive", archive) == 2
    err = _one_line_error(capsys)
    assert "no RAR tool" in err and "unar" in err and ".[archives]" in err


def test_bad_arguments_are_one_line(tmp_path, capsys):
    assert _fetch("imagenet", tmp_path / "x") == 2
    assert "unknown dataset 'imagenet'" in _one_line_error(capsys)
    assert _fetch("tid2013", tmp_path / "x", "--scale", "4") == 2
    assert "--scale" in _one_line_error(capsys)
    assert _fetch("div2k", tmp_path / "x", "--scale", "four") == 2
    assert "expected scales such as 4" in _one_line_error(capsys)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("user data")
    for force in ((), ("--force",)):  # a folder of the user's own is never replaced
        assert _fetch("tid2013", tmp_path / "taken", "--archive", tmp_path / "taken" / "mine.txt", *force) == 2
        assert "already exists and holds files that are not a fetched dataset" in _one_line_error(capsys)
    assert (tmp_path / "taken" / "mine.txt").read_text() == "user data"
    assert _fetch("div2k", tmp_path / "d", "--url", "http://127.0.0.1:1/DIV2K_train_HR.zip") == 2
    assert "give a base URL ending in '/'" in _one_line_error(capsys)
    assert _fetch() == 0 and "ponomarenko.info" in capsys.readouterr().out  # the list of datasets
