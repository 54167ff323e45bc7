"""Where each dataset's archives are published: the one table `distill data fetch` reads.

Every URL below was checked against the dataset's own page (or, for the SR benchmark sets, the EDSR authors'
bundle that BasicSR's dataset guide points to). ``size`` is filled in only where the byte count is known
(the host's Content-Length, reported by several independent downloads); ``md5``/``sha256`` only where the
maintainers publish one. Everything else is checked against the sha256 recorded at the first fetch
(``ROOT/.distill_fetch.json``). ``url=None`` means no stable direct URL exists: the user downloads the archive
by hand and passes ``--archive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: environment variable naming a base URL that replaces every host (``BASE/<file>``): mirrors and tests
MIRROR_ENV = "DISTILL_FETCH_MIRROR"


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a dataset."""

    file: str  # the file name, as published
    url: str | None  # official direct URL; None: no stable URL, download by hand
    size: int | None = None  # bytes, where known
    md5: str | None = None  # published by the maintainers, else None
    sha256: str | None = None  # published by the maintainers, else None
    checksum_source: str = ""  # where the published checksum is shown
    tags: tuple[str, ...] = ()  # selection keys, e.g. ("x4",) for one DIV2K scale


@dataclass(frozen=True)
class Source:
    """A fetchable dataset: its archives, where its root lies inside them and how its reader opens it."""

    name: str
    title: str
    page: str  # the dataset's own page (licence, terms, manual download)
    archives: tuple[Archive, ...]
    default_root: str
    markers: tuple[str, ...]  # entries the dataset root holds (case-insensitive)
    reader: str  # DATASETS name of the reader that opens the root
    views: tuple[tuple[str, dict[str, Any]], ...] = (("all", {}),)  # (label, reader args) to count
    root_name: str | None = None  # the root folder's own name, where markers alone are ambiguous
    note: str = ""
    scale_tags: bool = False  # archives tagged x2/x3/x4 (``--scale`` selects among them)
    optional_views: bool = False  # a view the reader cannot open is left out (one at least must open)


_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
# Sizes: TensorFlow Datasets' recorded Content-Length of each official file (datasets/div2k/checksums.tsv).
_DIV2K_SIZES = {
    "DIV2K_train_HR.zip": 3530603713,
    "DIV2K_valid_HR.zip": 448993893,
    "DIV2K_train_LR_bicubic_X2.zip": 925390592,
    "DIV2K_train_LR_bicubic_X3.zip": 427847282,
    "DIV2K_train_LR_bicubic_X4.zip": 246914039,
    "DIV2K_valid_LR_bicubic_X2.zip": 117763600,
    "DIV2K_valid_LR_bicubic_X3.zip": 54513392,
    "DIV2K_valid_LR_bicubic_X4.zip": 31505881,
}


def _div2k(file: str, *tags: str) -> Archive:
    return Archive(file, _DIV2K + file, size=_DIV2K_SIZES[file], tags=tags)


# EDSR authors' bundle of Set5, Set14, B100 and Urban100 (HR/ + LR_bicubic/X{2,3,4}/), ~250 MB; no checksum
# published. BasicSR's docs/DatasetPreparation.md lists only drive folders for these sets.
_BENCHMARK = Archive("benchmark.tar", "https://cv.snu.ac.kr/research/EDSR/benchmark.tar")
_BENCHMARK_NOTE = "EDSR's benchmark bundle (HR + MATLAB-bicubic LR x2/x3/x4); the archive is shared by the four sets"
_SR_VIEWS = tuple((f"x{s}", {"scale": s, "lr": "files", "cache": False}) for s in (2, 3, 4))


def _benchmark(name: str, folder: str, title: str) -> Source:
    return Source(
        name=name,
        title=title,
        page="https://github.com/sanghyun-son/EDSR-PyTorch",
        archives=(_BENCHMARK,),
        default_root=f"data/benchmark/{folder}",
        markers=("HR",),
        root_name=folder,
        reader="sr_benchmark",
        views=_SR_VIEWS,
        optional_views=True,  # a set without one scale's LR folder still counts the others
        note=_BENCHMARK_NOTE,
    )


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="kadid10k",
            title="KADID-10k",
            page="https://database.mmsp-kn.de/kadid-10k-database.html",
            archives=(Archive("kadid10k.zip", "https://datasets.vqa.mmsp-kn.de/archives/kadid10k.zip"),),
            default_root="data/kadid10k",
            markers=("images", "dmos.csv"),
            reader="kadid10k",
            views=(("all", {"split": "all"}),),
            note="~3 GB zip",
        ),
        Source(
            name="tid2013",
            title="TID2013",
            page="http://www.ponomarenko.info/tid2013.htm",
            archives=(Archive("tid2013.rar", "http://www.ponomarenko.info/tid2013/tid2013.rar"),),
            default_root="data/tid2013",
            markers=("distorted_images", "reference_images", "mos_with_names.txt"),
            reader="tid2013",
            views=(("all", {"split": "all"}),),
            note='~0.9 GB RAR: needs `pip install -e ".[archives]"` and unrar, unar or bsdtar',
        ),
        Source(
            name="livec",
            title="LIVE In the Wild Image Quality Challenge (LIVEC)",
            page="https://live.ece.utexas.edu/research/ChallengeDB/index.html",
            archives=(Archive("ChallengeDB_release.zip", None),),
            default_root="data/livec",
            markers=("Images", "Data"),
            reader="livec",
            views=(("all", {"split": "all"}),),
            note="served through a Box share link behind the page, no stable direct URL: download by hand",
        ),
        Source(
            name="cub200",
            title="CUB-200-2011",
            page="https://www.vision.caltech.edu/datasets/cub_200_2011/",
            archives=(
                Archive(
                    "CUB_200_2011.tgz",
                    "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                    size=1150585339,
                    md5="97eceeb196236b17998738112f37df78",
                    checksum_source="the CaltechDATA record 65de6-vp158",
                ),
            ),
            default_root="data/CUB_200_2011",
            markers=("images", "images.txt", "train_test_split.txt"),
            reader="cub200",
            views=(("train", {"split": "train"}), ("test", {"split": "test"})),
            note="~1.1 GB tgz",
        ),
        Source(
            name="div2k",
            title="DIV2K (HR + bicubic LR)",
            page=_DIV2K,
            archives=(
                _div2k("DIV2K_train_HR.zip"),
                _div2k("DIV2K_valid_HR.zip"),
                *(
                    _div2k(f"DIV2K_{split}_LR_bicubic_X{s}.zip", f"x{s}")
                    for split in ("train", "valid")
                    for s in (2, 3, 4)
                ),
            ),
            default_root="data/DIV2K",
            markers=("DIV2K_train_HR",),
            reader="div2k",
            views=tuple(
                (f"{split} x{s}", {"split": split, "scale": s, "lr": "files"})
                for split in ("train", "valid")
                for s in (2, 3, 4)
            ),
            note="~6.3 GB for HR + x2/x3/x4; `--scale 4` fetches the x4 LR archives only",
            scale_tags=True,
        ),
        _benchmark("set5", "Set5", "Set5"),
        _benchmark("set14", "Set14", "Set14"),
        _benchmark("b100", "B100", "B100 (BSD100)"),
        _benchmark("urban100", "Urban100", "Urban100"),
        Source(
            name="waterloo",
            title="Waterloo Exploration Database (4,744 pristine images)",
            page="https://ece.uwaterloo.ca/~k29ma/exploration/",
            archives=(
                Archive(
                    "exploration_database_and_code.rar",
                    "http://ivc.uwaterloo.ca/database/WaterlooExploration/exploration_database_and_code.rar",
                ),
            ),
            default_root="data/waterloo",
            markers=("pristine_images",),
            reader="waterloo",
            note='RAR: needs `pip install -e ".[archives]"` and unrar, unar or bsdtar',
        ),
        Source(
            name="voc2012",
            title="PASCAL VOC 2012 trainval images",
            page="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
            archives=(
                Archive(
                    "VOCtrainval_11-May-2012.tar",
                    "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                    size=1999639040,
                ),
            ),
            default_root="data/voc2012",
            markers=("JPEGImages",),
            reader="voc2012",
            note="~2 GB tar; the root is VOCdevkit/VOC2012",
        ),
    )
}


def selected_archives(source: Source, scales: list[int] | None) -> tuple[Archive, ...]:
    """The archives to fetch: all, or for ``--scale`` the untagged ones plus those of the chosen scales."""
    if not scales:
        return source.archives
    wanted = {f"x{s}" for s in scales}
    return tuple(a for a in source.archives if not a.tags or wanted & set(a.tags))


def archive_url(archive: Archive, url: str | None = None, mirror: str | None = None) -> str | None:
    """The URL to download ``archive`` from: ``--url`` (a file URL, or a base ending in ``/``), the mirror, or the
    official URL."""
    if url:
        return url + archive.file if url.endswith("/") else url
    if mirror:
        return mirror.rstrip("/") + "/" + archive.file
    return archive.url


def default_root(source: Source) -> Path:
    return Path(source.default_root)
