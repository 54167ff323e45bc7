"""``distill convert FORMAT FILE [OUT]`` and ``distill weights list|fetch NAME``: published checkpoints as model files.

The command-line side of :mod:`distill.models.convert` and :mod:`distill.models.zoo`; :mod:`distill.cli` only adds
these parsers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from distill.errors import DistillError

__all__ = ["add_convert_parser", "add_weights_parser"]


def _spec(model: str, args: dict[str, Any]) -> str:
    return f"{model} with args {args}"


def _cmd_convert(args: argparse.Namespace) -> int:
    from distill.models.convert import convert_file
    from distill.run.safe_write import check_new_file

    out = Path(args.out) if args.out else Path(args.file).with_name(Path(args.file).stem + "_distill.pt")
    check_new_file(out, "OUT", force=args.force)  # before reading FILE: never over a file this call did not write
    converted = convert_file(args.format, args.file, out, force=args.force)
    print(f"wrote {out}: {_spec(converted.model, converted.args)}")
    for note in converted.notes:
        print(f"note: {note} (set it in the recipe if the file was trained otherwise)")
    print(f"use it as `pretrained: {out}`, or score it with `distill predict {out} IMAGES`")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from distill.models.zoo import ZOO, cache_dir, describe, resolve_zoo, zoo_entry

    if args.action == "list":
        if args.name:
            raise DistillError("distill weights list takes no NAME; `distill weights fetch NAME` downloads one")
        print(f"published models (zoo:NAME; files in {cache_dir()}):")
        for entry in ZOO.values():
            print(f"  {describe(entry)}")
        return 0
    if not args.name:
        raise DistillError(f"distill weights fetch: name a model, e.g. dbcnn_scnn (choose from: {', '.join(ZOO)})")
    entry = zoo_entry(args.name)
    path = resolve_zoo(entry.name, url=args.url, file=args.file, force=args.force)
    import torch

    source = torch.load(path, map_location="cpu", weights_only=True).get("source") or {}
    sha = str(source.get("sha256") or "")
    checked = (
        "sha256 as published" if entry.sha256 else f"hash prefix {entry.hash_prefix} of its name" if entry.hash_prefix
        else "sha256 recorded at the first download"
    )  # fmt: skip
    print(f"zoo:{entry.name}: {entry.file} (sha256 {sha[:12]}…, checked: {checked}) -> {path}")
    print(f"  {_spec(entry.model, entry.args)}; licence: {entry.licence}; {entry.page}")
    key = "scnn_pretrained" if entry.model == "scnn" else "pretrained"  # DBCNN takes an SCNN as scnn_pretrained
    print(f"  use it as `{key}: zoo:{entry.name}` in a recipe, or the file itself with distill eval / predict")
    return 0


def add_convert_parser(sub: Any) -> None:
    from distill.models.convert import FORMATS

    conv = sub.add_parser(
        "convert", help="convert a published checkpoint to distill's model file (what pretrained: and eval take)"
    )
    conv.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help=f"layout of FILE: {', '.join(FORMATS)}")
    conv.add_argument("file", help="the published file, e.g. edsr_x4-4f62e9ef.pt or imagenet-vgg-m.mat")
    conv.add_argument("out", nargs="?", help="model file to write (default: FILE's name + _distill.pt beside it)")
    conv.add_argument("--force", action="store_true", help="replace OUT when it exists")
    conv.set_defaults(fn=_cmd_convert)


def add_weights_parser(sub: Any) -> None:
    weights = sub.add_parser("weights", help="published models by name: list them, or fetch one (zoo:NAME)")
    weights.add_argument("action", choices=["list", "fetch"])
    weights.add_argument("name", nargs="?", help="zoo name, e.g. dbcnn_scnn, edsr_x4, swinir_m_x4")
    weights.add_argument("--url", help="mirror: the file's URL, or a base URL ending in / that serves its name")
    weights.add_argument("--file", help="a copy you downloaded by hand (interactive hosts: Google Drive, Baidu)")
    weights.add_argument("--force", action="store_true", help="download and convert again")
    weights.set_defaults(fn=_cmd_weights, interrupt_hint="re-run the same command to resume the download")
