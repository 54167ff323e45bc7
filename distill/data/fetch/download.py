"""Resumable HTTP download with a progress bar, verified before it takes the final name.

The bytes go to ``<file>.part``. A later run continues it with an HTTP Range request; a server that ignores Range
(200 instead of 206) restarts the file cleanly. Only a file whose size and checksum check out is renamed to its final
name (``os.replace``), so a partial or corrupt download never looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from distill.errors import DataError

CHUNK = 1 << 20
TIMEOUT_S = 60.0
USER_AGENT = "distill-data-fetch (python urllib)"


@dataclass(frozen=True)
class Expected:
    """What a file must match: byte count and checksums (any may be unknown)."""

    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    source: str = ""  # where md5/sha256 come from, named in a mismatch error


def file_digests(path: Path, desc: str | None = None) -> tuple[str, str]:
    """(md5, sha256) hex digests of ``path``, read once."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    total = path.stat().st_size
    with open(path, "rb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=desc is None) as bar:
        while chunk := f.read(CHUNK):
            md5.update(chunk)
            sha.update(chunk)
            bar.update(len(chunk))
    return md5.hexdigest(), sha.hexdigest()


def verify(path: Path, expected: Expected, what: str) -> str:
    """Check ``path`` against ``expected``; return its sha256. A mismatch raises :class:`DataError` naming both."""
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        raise DataError(f"{what}: {size} bytes, expected {expected.size}")
    md5, sha = file_digests(path, desc=f"checking {path.name}" if size > 64 * CHUNK else None)
    for kind, got, want in (("md5", md5, expected.md5), ("sha256", sha, expected.sha256)):
        if want and got != want.lower():
            source = f" ({expected.source})" if expected.source else ""
            raise DataError(f"{what}: {kind} {got} does not match the expected {want}{source}")
    return sha


def _open(url: str, offset: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _served_range(resp: http.client.HTTPResponse) -> tuple[int, int | None]:
    """(first byte, full file size or None) of a response: Content-Range for 206, Content-Length for 200."""
    if resp.status == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if match is None:
            return -1, None
        return int(match[1]), None if match[2] == "*" else int(match[2])
    length = resp.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def download(url: str, dest: Path, expected: Expected, hint: str) -> str:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it and move it into place; return its sha256.

    ``hint`` ends every network error: what to do by hand. A checksum mismatch deletes the download.
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    if expected.size is not None and offset > expected.size:
        part.unlink()  # longer than the file can be: not a prefix of it
        offset = 0
    if offset and offset == expected.size:
        print(f"{part.name}: already complete, verifying")
    else:
        offset = _transfer(url, part, offset, expected.size, hint)
    what = f"{dest.name} downloaded from {url}"
    try:
        sha = verify(part, expected, what)
    except DataError as err:
        part.unlink(missing_ok=True)
        raise DataError(f"{err}; the download was deleted: re-run to download it again") from None
    os.replace(part, dest)
    return sha


def _transfer(url: str, part: Path, offset: int, size: int | None, hint: str) -> int:
    """Append the rest of ``url`` to ``part`` from ``offset``; return the final byte count."""
    try:
        resp = _open(url, offset)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send, or the part is longer than the file
            if err.headers.get("Content-Range", "") == f"bytes */{offset}":
                return offset
            part.unlink()
            return _transfer(url, part, 0, size, hint)
        raise DataError(f"cannot download {part.name[:-5]} from {url}: HTTP {err.code} {err.reason}. {hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"cannot download {part.name[:-5]} from {url}: {reason}. {hint}") from None
    with resp:
        start, total = _served_range(resp)
        if start != offset:
            if start != 0:  # a range we did not ask for
                resp.close()
                part.unlink(missing_ok=True)
                return _transfer(url, part, 0, size, hint)
            print(f"{part.name[:-5]}: the server ignores resume requests (HTTP {resp.status}); starting over")
            offset = 0
        elif offset:
            print(f"{part.name[:-5]}: resuming at {offset} bytes")
        total = total if total is not None else size
        if size is not None and total is not None and total != size:
            raise DataError(
                f"{url} serves {total} bytes for {part.name[:-5]}, expected {size}: the host's file changed or the URL "
                f"is wrong. {hint}"
            )
        done = offset
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5]) as bar,
        ):
            try:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            except (TimeoutError, http.client.IncompleteRead, OSError) as err:
                out.flush()
                raise DataError(
                    f"download of {part.name[:-5]} from {url} stopped at {done} of {total or '?'} bytes "
                    f"({type(err).__name__}); re-run the same command to resume from {part}"
                ) from None
    if total is not None and done != total:
        raise DataError(
            f"download of {part.name[:-5]} from {url} stopped at {done} of {total} bytes; re-run the same command to "
            f"resume from {part}"
        )
    return done
