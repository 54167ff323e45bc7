"""A local HTTP server standing in for the official dataset hosts, and miniature archives in their formats.

Shared by the `distill data fetch` tests and the end-to-end headline test: nothing here touches the internet.
"""

from __future__ import annotations

import io
import re
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distill.data.fetch import MIRROR_ENV
from distill.data.fetch import checks as fetch_checks


# ------------------------------------------------------------------------------------------------ local server
class MirrorHandler(BaseHTTPRequestHandler):
    server: MirrorServer

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        body = srv.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and srv.ranges:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng)[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        cut, srv.cut_after = srv.cut_after, None
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            if srv.stall is not None:  # hold the connection open until the test releases it
                srv.stall.wait(20)
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), MirrorHandler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.ranges = True
        self.cut_after: int | None = None
        self.stall: threading.Event | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def serve_mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[MirrorServer]:
    """A started server, named by ``DISTILL_FETCH_MIRROR`` for the test (``yield from`` it in a fixture)."""
    srv = MirrorServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(MIRROR_ENV, srv.base)
    # the miniature RARs it serves hold stored members, which rarfile extracts alone: the check made before a download
    # (a compressed official RAR needs a system tool) is told one is there; tests of that check patch it back
    monkeypatch.setattr(fetch_checks, "rar_tool", lambda: "unar")
    try:
        yield srv
    finally:
        if srv.stall is not None:
            srv.stall.set()
        srv.shutdown()
        srv.server_close()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_gz_bytes(files: dict[str, bytes], links: dict[str, str] | None = None, mode: str = "w:gz") -> bytes:
    """A tar archive of ``files`` and symbolic ``links`` (gzip-compressed; ``mode="w"``: a plain tar)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tree_files(folder: Path, prefix: str) -> dict[str, bytes]:
    """Every file under ``folder`` as ``{prefix/relative: bytes}`` (the synthetic-set marker left out)."""
    return {
        f"{prefix}{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "SYNTHETIC.json"
    }


def rar_block(kind: int, flags: int, body: bytes) -> bytes:
    head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head


def rar_bytes(files: dict[str, bytes], method: int = 0x30) -> bytes:
    """A RAR 4 archive of ``files`` (method 0x30: stored, readable without a RAR tool; 0x33: 'compressed')."""
    out = b"Rar!\x1a\x07\x00" + rar_block(0x73, 0, bytes(6))
    for name, data in files.items():
        raw = name.replace("/", "\\").encode()
        unpacked = len(data) if method == 0x30 else 10 * len(data)
        body = struct.pack("<IIBIIBBHI", len(data), unpacked, 2, zlib.crc32(data), 0x21, 29, method, len(raw), 0x20)
        out += rar_block(0x74, 0x8000, body + raw) + data
    return out + rar_block(0x7B, 0x4000, b"")
