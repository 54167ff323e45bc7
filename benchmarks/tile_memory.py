"""Peak memory of SR inference on a large image: whole image against overlapping tiles (``--tile``), one run.

What is measured
----------------
The SR model (default: the MiPKD SwinIR-M ×4 teacher shape of ``recipes/_parts/sr_swinir.yaml``, random weights:
memory does not depend on them) super-resolves one random LR image of ``--lr H,W`` through
:func:`distill.models.sr.super_resolve`, the path of ``distill eval``/``predict``/every SR evaluation, once whole and
once per ``--tile``/``--tile-overlap`` pair. Each pass runs in a fresh child process:

* CPU: the peak resident set size (``ru_maxrss``) minus the resident size just before the pass (model and input
  already built);
* CUDA (``--device cuda``): ``torch.cuda.max_memory_allocated`` minus the memory allocated before the pass.

Beside each peak: the wall time of the pass and how far the tiled output is from the whole-image one (max |diff| and
PSNR on [0, 1] outputs); with random weights the seam differences are not those of a trained model, they only show
the comparison ran. ``--quick``: a small SwinIR on a 64×64 image (seconds).

``python -m benchmarks.tile_memory [--lr 192,256] [--tiles 64:16,128:32] [--device cpu] [--json F] [--readme]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import add_result_arguments, machine_info, publish, saved_result  # noqa: E402
from distill.run.atomic import write_text  # noqa: E402

MODELS: dict[str, dict[str, Any]] = {
    "swinir_m": {"embed_dim": 180, "depths": [6] * 6, "num_heads": [6] * 6, "window_size": 8, "mlp_ratio": 2.0,
                 "upscale": 4, "img_size": 64, "drop_path_rate": 0.0},
    "swinir_small": {"embed_dim": 24, "depths": [2, 2], "num_heads": [2, 2], "window_size": 8, "mlp_ratio": 2.0,
                     "upscale": 4, "img_size": 32, "drop_path_rate": 0.0},
}  # fmt: skip


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def child(model_name: str, h: int, w: int, tile: int, overlap: int, device: str, out: str) -> None:
    """One pass in this (fresh) process; writes {peak_mib, seconds} to ``out`` and the output beside it."""
    from distill.build import build_model
    from distill.models.sr import super_resolve
    from distill.recipe.config import ComponentSpec

    torch.set_num_threads(torch.get_num_threads())
    torch.manual_seed(0)
    model = build_model(ComponentSpec("swinir", MODELS[model_name])).eval().to(device)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1)).to(device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before = _rss_mib()
    started = time.perf_counter()
    with torch.no_grad():
        y = super_resolve(model, x, tile=tile or None, tile_overlap=overlap)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20 - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before  # Linux: KiB
    torch.save(y.cpu(), out + ".pt")
    write_text(Path(out), json.dumps({"peak_mib": peak, "seconds": seconds}))


def measure(model: str, lr: tuple[int, int], tiles: list[tuple[int, int]], device: str) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tile_memory_") as tmp:
        whole = None
        for tile, overlap in [(0, 0), *tiles]:
            out = str(Path(tmp) / f"t{tile}_{overlap}.json")
            cmd = [sys.executable, "-m", "benchmarks.tile_memory", "--child", model, str(lr[0]), str(lr[1]), str(tile),
                   str(overlap), device, out]  # fmt: skip
            subprocess.run(cmd, check=True, cwd=ROOT)
            row = {"tile": tile or None, "overlap": overlap if tile else None, **json.loads(Path(out).read_text())}
            y = torch.load(out + ".pt", weights_only=True)
            if whole is None:
                whole = y
            else:
                diff = (y - whole).abs()
                mse = float(((y.clamp(0, 1) - whole.clamp(0, 1)) ** 2).mean())
                row["max_abs_diff"] = float(diff.max())
                row["psnr_vs_whole_db"] = 10 * torch.log10(torch.tensor(1 / mse)).item() if mse > 0 else float("inf")
            rows.append(row)
    return {"model": model, "args": MODELS[model], "lr_hw": list(lr), "device": device, "rows": rows,
            "machine": machine_info(device.split(":")[0])}  # fmt: skip


def report(res: dict[str, Any]) -> str:
    h, w = res["lr_hw"]
    s = res["args"]["upscale"]
    m = res["machine"]
    unit = "CUDA max_memory_allocated" if res["device"].startswith("cuda") else "peak RSS increase"
    where = m.get("gpu") or f"{m['cpu_count']} CPUs, {m['threads']} threads"
    lines = [
        f"{res['model']} x{s} (random weights) on one {h}x{w} LR image -> {h * s}x{w * s}; {unit} of the pass; "
        f"{where}, torch {m['torch']}",
        "",
        "| pass | peak MiB | seconds | max abs diff vs whole | PSNR vs whole (dB) |",
        "|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        name = "whole image" if r["tile"] is None else f"tile {r['tile']}, overlap {r['overlap']}"
        diff = f"{r['max_abs_diff']:.3g}" if "max_abs_diff" in r else "-"
        psnr = f"{r['psnr_vs_whole_db']:.1f}" if "psnr_vs_whole_db" in r else "-"
        lines.append(f"| {name} | {r['peak_mib']:.0f} | {r['seconds']:.1f} | {diff} | {psnr} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        model, h, w, tile, overlap, device, out = argv[1:8]
        child(model, int(h), int(w), int(tile), int(overlap), device, out)
        return None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), help="default swinir_m (--quick: swinir_small)")
    parser.add_argument("--lr", help="H,W of the LR image (default 192,256; --quick 64,64)")
    parser.add_argument("--tiles", help="TILE:OVERLAP pairs (default 64:16,96:32; --quick 32:8)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    add_result_arguments(parser)
    args = parser.parse_args(argv)
    res = saved_result(parser, args)
    if res is None:
        model = args.model or ("swinir_small" if args.quick else "swinir_m")
        try:
            lr = tuple(int(v) for v in (args.lr or ("64,64" if args.quick else "192,256")).split(","))
            tiles = [
                tuple(int(v) for v in p.split(":"))
                for p in (args.tiles or ("32:8" if args.quick else "64:16,96:32")).split(",")
            ]
        except ValueError:
            parser.error("--lr H,W and --tiles TILE:OVERLAP,... take integers")
        if len(lr) != 2 or any(len(t) != 2 for t in tiles):
            parser.error("--lr H,W and --tiles TILE:OVERLAP,...")
        res = measure(model, lr, tiles, args.device)  # type: ignore[arg-type]
    publish(
        res,
        args,
        "tile-memory",
        report,
        markdown=lambda r: report(r) + "\n\nWritten by `python -m benchmarks.tile_memory --readme`.",
    )
    return res


if __name__ == "__main__":
    main()
