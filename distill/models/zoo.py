"""The zoo: published checkpoints the paper recipes start from or compare against, by name (``zoo:NAME``).

One table, :data:`ZOO`, like :mod:`distill.data.fetch.sources` for data. Every row names the file as its authors
publish it, the URL it was found at (``source`` says where), its licence/page, the registered model and arguments it
fits and the :mod:`distill.models.convert` layout that reads it. ``url=None`` rows are hosted behind an interactive
page (Google Drive, Baidu, a Dropbox zip): download by hand, then ``distill weights fetch NAME --file PATH``.

Checks: the byte count and sha256 where known, else the hash prefix in the file name (torch hub's convention, the
first hex digits of the sha256), else the sha256 recorded at the first download (``distill_zoo.json`` beside the
files), which every later download must match. :func:`resolve_zoo` downloads with ``distill data fetch``'s resumable,
verified downloader into the torch hub cache (``torch.hub.get_dir()/checkpoints``), converts the file once into
``checkpoints/distill/NAME.pt`` (distill's self-describing model file, what a run's ``student.pt`` is) and returns
that path. Nothing is downloaded unless a command or a recipe names the row.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill.errors import CheckpointError, DataError
from distill.run.atomic import write_text

__all__ = [
    "SWINIR_M_ARGS",
    "ZOO",
    "ZOO_PREFIX",
    "ZooEntry",
    "cache_dir",
    "converted_path",
    "describe",
    "resolve_zoo",
    "zoo_entry",
]

ZOO_PREFIX = "zoo:"
RECORD = "distill_zoo.json"
RETRIES = 3  # downloads per command: a truncated or corrupt transfer is refused and fetched again


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint."""

    name: str
    title: str
    file: str  # the file name as published
    url: str | None  # direct URL; None: an interactive page only (see ``interactive_page``)
    model: str  # registered model it converts to
    args: dict[str, Any]  # that model's arguments
    converter: str  # distill.models.convert format
    licence: str
    page: str  # the authors' page (terms, paper)
    source: str  # where the URL / file name was found
    interactive_page: str | None = None  # Google Drive / Baidu / Dropbox page of a url=None row
    size: int | None = None  # bytes, where known
    sha256: str | None = None  # full sha256, where known (``hash_source`` says how)
    hash_source: str = ""
    mirrors: tuple[str, ...] = ()  # other hosts of the same file
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # {"Set5": {"psnr": 32.72}}
    scores_source: str = ""  # where the numbers are printed, and their convention
    note: str = ""

    @property
    def hash_prefix(self) -> str | None:
        """The hash prefix in the file name (``name-<hex>.pth``), torch hub's convention; None without one."""
        match = torch.hub.HASH_REGEX.search(self.file)
        return match.group(1) if match else None

    @property
    def hash(self) -> str | None:
        """The full sha256 when known, else the file name's hash prefix, else None (recorded at first download)."""
        return self.sha256 or self.hash_prefix


# ------------------------------------------------------------------------------------------------ the table
_PYIQA_GH = "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/"
_PYIQA_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
_PYIQA_PAGE = "https://github.com/chaofengc/IQA-PyTorch"
_PYIQA_LICENCE = "pyiqa's hosting: PolyForm Noncommercial 1.0.0 / NTU S-Lab (see its README)"
_PYIQA_SOURCE = (
    "pyiqa pyiqa/archs/{arch} default_model_urls (get_url_from_name: Hugging Face chaofengc/IQA-PyTorch-Weights, "
    "store_base='github': the v0.1-weights release, where these names were listed until 2024)"
)
_DBCNN_PAGE = "https://github.com/zwx8981/DBCNN-PyTorch"


def _pyiqa_dbcnn(name: str, dataset: str, file: str, github: bool = True) -> ZooEntry:
    return ZooEntry(
        name=name,
        title=f"DBCNN trained on {dataset} (pyiqa's weights)",
        file=file,
        url=(_PYIQA_GH if github else _PYIQA_HF) + file,
        mirrors=(_PYIQA_HF + file,) if github else (),
        model="dbcnn",
        args={"backbone": "vgg16"},
        converter="pyiqa-dbcnn",
        licence=_PYIQA_LICENCE,
        page=_PYIQA_PAGE,
        source=_PYIQA_SOURCE.format(arch="dbcnn_arch.py"),
        note="a whole DBCNN (VGG-16 + SCNN + fc) for `distill eval`/`predict`; MRKD recipes start from dbcnn_scnn",
    )


_EDSR_PAGE = "https://github.com/sanghyun-son/EDSR-PyTorch"
_EDSR_HOST = "https://cv.snu.ac.kr/research/EDSR/models/"
_EDSR_SOURCE = "EDSR-PyTorch src/model/edsr.py, the `url` table (keys r16f64xS, r32f256xS)"
_BASICSR_PAGE = "https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md"
_BASICSR_DRIVE = "https://drive.google.com/drive/folders/15DgDtfaLASQ3iAPJEVHQF49g9msexECG"
_BASICSR_SCORES = (
    "BasicSR docs/ModelZoo.md, 'Image SR Official Models' (official models converted by BasicSR): RGB channels, "
    "`scale` border pixels cropped, hence psnr_rgb/ssim_rgb, not the Y-channel psnr/ssim of the MiPKD protocol"
)
#: BasicSR's ModelZoo table: (Set5, Set14, DIV2K100) PSNR/SSIM on RGB of its official EDSR conversions
_BASICSR_EDSR = {
    ("M", 2): ("3ba7b086", (35.7768, 0.9442), (31.4966, 0.8939), (34.6291, 0.9373)),
    ("M", 3): ("6908f88a", (32.3597, 0.903), (28.3932, 0.8096), (30.9438, 0.8737)),
    ("M", 4): ("0c287733", (30.1821, 0.8641), (26.7528, 0.7432), (28.9679, 0.8183)),
    ("L", 2): ("be38e77d", (35.9979, 0.9454), (31.8583, 0.8971), (35.0495, 0.9407)),
    ("L", 3): ("3660f70d", (32.643, 0.906), (28.644, 0.8152), (31.28, 0.8798)),
    ("L", 4): ("76ee1c8f", (30.5499, 0.8701), (27.0011, 0.7509), (29.277, 0.8266)),
}
_EDSR_PT_HASH = {("M", 2): "1bc95232", ("M", 3): "abf2a44e", ("M", 4): "6b446fab",
                 ("L", 2): "0edfb8a3", ("L", 3): "ea3ef2c6", ("L", 4): "4f62e9ef"}  # fmt: skip
_EDSR_ARGS = {"M": {"num_feat": 64, "num_block": 16, "res_scale": 1.0},
              "L": {"num_feat": 256, "num_block": 32, "res_scale": 0.1}}  # fmt: skip


def _rgb_scores(row: tuple) -> dict[str, dict[str, float]]:
    return {name: {"psnr_rgb": p, "ssim_rgb": s} for name, (p, s) in zip(("Set5", "Set14", "DIV2K100"), row[1:])}


def _edsr_rows() -> list[ZooEntry]:
    rows = []
    for (size, scale), digest in _EDSR_PT_HASH.items():
        stem = f"edsr_baseline_x{scale}" if size == "M" else f"edsr_x{scale}"
        label = "EDSR baseline (c64 b16)" if size == "M" else "EDSR-L (c256 b32, res_scale 0.1)"
        basicsr = _BASICSR_EDSR[(size, scale)]
        rows.append(ZooEntry(
            name=stem, title=f"{label} x{scale}, DIV2K (EDSR-PyTorch's release)", file=f"{stem}-{digest}.pt",
            url=f"{_EDSR_HOST}{stem}-{digest}.pt", model="edsr", args={**_EDSR_ARGS[size], "upscale": scale},
            converter="edsr-pytorch", licence="MIT (EDSR-PyTorch)", page=_EDSR_PAGE, source=_EDSR_SOURCE,
            scores=_rgb_scores(basicsr), scores_source=_BASICSR_SCORES + " (of this release, converted)",
        ))  # fmt: skip
        name = f"EDSR_{size}x{scale}_f{_EDSR_ARGS[size]['num_feat']}b{_EDSR_ARGS[size]['num_block']}_DIV2K_official"
        rows.append(ZooEntry(
            name=f"{stem}_basicsr", title=f"{label} x{scale}, BasicSR's official conversion",
            file=f"{name}-{basicsr[0]}.pth",
            url=None, interactive_page=_BASICSR_DRIVE, model="edsr", args={**_EDSR_ARGS[size], "upscale": scale},
            converter="basicsr", licence="Apache-2.0 (BasicSR); weights: EDSR's MIT release", page=_BASICSR_PAGE,
            source="BasicSR docs/ModelZoo.md (file names; Google Drive 'Pretrained Models' folder, or Baidu)",
            scores=_rgb_scores(basicsr), scores_source=_BASICSR_SCORES,
        ))  # fmt: skip
    return rows


_DCKD = (
    "teacher rows of DCKD (arXiv 2412.08939) Table 2, the setup MiPKD's recipes follow, as the project's notes "
    "(shared papers/mipkd_tables.md, T-B) record them: PSNR/SSIM on the Y channel, border = scale; measured by DCKD, "
    "not by the model's authors"
)
_SWINIR_SCORES = {
    2: ((38.36, 0.9620), (34.14, 0.9227), (32.45, 0.9030), (33.40, 0.9394)),
    3: ((34.89, 0.9312), (30.77, 0.8503), (29.37, 0.8124), (29.29, 0.8744)),
    4: ((32.72, 0.9021), (28.94, 0.7914), (27.83, 0.7459), (27.07, 0.8164)),
}
_RCAN_SCORES = {
    2: ((38.27, 0.9614), (34.13, 0.9216), (32.41, 0.9027), (33.34, 0.9384)),
    3: ((34.74, 0.9299), (30.65, 0.8482), (29.32, 0.8111), (29.09, 0.8702)),
    4: ((32.63, 0.9002), (28.87, 0.7889), (27.77, 0.7436), (26.82, 0.8087)),
}


def _y_scores(row: tuple) -> dict[str, dict[str, float]]:
    return {name: {"psnr": p, "ssim": s} for name, (p, s) in zip(("Set5", "Set14", "B100", "Urban100"), row)}


#: classical SwinIR-M, as the authors' main_test_swinir.py builds it for training_patch_size 48
SWINIR_M_ARGS = {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "window_size": 8, "mlp_ratio": 2.0,
                 "img_size": 48, "img_range": 1.0, "upsampler": "pixelshuffle", "resi_connection": "1conv"}  # fmt: skip
_SWINIR_PAGE = "https://github.com/JingyunLiang/SwinIR"
_RCAN_PAGE = "https://github.com/yulunzhang/RCAN"
_RCAN_ZIP = "https://www.dropbox.com/s/mjbcqkd4nwhr6nu/models_ECCV2018RCAN.zip?dl=0"
_VLFEAT = "http://www.vlfeat.org/matconvnet/models/"


def _sr_rows() -> list[ZooEntry]:
    rows = _edsr_rows()
    swinir, rcan = [], []
    for s in (2, 3, 4):
        file = f"001_classicalSR_DIV2K_s48w8_SwinIR-M_x{s}.pth"
        swinir.append(ZooEntry(
            name=f"swinir_m_x{s}", title=f"classical SwinIR-M x{s}, DIV2K, 48 px patches, window 8", file=file,
            url=f"https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/{file}", model="swinir",
            args={**SWINIR_M_ARGS, "upscale": s}, converter="swinir", licence="Apache-2.0 (SwinIR)", page=_SWINIR_PAGE,
            source="SwinIR main_test_swinir.py (downloads releases/download/v0.0/<model file>) and README's "
                   "classical_sr --training_patch_size 48 commands",
            scores=_y_scores(_SWINIR_SCORES[s]), scores_source=_DCKD,
        ))  # fmt: skip
        rcan.append(ZooEntry(
            name=f"rcan_x{s}", title=f"RCAN x{s} (10 groups x 20 blocks, c64), DIV2K, the authors' file",
            file=f"RCAN_BIX{s}.pt", url=None, model="rcan",
            args={"num_feat": 64, "num_group": 10, "num_block": 20, "squeeze_factor": 16, "upscale": s},
            converter="rcan", licence="see the RCAN page (no licence file found)", page=_RCAN_PAGE,
            interactive_page=f"{_RCAN_ZIP} (models_ECCV2018RCAN.zip holds RCAN_BIX2/3/4/8.pt; the RCAN README also "
                             "links Google Drive and Baidu)",
            source="EDSR-PyTorch src/demo.sh (the RCAN model zip on Dropbox) and RCAN's README",
            scores=_y_scores(_RCAN_SCORES[s]), scores_source=_DCKD,
        ))  # fmt: skip
    return [*rows, *rcan, *swinir]


_ROWS: list[ZooEntry] = [
    ZooEntry(
        name="dbcnn_scnn",
        title="DBCNN's SCNN, pre-trained on 39 synthetic distortion classes (Waterloo Exploration + PASCAL VOC)",
        file="DBCNN_scnn-7ea73d75.pth",
        url=_PYIQA_GH + "DBCNN_scnn-7ea73d75.pth",
        mirrors=(_PYIQA_HF + "DBCNN_scnn-7ea73d75.pth", _DBCNN_PAGE + "/raw/master/pretrained_scnn/scnn.pkl"),
        size=2585667,
        sha256="7ea73d75539cefcf4953800a896e024ea1a3216de2392f242810b113fd940a42",
        hash_source="sha256 of DBCNN-PyTorch's pretrained_scnn/scnn.pkl (git master), which the prefix in pyiqa's "
        "file name matches: the same file",
        model="scnn",
        args={"num_classes": 39},
        converter="scnn",
        licence="MIT (DBCNN-PyTorch); " + _PYIQA_LICENCE,
        page=_DBCNN_PAGE,
        source="pyiqa pyiqa/archs/dbcnn_arch.py default_model_urls['scnn'] (v0.1-weights release since 2023, now "
        "Hugging Face); DBCNN-PyTorch ships it as pretrained_scnn/scnn.pkl",
        note="what DBCNN's scnn_pretrained takes (its head is dropped); recipes/scnn_pretrain.yaml trains one instead",
    ),
    _pyiqa_dbcnn("dbcnn_tid2013", "TID2013", "DBCNN_TID2013-485d021d.pth"),
    _pyiqa_dbcnn("dbcnn_livec", "LIVE Challenge", "DBCNN_LIVEC-83f6dad3.pth"),
    _pyiqa_dbcnn("dbcnn_live", "LIVE", "DBCNN_LIVE-97262bf4.pth"),
    _pyiqa_dbcnn("dbcnn_csiq", "CSIQ", "DBCNN_CSIQ-8677d071.pth"),
    _pyiqa_dbcnn("dbcnn_koniq", "KonIQ-10k", "DBCNN_KonIQ10k-2de81c0a.pth", github=False),
    ZooEntry(
        name="hyperiqa_koniq",
        title="HyperIQA (ResNet-50) trained on KonIQ-10k (pyiqa's weights)",
        file="HyperIQA-resnet50-koniq10k-c96c41b1.pth",
        url=_PYIQA_GH + "HyperIQA-resnet50-koniq10k-c96c41b1.pth",
        mirrors=(_PYIQA_HF + "HyperIQA-resnet50-koniq10k-c96c41b1.pth",),
        model="hyperiqa",
        args={"depth": 50},
        converter="pyiqa-hyperiqa",
        licence=_PYIQA_LICENCE,
        page=_PYIQA_PAGE,
        source=_PYIQA_SOURCE.format(arch="hypernet_arch.py"),
        note="pyiqa scores 25 uniform 224x224 crops per image; a whole image or patches go through distill's model",
    ),
    *_sr_rows(),
    ZooEntry(
        name="matconvnet_vggm",
        title="VGG-M (Chatfield et al. 2014), ImageNet, MatConvNet",
        file="imagenet-vgg-m.mat",
        url=_VLFEAT + "imagenet-vgg-m.mat",
        model="vgg_m",
        args={"num_classes": 1000, "width": 1.0, "fc_dim": 4096, "pool": 6, "normalization": "matconvnet"},
        converter="matconvnet",
        licence="MatConvNet pretrained models (see the page's terms)",
        page="https://www.vlfeat.org/matconvnet/pretrained/",
        source="MatConvNet's pretrained-models page (models/imagenet-vgg-m.mat), the file CQD's MATLAB code loads",
    ),
    ZooEntry(
        name="matconvnet_vgg16",
        title="VGG-16 (Simonyan & Zisserman 2015), ImageNet, MatConvNet's imagenet-vgg-verydeep-16",
        file="imagenet-vgg-verydeep-16.mat",
        url=_VLFEAT + "imagenet-vgg-verydeep-16.mat",
        model="vgg16",
        args={"num_classes": 1000, "width": 1.0, "fc_dim": 4096, "pool": 7, "normalization": "matconvnet"},
        converter="matconvnet",
        licence="MatConvNet pretrained models (see the page's terms)",
        page="https://www.vlfeat.org/matconvnet/pretrained/",
        source="MatConvNet's pretrained-models page (models/imagenet-vgg-verydeep-16.mat)",
    ),
]

#: name → row: the one table ``zoo:NAME``, ``distill weights`` and ``distill eval`` read
ZOO: dict[str, ZooEntry] = {row.name: row for row in _ROWS}


# ------------------------------------------------------------------------------------------------ lookups
def zoo_entry(name: str) -> ZooEntry:
    """The row ``name`` (``zoo:`` prefix allowed); an unknown name is one line with the closest names."""
    key = name.removeprefix(ZOO_PREFIX)
    if key in ZOO:
        return ZOO[key]
    close = difflib.get_close_matches(key, ZOO, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise CheckpointError(f"zoo:{key}: no such published model; {hint}`distill weights list` shows all {len(ZOO)}")


def cache_dir() -> Path:
    """Where downloads live: torch hub's ``checkpoints`` folder (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def converted_path(entry: ZooEntry | str) -> Path:
    """Where the converted model file of a row lives: ``checkpoints/distill/NAME.pt`` in the hub cache."""
    name = entry.name if isinstance(entry, ZooEntry) else zoo_entry(entry).name
    return cache_dir() / "distill" / f"{name}.pt"


def _record_path() -> Path:
    return cache_dir() / RECORD


def _read_record() -> dict[str, Any]:
    try:
        data = json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(entry: ZooEntry, sha: str, size: int, origin: str) -> None:
    record = _read_record()
    record[entry.file] = {"zoo": entry.name, "sha256": sha, "size": size, "origin": origin}
    path = _record_path()
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------------ resolve
def resolve_zoo(name: str, *, url: str | None = None, file: str | Path | None = None, force: bool = False) -> Path:
    """The converted, self-describing model file of zoo row ``name``: download (or take ``file``), check, convert.

    ``url``: a mirror (a file URL, or a base ending in ``/`` that serves the published file name); ``file``: a copy
    you already have (checked like a download); ``force``: download and convert again (a recorded sha256 must still
    match). Converted once: a later call returns the cached file at once.
    """
    entry = zoo_entry(name)
    out = converted_path(entry)
    if out.is_file() and not force and file is None:
        return out
    src, sha = _obtain(entry, url, file, force)
    from distill.models.convert import convert_state, write_model_file

    try:
        converted = convert_state(entry.converter, src, entry.args)
    except CheckpointError as err:
        raise CheckpointError(f"zoo:{entry.name}: {err}") from None
    _check_spec(entry, converted.model, converted.args, src)
    write_model_file(converted, out, {"zoo": entry.name, "format": entry.converter, "file": entry.file, "sha256": sha,
                                      "url": entry.url, "page": entry.page, "licence": entry.licence})  # fmt: skip
    return out


def _check_spec(entry: ZooEntry, model: str, args: dict[str, Any], src: Path) -> None:
    """The file must be the architecture the row says (a wrong file under the right name is refused)."""
    differ = {k: (args.get(k), v) for k, v in entry.args.items() if k in args and args[k] != v}
    if model != entry.model or differ:
        got = f"{model}({', '.join(f'{k}={a!r}' for k, (a, _) in differ.items())})" if differ else model
        raise CheckpointError(
            f"{src}: reads as {got}, but zoo:{entry.name} is {entry.model} with {entry.args}; is it {entry.file}?"
        )


def _expected(entry: ZooEntry) -> tuple[int | None, str | None, str]:
    """(size, full sha256, where the sha256 comes from): the table's, else the one recorded at first download."""
    if entry.sha256:
        return entry.size, entry.sha256, entry.hash_source or "the zoo table"
    rec = _read_record().get(entry.file)
    if isinstance(rec, dict) and rec.get("sha256"):
        return rec.get("size") or entry.size, str(rec["sha256"]), f"recorded at the first download in {_record_path()}"
    return entry.size, None, ""


def _check_file(entry: ZooEntry, path: Path, what: str) -> str:
    """Verify ``path`` (size, sha256 or the name's hash prefix); return its sha256."""
    from distill.data.fetch.download import Expected, verify

    size, sha256, source = _expected(entry)
    try:
        sha = verify(path, Expected(size=size, sha256=sha256, source=source), what)
    except DataError as err:
        raise CheckpointError(str(err)) from None
    prefix = entry.hash_prefix
    if prefix and not sha.startswith(prefix):
        raise CheckpointError(
            f"{what}: sha256 {sha[:16]}… does not start with {prefix}, the hash in its published name"
        )
    return sha


def _obtain(entry: ZooEntry, url: str | None, file: str | Path | None, force: bool) -> tuple[Path, str]:
    """The checked source file of ``entry`` and its sha256: ``file``, the cached download, or a new download."""
    if file is not None:
        path = Path(file).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file (--file of zoo:{entry.name}, published as {entry.file})")
        sha = _check_file(entry, path, f"{path} (--file for zoo:{entry.name})")
        _write_record(entry, sha, path.stat().st_size, str(path))
        return path, sha
    target = cache_dir() / entry.file
    if target.is_file() and not force:
        return target, _check_file(entry, target, f"{target} (cached zoo:{entry.name})")
    from distill.data.fetch.sources import MIRROR_ENV

    mirror = os.environ.get(MIRROR_ENV) or None
    link = (url + entry.file if url.endswith("/") else url) if url else (
        mirror.rstrip("/") + "/" + entry.file if mirror else entry.url
    )  # fmt: skip
    if link is None:
        raise CheckpointError(
            f"zoo:{entry.name}: {entry.file} is only on an interactive page: open {entry.interactive_page}, download "
            f"{entry.file}, then run `distill weights fetch {entry.name} --file PATH`"
        )
    sha = _download(entry, link, target)
    _write_record(entry, sha, target.stat().st_size, link)
    return target, sha


def _download(entry: ZooEntry, link: str, target: Path) -> str:
    """Download with ``distill data fetch``'s downloader; a corrupt or cut transfer is refused and tried again."""
    from distill.data.fetch.download import Expected, download

    size, sha256, source = _expected(entry)
    mirror = f" (another host: --url {entry.mirrors[0]})" if entry.mirrors and link == entry.url else ""
    hint = (
        f"Put {entry.file} in {target.parent}/ (or pass --file PATH, or --url MIRROR to `distill weights fetch "
        f"{entry.name}`){mirror}"
    )
    last = ""
    for _ in range(RETRIES):
        try:
            sha = download(link, target, Expected(size=size, sha256=sha256, source=source), hint)
        except DataError as err:
            last = str(err)
            if last.startswith("cannot download") or " serves " in last:  # unreachable host / wrong file: no retry
                raise DataError(last) from None
            print(f"{entry.file}: {last.split(';')[0]}; trying again")
            continue
        prefix = entry.hash_prefix
        if prefix and not sha.startswith(prefix):
            target.unlink(missing_ok=True)
            last = (f"{entry.file} downloaded from {link}: sha256 {sha[:16]}… does not start with {prefix}, the "
                    "hash in its published name")  # fmt: skip
            print(f"{last}; deleted, trying again")
            continue
        return sha
    raise DataError(f"{last} (after {RETRIES} tries). {hint}")


def describe(entry: ZooEntry) -> str:
    """One line of ``distill weights list``."""
    where = "downloads" if entry.url else "interactive page: --file"
    cached = " [converted]" if converted_path(entry).is_file() else ""
    return f"{entry.name:<25} {entry.model:<8} {where:<25} {entry.title}{cached}"
