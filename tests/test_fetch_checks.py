"""`distill data fetch` checks the extra, the RAR tool, the disk and the target before the first byte is downloaded.

The local 127.0.0.1 mirror records every request: a refused fetch made none, and left no folder behind.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from distill.cli import main
from distill.data.fetch import RECORD, SOURCES
from distill.data.fetch import checks as fetch_checks
from tests.fetch_server import MirrorServer, serve_mirror, zip_bytes


@pytest.fixture
def server(monkeypatch) -> Iterator[MirrorServer]:
    for srv in serve_mirror(monkeypatch):
        srv.files["tid2013.rar"] = b"Rar!\x1a\x07\x00" + b"\0" * 4096
        yield srv


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), lines
    return lines[0]


def _nothing_fetched(server: MirrorServer, tmp_path: Path) -> None:
    assert server.requests == [], "a byte was requested before the checks"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "locked") == [], "something was created"


def test_missing_archives_extra_is_said_before_downloading(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rarfile", None)  # as if the extra were not installed
    assert main(["data", "fetch", "tid2013", str(tmp_path / "tid")]) == 2
    err = _error(capsys)
    assert "tid2013.rar is a RAR archive" in err and ".[archives]" in err
    _nothing_fetched(server, tmp_path)


def test_missing_rar_tool_is_said_before_downloading(server, tmp_path, capsys, monkeypatch):
    pytest.importorskip("rarfile")
    monkeypatch.setattr(fetch_checks, "rar_tool", lambda: None)
    assert main(["data", "fetch", "tid2013", str(tmp_path / "tid")]) == 2
    err = _error(capsys)
    assert "no RAR tool (unrar, unar, bsdtar) was found" in err and "apt-get install unar" in err
    _nothing_fetched(server, tmp_path)


def test_too_little_disk_is_said_before_downloading(server, tmp_path, capsys, monkeypatch):
    pytest.importorskip("rarfile")
    tid = SOURCES["tid2013"]
    monkeypatch.setitem(SOURCES, "tid2013", replace(tid, archives=(replace(tid.archives[0], size=900_000_000),)))
    monkeypatch.setattr(fetch_checks, "free_bytes", lambda folder: 1_000_000_000)
    assert main(["data", "fetch", "tid2013", str(tmp_path / "tid")]) == 2
    err = _error(capsys)
    assert "needs about 2.07 GB free" in err and "only 1.00 GB is free" in err and "Nothing was downloaded" in err
    _nothing_fetched(server, tmp_path)
    monkeypatch.setattr(fetch_checks, "free_bytes", lambda folder: 3_000_000_000)  # enough: it downloads
    assert main(["data", "fetch", "tid2013", str(tmp_path / "tid")]) == 2  # (the served file is not 0.9 GB)
    assert server.requests, "with room on the disk the download starts"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_read_only_target_is_said_before_downloading(server, tmp_path, capsys):
    pytest.importorskip("rarfile")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    assert main(["data", "fetch", "tid2013", str(locked / "tid"), "--downloads", str(tmp_path / "dl")]) == 2
    assert f"ROOT {locked / 'tid'}: the folder {locked} is read-only" in _error(capsys)
    assert main(["data", "fetch", "tid2013", str(tmp_path / "tid"), "--downloads", str(locked / "dl")]) == 2
    assert f"--downloads {locked / 'dl'}: the folder {locked} is read-only" in _error(capsys)
    _nothing_fetched(server, tmp_path)
    assert list(locked.iterdir()) == []


def test_a_failed_fetch_names_no_record_in_a_folder_it_never_made(server, tmp_path, capsys):
    server.files["kadid10k.zip"] = zip_bytes({"not_kadid/readme.txt": b"another layout"})
    root = tmp_path / "kadid"
    assert main(["data", "fetch", "kadid10k", str(root)]) == 2
    out, err = capsys.readouterr()
    assert "hold no folder with images, dmos.csv" in err
    assert not root.exists()
    assert str(root / RECORD) not in out + err and str(root) + os.sep + RECORD not in out + err
