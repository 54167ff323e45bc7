"""The headline path as a user runs it: the "MRKD Table 1" commands of docs/reproduce.md, in order, on a clean folder.

A local HTTP server on 127.0.0.1 stands in for the official hosts (``DISTILL_FETCH_MIRROR``: the data archives and
the published SCNN of ``distill weights fetch dbcnn_scnn``) and for download.pytorch.org (the VGG ImageNet weights of
``pretrained: imagenet``); it serves miniature archives in the official layouts (TID2013 and Waterloo as RAR, VOC 2012
as tar), built from the synthetic writers, and an SCNN file in DBCNN-PyTorch's / pyiqa's layout. The fetch commands
are run without ROOT, so the recipes must find the data at the default roots the fetch command prints, and the
weights where ``zoo:dbcnn_scnn`` looks for them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from distill._compat import import_torchvision
from distill.build import build_dataset
from distill.cli import main
from distill.data.fetch import SOURCES
from distill.models.iqa.dbcnn import DBCNN
from distill.models.zoo import ZOO, converted_path
from distill.recipe.check import load_recipe
from distill.recipe.files import load_raw
from distill.registry import WRITERS
from tests.fetch_server import MirrorServer, rar_bytes, serve_mirror, tar_gz_bytes, tree_files
from tests.test_convert import _randomize, _SCNNRef

import_torchvision()
from torchvision.models import VGG11_Weights, vgg11  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def readme_mrkd_commands() -> list[list[str]]:
    """The argument lists of the "MRKD Table 1" bash block of docs/reproduce.md (``distill`` dropped, comments
    stripped)."""
    section = (REPO / "docs" / "reproduce.md").read_text().split("## MRKD Table 1", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "distill", line
            commands.append(argv[1:])
    return commands


def small(argv: list[str]) -> list[str]:
    """``argv`` of a README `distill run` at toy size: one seed, VGG11 branches, tiny crops and one epoch."""
    recipe, rest = argv[1], argv[2:]
    if "--seeds" in rest:
        i = rest.index("--seeds")
        rest = [*rest[:i], "--seeds", "0", *rest[i + 2 :]]
    sets = ["train.epochs=1", "train.num_workers=0"]
    if recipe.endswith("scnn_pretrain.yaml"):
        sets += ["train.batch_size=8", "train.eval_every=1"]
        for split in ("train", "eval.test"):
            sets += [f"data.{split}.args.resize=40", f"data.{split}.args.size=32", f"data.{split}.args.length=32"]
    else:
        sets += [f"models.{m}.args.backbone=vgg11" for m in load_raw(RECIPES / Path(recipe).name)[0]["models"]]
        sets += ["train.batch_size=4", "data.train.args.train_fraction=0.6", "data.eval.test.args.train_fraction=0.6"]
    return ["run", str(RECIPES / Path(recipe).name), *rest, *[a for s in sets for a in ("--set", s)]]


@pytest.fixture(scope="module")
def miniatures(tmp_path_factory) -> dict[str, bytes]:
    """The three archives under their official names, in their official layouts, from the synthetic writers."""
    work = tmp_path_factory.mktemp("miniatures")
    tid = WRITERS.build(
        "tid2013", out=str(work / "tid"), n_refs=5, size=[48, 64], distortions=[1, 8], levels=2
    )  # 5 refs x 2 types x 2 levels = 20 images
    waterloo = WRITERS.build("waterloo", out=str(work / "waterloo"), n_images=6)
    voc = WRITERS.build("voc2012", out=str(work / "voc"), n_images=6)
    return {
        "tid2013.rar": rar_bytes(tree_files(Path(tid), "")),  # the RAR holds the dataset's folders at its top
        "exploration_database_and_code.rar": rar_bytes(tree_files(Path(waterloo), "exploration_database_and_code/")),
        "VOCtrainval_11-May-2012.tar": tar_gz_bytes(tree_files(Path(voc), ""), mode="w"),  # VOCdevkit/VOC2012/…
    }


@pytest.fixture(scope="module")
def scnn_file() -> bytes:
    """An SCNN in the published layout (DataParallel keys, as DBCNN-PyTorch's scnn.pkl and pyiqa's file)."""
    buf = io.BytesIO()
    torch.save({f"module.{k}": v for k, v in _randomize(_SCNNRef(), 0).state_dict().items()}, buf)
    return buf.getvalue()


@pytest.fixture
def mirror(monkeypatch, tmp_path, miniatures, scnn_file) -> Iterator[MirrorServer]:
    """A clean working folder and torch hub cache with the mirror serving the miniatures (and no real size for VOC's
    2 GB tar) and the SCNN file under the zoo row's name (the row's size and sha256 are the miniature's)."""
    pytest.importorskip("rarfile")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    voc = SOURCES["voc2012"]  # the table holds the official tar's size; the miniature is checked by its sha256
    monkeypatch.setitem(SOURCES, "voc2012", replace(voc, archives=(replace(voc.archives[0], size=None),)))
    sha = hashlib.sha256(scnn_file).hexdigest()
    row = replace(ZOO["dbcnn_scnn"], file=f"DBCNN_scnn-{sha[:8]}.pth", size=len(scnn_file), sha256=sha)
    monkeypatch.setitem(ZOO, "dbcnn_scnn", row)
    for srv in serve_mirror(monkeypatch):
        srv.files.update(miniatures)
        srv.files[row.file] = scnn_file
        yield srv


def fetch_readme_data(capsys) -> dict[str, str]:
    """Run README's fetch commands (data and weights); returns {dataset: the root the command printed}."""
    roots = {}
    for argv in readme_mrkd_commands():
        if argv[:2] == ["weights", "fetch"]:
            assert main(argv) == 0, argv
            assert f"zoo:{argv[2]}: " in capsys.readouterr().out
        if argv[:2] == ["data", "fetch"]:
            assert main(argv) == 0, argv
            out = capsys.readouterr().out
            found = re.search(rf"^{argv[2]}: .* items in (\S+)$", out, re.MULTILINE)
            assert found, out
            roots[argv[2]] = found[1]
    return roots


def test_readme_block_fetches_the_data_its_recipes_read(mirror, capsys) -> None:
    """Fast half: the fetch commands, then every README recipe opens its data at the printed roots as real data."""
    assert fetch_readme_data(capsys) == {"tid2013": "data/tid2013"}
    assert ["weights", "fetch", "dbcnn_scnn"] in readme_mrkd_commands()
    assert converted_path("dbcnn_scnn").is_file()  # where the recipes' zoo:dbcnn_scnn finds it
    runs = [argv for argv in readme_mrkd_commands() if argv[0] == "run"]
    assert [Path(a[1]).name for a in runs] == ["mrkd_baseline_tid.yaml", "mrkd_urkd_tid.yaml", "mrkd_tid.yaml"]
    for argv in runs:
        recipe, _ = load_recipe(RECIPES / Path(argv[1]).name)
        assert {spec.args["scnn_pretrained"] for spec in recipe.models.values()} == {"zoo:dbcnn_scnn"}
        for spec in (recipe.data.train, *recipe.data.eval.values()):
            ds = build_dataset(spec, recipe.data)
            assert len(ds) > 0 and not getattr(ds, "is_synthetic", False), (argv, spec.name)


def recipe_roots() -> Iterator[tuple[str, str, str]]:
    """(recipe, reader, root) of every real-data set the recipes read (synthetic-set recipes left out)."""
    for path in sorted(RECIPES.glob("*.yaml")):
        data = load_raw(path)[0].get("data") or {}
        if data.get("synthetic"):
            continue
        for spec in (data.get("train"), *(data.get("eval") or {}).values()):
            if not isinstance(spec, dict):
                continue
            args = spec.get("args") or {}
            if spec.get("name") == "dbcnn_distortions":
                yield from ((path.name, r, args[r]) for r in ("waterloo", "voc2012") if args.get(r))
            elif args.get("root", data.get("root")):
                yield path.name, spec.get("name"), args.get("root", data.get("root"))


def test_fetch_default_roots_are_the_recipes_roots() -> None:
    """One truth: every recipe reads a fetchable dataset at `distill data fetch`'s default root, and every default
    root is read by some recipe."""
    defaults: dict[str, set[str]] = {}
    for source in SOURCES.values():
        defaults.setdefault(source.reader, set()).add(source.default_root)
    used = set()
    for recipe, reader, root in recipe_roots():
        if reader in defaults:
            assert root in defaults[reader], f"{recipe}: {reader} at {root}, fetch puts it in {defaults[reader]}"
            used.add(root)
    assert used == {s.default_root for s in SOURCES.values()}


@pytest.mark.slow  # ~30 s on the shared 2-core machine: three MRKD runs at toy size
def test_readme_mrkd_commands_run_in_order_on_a_clean_folder(mirror, tmp_path, monkeypatch, capsys) -> None:
    # the VGG11 ImageNet weights (VGG16's at toy size), served like download.pytorch.org into a fresh hub cache
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save({k: v for k, v in vgg11(weights=None).state_dict().items() if k.startswith("features.")}, buf)
    name = f"vgg11-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.pth"
    mirror.files[name] = buf.getvalue()
    monkeypatch.setattr(VGG11_Weights.IMAGENET1K_V1.value, "url", mirror.base + name)

    # 1. README's fetch commands: the data at its default roots, the published SCNN into the hub cache
    fetch_readme_data(capsys)
    mrkd_runs = [argv for argv in readme_mrkd_commands() if argv[0] == "run"]

    # 2. the three Table 1 rows, each starting from the published SCNN
    for argv in mrkd_runs:
        assert main(small(argv)) == 0, argv
    scnn = torch.load(converted_path("dbcnn_scnn"), weights_only=True)
    assert scnn["model"] == {"name": "scnn", "args": {"num_classes": 39}}
    assert (tmp_path / "torch_home" / "hub" / "checkpoints" / name).is_file()
    for argv in mrkd_runs:
        recipe, _ = load_recipe(RECIPES / Path(argv[1]).name)
        out = Path(recipe.output.dir.format(name=recipe.name))
        results = json.loads((out / "seed0" / "results.json").read_text())
        assert set(results["results"]["test"]) == set(recipe.models), argv
    start = DBCNN(backbone="vgg11", scnn_pretrained="zoo:dbcnn_scnn")  # what the MRKD runs started from
    for key, value in start.scnn.state_dict().items():
        assert torch.equal(value, scnn["state_dict"][key]), key
