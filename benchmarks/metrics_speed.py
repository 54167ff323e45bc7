"""Image-metric throughput: distill's batched PSNR/SSIM versus basicsr's and scikit-image's, at equal results.

What is measured
----------------
``--images`` pairs of RGB images (crops of scikit-image's bundled photographs and a noisy, blurred copy of each,
``--size`` square, fixed seed) are scored three ways with the SR convention of the MiPKD recipes
(``crop_border = --crop``, luma Y of ITU-R BT.601, 8-bit range):

* **distill** — :func:`distill.metrics.psnr` / :func:`~distill.metrics.ssim` on the whole batch at once
  (float64, one call; on the CPU the Gaussian windows of SSIM are scipy.ndimage C filters);
* **basicsr** — ``basicsr.metrics.calculate_psnr`` / ``calculate_ssim`` image by image (their HWC BGR [0, 255]
  convention; ``test_y_channel=True``);
* **scikit-image** — ``peak_signal_noise_ratio`` / ``structural_similarity`` image by image on the same cropped Y
  planes (Gaussian window σ = 1.5, population covariance, ``data_range=255``: BasicSR's SSIM definition).

Each round times every implementation once, in turn, scoring all images (so a slower machine slows all alike);
the script prints images/s (median over ``--rounds``), the median and min–max of the per-round speed-up of distill
over each reference and the largest absolute difference between distill's values and each
reference's (the speed comparison is only made at equal results; a difference above ``1e-6`` dB / SSIM is an error).

Run ``python -m benchmarks.metrics_speed`` (defaults: 16 images of 256², crop 4, 5 rounds, 1 thread) or ``--quick``.
The machine (CPU model, load) is printed and saved with the numbers: a speed-up holds for the CPU that measured it.
``--from A.json B.json --readme`` writes each saved machine's table and the range over them.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from skimage import color
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks._common import (
    add_result_arguments,
    machine_info,
    machine_label,
    median_seconds,
    publish,
    saved_result,
)
from distill._compat import import_basicsr
from distill.data.synthetic_common import reference_crops
from distill.metrics import psnr, ssim

TOLERANCE = 1e-6


def image_pairs(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` reference crops in [0, 1] and a blurred, noisy copy of each, as ``[n, 3, size, size]`` float64."""
    crops, _ = reference_crops(n, (size, size), seed, tag="metrics-speed")
    refs = torch.stack([torch.from_numpy(c).permute(2, 0, 1) for c in crops]).double() / 255.0
    g = torch.Generator().manual_seed(seed)
    blurred = torch.nn.functional.avg_pool2d(refs, 3, stride=1, padding=1, count_include_pad=False)
    return refs, (blurred + 0.03 * torch.randn(refs.shape, generator=g, dtype=refs.dtype)).clamp(0, 1)


def _skimage_y(x: torch.Tensor, crop: int) -> np.ndarray:
    y = color.rgb2ycbcr(x.permute(1, 2, 0).numpy())[..., 0]
    return y[crop:-crop, crop:-crop] if crop else y


def scorers(crop: int) -> dict[str, dict[str, Callable[[torch.Tensor, torch.Tensor], np.ndarray]]]:
    """metric → implementation → ``f(pred, target) -> per-image values``."""
    import_basicsr()
    from basicsr.metrics import calculate_psnr, calculate_ssim

    def bgr(t: torch.Tensor) -> np.ndarray:
        return t.permute(1, 2, 0).numpy()[..., ::-1] * 255.0

    def per_image(fn: Callable[..., float], prep: Callable[[torch.Tensor], Any], **kw: Any) -> Callable[..., Any]:
        return lambda p, t: np.array([fn(prep(a), prep(b), **kw) for a, b in zip(p, t)])

    sk_ssim = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
    return {
        "psnr": {
            "distill": lambda p, t: psnr(p, t, crop_border=crop, test_y_channel=True).numpy(),
            "basicsr": per_image(calculate_psnr, bgr, crop_border=crop, test_y_channel=True),
            "scikit-image": per_image(peak_signal_noise_ratio, lambda x: _skimage_y(x, crop), data_range=255),
        },
        "ssim": {
            "distill": lambda p, t: ssim(p, t, crop_border=crop, test_y_channel=True).numpy(),
            "basicsr": per_image(calculate_ssim, bgr, crop_border=crop, test_y_channel=True),
            "scikit-image": per_image(structural_similarity, lambda x: _skimage_y(x, crop), **sk_ssim),
        },
    }


def benchmark(images: int, size: int, crop: int, rounds: int) -> dict[str, Any]:
    """Every implementation timed once per round, in turn (after one untimed call that also checks its values)."""
    pred_target = image_pairs(images, size)
    pred, target = pred_target[1], pred_target[0]
    results: dict[str, Any] = {}
    for metric, impls in scorers(crop).items():
        ours = impls["distill"](pred, target)
        diffs = {}
        for name, fn in impls.items():
            diffs[name] = float(np.max(np.abs(fn(pred, target) - ours)))
            if diffs[name] > TOLERANCE:
                raise AssertionError(f"{metric}: {name} differs from distill by {diffs[name]:.2e} (> {TOLERANCE})")
        times: dict[str, list[float]] = {name: [] for name in impls}
        for _ in range(rounds):
            for name, fn in impls.items():
                times[name].append(median_seconds(lambda fn=fn: fn(pred, target), 1, warmup=0))
        row: dict[str, Any] = {}
        for name in impls:
            speedups = [t / d for t, d in zip(times[name], times["distill"])]
            row[name] = {
                "images_per_s": images / statistics.median(times[name]),
                "max_abs_diff_to_distill": diffs[name],
                "distill_speedup": statistics.median(speedups),
                "distill_speedup_min": min(speedups),
                "distill_speedup_max": max(speedups),
            }
        results[metric] = row
    return results


def report(results: dict[str, Any], cfg: dict[str, Any]) -> str:
    m = cfg["machine"]
    lines = [
        f"PSNR/SSIM throughput, {cfg['images']} images of {cfg['size']}², Y channel, crop_border {cfg['crop']}, "
        f"{cfg['rounds']} interleaved rounds | {machine_label(m)}, {m['threads']} threads"
        + (f", load {m['load_1min']:g}" if m.get("load_1min") is not None else ""),
        f"{'metric':6}  {'implementation':14}  {'images/s':>10}  {'distill speed-up [min–max]':>26}  "
        f"{'max |diff|':>10}",
    ]
    for metric, row in results.items():
        for name, r in row.items():
            spread = f"{r['distill_speedup']:.2f} [{r['distill_speedup_min']:.2f}–{r['distill_speedup_max']:.2f}]"
            lines.append(
                f"{metric:6}  {name:14}  {r['images_per_s']:10.1f}  {spread:>26}  {r['max_abs_diff_to_distill']:10.1e}"
            )
    return "\n".join(lines)


def over_machines(saved: Sequence[dict[str, Any]]) -> str:
    """Each saved run's table (one per CPU), then the speed-ups as a range over the machines: a speed-up measured
    on one CPU holds for that CPU."""
    parts = [report(out["results"], out["config"]) for out in saved]
    if len(saved) > 1:
        lines = [f"distill's speed-up, median per machine, range over the {len(saved)} machines above:"]
        for metric, row in saved[0]["results"].items():
            for name in row:
                if name == "distill":
                    continue
                values = [out["results"][metric][name]["distill_speedup"] for out in saved]
                lines.append(f"  {metric} vs {name}: {min(values):.2f}–{max(values):.2f}×")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (median and min–max)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="4 images of 64², 2 rounds")
    add_result_arguments(parser, several=True)
    args = parser.parse_args(argv)
    saved = saved_result(parser, args)
    if saved is not None:
        publish(saved, args, "metrics-speed", over_machines)
        return saved
    if args.quick:
        args.images, args.size, args.rounds = 4, 64, 2
    torch.set_num_threads(args.threads)
    cfg = {"images": args.images, "size": args.size, "crop": args.crop, "rounds": args.rounds}
    cfg["machine"] = machine_info()
    results = benchmark(args.images, args.size, args.crop, args.rounds)
    out = {"config": cfg, "results": results}
    publish(out, args, "metrics-speed", _report)
    return out


def _report(out: dict[str, Any]) -> str:
    return report(out["results"], out["config"])


if __name__ == "__main__":
    main()
