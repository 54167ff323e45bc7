"""MiPKD paper tables, reproduced by running recipes, printed beside the published numbers.

    python benchmarks/mipkd_tables.py --scale smoke|small|paper [--seeds N] [--tables main,ablation,cost]
                                      [--out DIR] [--data DIR] [--teacher PATH]

Every number comes from ``run_repeats`` over the repository's recipes — the same files a user
runs (``recipes/mipkd_teacher_edsr_x4.yaml``, ``mipkd_edsr_x4.yaml`` and the baselines ``mipkd_{scratch,logitskd,fitnet,
at,fakd}_edsr_x4.yaml``); the benchmark has no training loop of its own.

* ``smoke``: seconds. Tiny synthetic sets, EDSR c8 b2 teacher → c4 b2 student, a few iterations, one seed; proves
  the pipeline, the numbers mean nothing.
* ``small``: minutes on 2 CPU cores (the README states the measured time). Synthetic DIV2K-layout training set and
  synthetic Set5/Set14/B100/Urban100 stand-ins (disjoint photographs), x2; an EDSR c32 b8 teacher trained here
  (one seed, 1000 iterations) → EDSR c16 b4 student (compounded compression), K = 2 stages, 300 iterations,
  LR patches 16 px, 2 seeds per method; the ablation skips the "no auto-encoder loss" row to stay in budget.
* ``paper``: the recipes unchanged (EDSR c256 b32 → c64 b16, x4, 250k iterations, K = 4) on the real DIV2K and
  benchmark sets under ``--data`` (``DIV2K/`` and ``benchmark/{Set5,Set14,B100,Urban100}/``); the teacher is
  ``--teacher PATH`` (e.g. BasicSR's official EDSR-L x4) or is trained first with the teacher recipe. GPU work.

Tables: ``main`` (teacher, scratch, logits KD, FitNet, AT, FAKD, MiPKD × Set5/Set14/B100/Urban100, PSNR/SSIM on Y
with crop_border = scale, outputs rounded to 8 bits as BasicSR's validation does unless ``--float-scoring``; ours =
mean ± std over seeds, published numbers with their source in brackets), ``published`` (the SwinIR/RCAN rows of
DCKD's Table 2, for reference), ``ablation`` (FPM only, BPM
only, both; shared encoder; channel-only / spatial-only masks; no auto-encoder term) and ``cost`` (parameters,
FLOPs and latency of teacher and student on a fixed input, via :mod:`distill.deploy.cost`). Finished runs under
``--out`` are reused; delete the folder to rerun.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._common import (  # noqa: E402
    SMOKE_VERDICT,
    add_force_argument,
    add_launcher_arguments,
    guard_outputs,
    render_tables,
)
from distill.build import build_model  # noqa: E402
from distill.deploy.cost import profile_model, profile_table  # noqa: E402
from distill.errors import DistillError  # noqa: E402
from distill.experiments.repeats import Aggregate, aggregate, run_repeats  # noqa: E402
from distill.experiments.sweep import INLINE, RunSource  # noqa: E402
from distill.recipe.config import ComponentSpec  # noqa: E402
from distill.report.tables import table  # noqa: E402
from distill.run.atomic import write_text  # noqa: E402
from distill.run.values import is_defined  # noqa: E402

RECIPES = ROOT / "recipes"
SETS = (("set5", "Set5"), ("set14", "Set14"), ("b100", "B100"), ("urban100", "Urban100"))

#: Where each published number was read. The MiPKD paper's own tables could not be read; these secondary sources
#: are all we have (see the README's MiPKD section). Nothing is derived here: a number without a source is "n/a".
SOURCES = {
    "S1": "[S1] a summary of the ICLR 2025 MiPKD paper (Urban100 headline numbers of its Tables 2/3/11; it does "
    "not say which EDSR student)",
    "S3": "[S3] DCKD, arXiv 2412.08939, Table 2 (MiPKD rows for SwinIR/RCAN students; DCKD says its SR setup "
    "follows MiPKD, not whether these rows were copied or re-run)",
}

#: Published EDSR numbers, ``{scale: {method: {set: (psnr, ssim)}}}``, source S1: MiPKD Urban100 PSNR only.
PAPER: dict[int, dict[str, dict[str, tuple[float | None, float | None]]]] = {
    2: {"mipkd": {"Urban100": (32.56, None)}},
    4: {"mipkd": {"Urban100": (26.46, None)}},
}

_S3_METHODS = ("teacher", "scratch", "logitskd", "fakd", "mipkd")
_S3_ROWS = {  # (backbone, scale): per method in _S3_METHODS, Set5/Set14/B100/Urban100 as PSNR/SSIM pairs
    ("SwinIR", 2): "38.36/.9620 34.14/.9227 32.45/.9030 33.40/.9394; 38.00/.9607 33.56/.9178 32.19/.9000 "
    "32.05/.9279; 38.04/.9608 33.61/.9184 32.22/.9003 32.09/.9282; 38.03/.9608 33.63/.9182 32.21/.9001 "
    "32.06/.9279; 38.14/.9611 33.76/.9194 32.29/.9011 32.46/.9313",
    ("SwinIR", 3): "34.89/.9312 30.77/.8503 29.37/.8124 29.29/.8744; 34.41/.9273 30.43/.8437 29.12/.8062 "
    "28.20/.8537; 34.44/.9275 30.45/.8443 29.14/.8066 28.23/.8545; 34.42/.9273 30.42/.8437 29.12/.8062 "
    "28.18/.8533; 34.53/.9283 30.52/.8456 29.19/.8079 28.47/.8591",
    ("SwinIR", 4): "32.72/.9021 28.94/.7914 27.83/.7459 27.07/.8164; 32.31/.8955 28.67/.7833 27.61/.7379 "
    "26.15/.7884; 32.27/.8954 28.67/.7833 27.62/.7380 26.15/.7887; 32.22/.8950 28.65/.7831 27.61/.7380 "
    "26.09/.7870; 32.39/.8971 28.76/.7854 27.68/.7403 26.37/.7956",
    ("RCAN", 2): "38.27/.9614 34.13/.9216 32.41/.9027 33.34/.9384; 38.13/.9610 33.78/.9194 32.26/.9007 "
    "32.63/.9327; 38.17/.9611 33.83/.9197 32.29/.9010 32.67/.9329; 38.17/.9612 33.83/.9199 32.29/.9011 "
    "32.65/.9330; 38.21/.9613 33.92/.9203 32.32/.9015 32.83/.9344",
    ("RCAN", 3): "34.74/.9299 30.65/.8482 29.32/.8111 29.09/.8702; 34.61/.9288 30.45/.8444 29.18/.8074 "
    "28.59/.8610; 34.61/.9291 30.47/.8447 29.21/.8080 28.62/.8612; 34.63/.9290 30.51/.8453 29.21/.8079 "
    "28.62/.8612; 34.72/.9296 30.55/.8458 29.25/.8087 28.76/.8640",
    ("RCAN", 4): "32.63/.9002 28.87/.7889 27.77/.7436 26.82/.8087; 32.38/.8971 28.69/.7842 27.63/.7379 "
    "26.36/.7947; 32.45/.8980 28.76/.7860 27.67/.7400 26.49/.7982; 32.46/.8980 28.77/.7860 27.68/.7400 "
    "26.50/.7980; 32.46/.8982 28.77/.7860 27.69/.7402 26.55/.7998",
}


def published_s3() -> dict[tuple[str, int], dict[str, dict[str, tuple[float, float]]]]:
    """Source S3's rows as ``{(backbone, scale): {method: {set: (psnr, ssim)}}}``."""
    out: dict[tuple[str, int], dict[str, dict[str, tuple[float, float]]]] = {}
    for key, text in _S3_ROWS.items():
        rows = [row.split() for row in text.split(";")]
        out[key] = {
            m: {name: (float(p), float(q)) for (_, name), (p, q) in zip(SETS, (c.split("/") for c in row))}
            for m, row in zip(_S3_METHODS, rows, strict=True)
        }
    return out


@dataclass(frozen=True)
class Method:
    """A row: its label, recipe, whether it trains helpers, and whether it taps stages (``num_stages``)."""

    label: str
    recipe: str
    helpers: bool = False
    staged: bool = False
    extra: tuple[str, ...] = ()


METHODS: dict[str, Method] = {
    "scratch": Method("scratch", "mipkd_scratch_edsr_x4.yaml"),
    "logitskd": Method("logits KD", "mipkd_logitskd_edsr_x4.yaml"),
    "fitnet": Method("FitNet", "mipkd_fitnet_edsr_x4.yaml", helpers=True, staged=True),
    "at": Method("AT", "mipkd_at_edsr_x4.yaml", staged=True),
    "fakd": Method("FAKD", "mipkd_fakd_edsr_x4.yaml", staged=True),
    "mipkd": Method("MiPKD", "mipkd_edsr_x4.yaml", helpers=True, staged=True),
}
_MIPKD = METHODS["mipkd"]
ABLATIONS: dict[str, Method] = {
    "fpm_only": Method("FPM only", _MIPKD.recipe, True, True, ("distiller.args.block_mixer=false",)),
    "bpm_only": Method("BPM only", _MIPKD.recipe, True, True, ("distiller.args.feature_mixer=false",)),
    "mipkd": Method("FPM + BPM (MiPKD)", _MIPKD.recipe, True, True),
    "shared_encoder": Method("shared encoder", _MIPKD.recipe, True, True, ("distiller.args.encoder=shared",)),
    "mask_channel": Method("mask: channel only", _MIPKD.recipe, True, True, ("distiller.args.mask=channel",)),
    "mask_spatial": Method("mask: spatial only", _MIPKD.recipe, True, True, ("distiller.args.mask=spatial",)),
    "no_ae": Method("no auto-encoder loss", _MIPKD.recipe, True, True, ("distiller.args.ae_weight=0.0",)),
}


@dataclass(frozen=True)
class Scale:
    """How big one benchmark scale is: models, data, budget, seeds."""

    name: str
    sr_scale: int
    seeds: int
    teacher: dict[str, Any] = field(default_factory=dict)  # EDSR args; empty: the recipes' own models
    student: dict[str, Any] = field(default_factory=dict)
    num_stages: int | None = None
    iterations: int | None = None
    teacher_iterations: int | None = None
    batch: int = 16
    patch: int = 48
    lr: float | None = None
    data: dict[str, Any] = field(default_factory=dict)  # synthetic writer args; empty: real data from --data
    profile_shape: tuple[int, int, int] = (3, 180, 320)
    ablations: tuple[str, ...] = tuple(ABLATIONS)  # which ablation rows to run


SCALES = {
    "smoke": Scale(
        "smoke",
        2,
        1,
        teacher={"num_feat": 8, "num_block": 2},
        student={"num_feat": 4, "num_block": 2},
        num_stages=2,
        iterations=3,
        teacher_iterations=4,
        batch=4,
        patch=8,
        lr=5e-4,
        data={"n_train": 4, "n_images": 1, "size": [24, 24]},
        profile_shape=(3, 32, 32),
    ),
    "small": Scale(
        "small",
        2,
        2,
        teacher={"num_feat": 32, "num_block": 8},
        student={"num_feat": 16, "num_block": 4},
        num_stages=2,
        iterations=300,
        teacher_iterations=1000,
        batch=16,
        patch=16,
        lr=5e-4,
        data={"n_train": 32, "n_images": 6, "size": [96, 96]},
        profile_shape=(3, 180, 320),
        ablations=tuple(k for k in ABLATIONS if k != "no_ae"),  # keeps the scale inside its time budget
    ),
    "paper": Scale("paper", 4, 1),
}


class Bench:
    """Runs (or reuses) the teacher and the repeats each table needs, and formats the tables."""

    def __init__(
        self,
        scale: Scale,
        seeds: int,
        out: Path,
        data: Path | None,
        teacher: Path | None,
        float_scoring: bool = False,
        source: RunSource = INLINE,
    ) -> None:
        self.scale, self.seeds, self.out = scale, list(range(seeds)), out
        self.source = source  # where run_repeats gets the runs: trained here, or a sweep's plan
        self.float_scoring = float_scoring
        self.runs: dict[str, list[dict[str, Any]] | None] = {}
        self.teacher_path = teacher
        self.teacher_runs: list[dict[str, Any]] | None = None
        if scale.data:
            self.data_root = out / "data"
            self.kind = "SYNTHETIC (HR crops of scikit-image photos, bicubic LR)"
        else:
            if data is None:
                raise SystemExit(
                    "--scale paper needs --data DIR holding DIV2K/ and benchmark/{Set5,Set14,B100,Urban100}"
                )
            self.data_root = data
            self.kind = "real"

    # ------------------------------------------------------------------------------------------------ data
    def prepare_data(self) -> None:
        """Write the synthetic sets (tiny scales) or check the real ones exist (paper scale: fail fast)."""
        div2k, bench = self.data_root / "DIV2K", self.data_root / "benchmark"
        if not self.scale.data:
            missing = [p for p in (div2k / "DIV2K_train_HR", *(bench / s for _, s in SETS)) if not p.is_dir()]
            if missing:
                raise SystemExit(
                    f"--data {self.data_root}: missing {', '.join(map(str, missing))}. Unpack DIV2K_train_HR.zip "
                    "(+ DIV2K_train_LR_bicubic_X4.zip) into DIV2K/ and the benchmark sets (HR/, LR_bicubic/X4/) into "
                    "benchmark/"
                )
            return
        from distill.data.sr.synthetic import write_synthetic_div2k, write_synthetic_sr_benchmark

        d, s = self.scale.data, [self.scale.sr_scale]
        if not div2k.exists():
            write_synthetic_div2k(div2k, n_train=d["n_train"], n_valid=0, size=d["size"], scales=s, seed=0)
        if not bench.exists():
            sets = [name for _, name in SETS]
            write_synthetic_sr_benchmark(bench, sets=sets, n_images=d["n_images"], size=d["size"], scales=s, seed=0)

    # ------------------------------------------------------------------------------------------------ runs
    def common(self) -> list[str]:
        """Overrides every run of this scale gets (data, scale, budget)."""
        sc, s = self.scale, self.scale.sr_scale
        sets = [
            "train.progress=false",
            "output.tensorboard=false",
            f"data.root={self.data_root / 'DIV2K'}",
            "data.synthetic=null",
            f"vars.scale={s}",  # the recipes' one scale: dataset scale, crop_border and model upscale
        ]
        for key, name in SETS:
            sets.append(f"data.eval.{key}.args.root={self.data_root / 'benchmark' / name}")
        if self.float_scoring:
            sets += [f"eval.metric_args.{m}.quantize=false" for m in ("psnr", "ssim")]
        if not sc.data:
            return sets
        sets += [
            f"data.train.args.patch_size={sc.patch}",
            "data.train.args.cache=true",
            "train.num_workers=0",
            f"train.batch_size={sc.batch}",
        ]
        return sets

    def _budget(self, iterations: int | None, groups: Sequence[str]) -> list[str]:
        sc = self.scale
        if iterations is None:
            return []
        sets = [f"train.iterations={iterations}", f"train.eval_every={iterations}", f"train.log_every={iterations}"]
        for g in groups:
            sets += [f"optim.{g}.lr={sc.lr}", f"optim.{g}.schedule={{name: cosine}}"]
        return sets

    def teacher_file(self) -> Path:
        """The teacher weights every KD run loads: ``--teacher`` or the student.pt of the teacher-recipe run."""
        if self.teacher_path is not None and str(self.teacher_path).startswith("zoo:"):  # a published teacher
            from distill.models.zoo import resolve_zoo

            try:
                return resolve_zoo(str(self.teacher_path))
            except DistillError as err:
                raise SystemExit(f"--teacher {self.teacher_path}: {err}") from None
        if self.teacher_path is not None:
            if not self.teacher_path.is_file():
                raise SystemExit(f"--teacher {self.teacher_path}: no such file")
            return self.teacher_path
        if self.teacher_runs is None:
            sc = self.scale
            sets = [*self.common(), *self._budget(sc.teacher_iterations, ["student"])]
            if sc.teacher:
                sets.append(f"models.student.args={_flow({**sc.teacher, 'upscale': sc.sr_scale})}")
            self.teacher_runs = run_repeats(
                RECIPES / "mipkd_teacher_edsr_x4.yaml", [0], self.out / "teacher", sets, source=self.source
            )
        return self.out / "teacher" / "seed0" / "student.pt"

    def method(self, key: str, m: Method) -> list[dict[str, Any]] | None:
        """The repeats of one configuration; ``None`` when it stopped with an error (reported, never hidden)."""
        if key in self.runs:
            return self.runs[key]
        sc = self.scale
        sets = [*self.common(), *self._budget(sc.iterations, ["student", "helpers"] if m.helpers else ["student"])]
        if sc.student:
            sets.append(f"models.student.args={_flow({**sc.student, 'upscale': sc.sr_scale})}")
        if m.recipe != "mipkd_scratch_edsr_x4.yaml":
            teacher = {**sc.teacher, "upscale": sc.sr_scale} if sc.teacher else None
            if teacher is not None:
                sets.append(f"models.teacher.args={_flow({**teacher, 'pretrained': str(self.teacher_file())})}")
            else:
                sets.append(f"models.teacher.args.pretrained={self.teacher_file()}")
        if m.staged and sc.num_stages:
            sets.append(f"distiller.args.num_stages={sc.num_stages}")
        try:
            self.runs[key] = run_repeats(
                RECIPES / m.recipe, self.seeds, self.out / key, [*sets, *m.extra], source=self.source
            )
        except DistillError as err:
            print(f"[{key}] stopped: {err}", file=sys.stderr)
            self.runs[key] = None
        return self.runs[key]

    # ---------------------------------------------------------------------------------------------- tables
    def caption(self, title: str) -> str:
        sc = self.scale
        models = (
            f"EDSR c{sc.teacher['num_feat']} b{sc.teacher['num_block']} -> c{sc.student['num_feat']} "
            f"b{sc.student['num_block']}, K={sc.num_stages}, {sc.iterations} iterations "
            f"(teacher {sc.teacher_iterations})"
            if sc.teacher
            else "EDSR c256 b32 -> c64 b16 (recipes unchanged)"
        )
        return (
            f"{title}\n  data: {self.kind}; train DIV2K layout at {self.data_root / 'DIV2K'}, test "
            f"Set5/Set14/B100/Urban100 layout at {self.data_root / 'benchmark'}; x{sc.sr_scale}; PSNR/SSIM on Y, "
            f"crop_border {sc.sr_scale}, {self.scoring()}; {models}; seeds {self.seeds} (teacher: one run, seed 0"
            f"{', from --teacher' if self.teacher_path else ''}); selection: last; scale: {sc.name}; "
            "ours = mean ± std over seeds"
        )

    def scoring(self) -> str:
        """How outputs were scored, for captions."""
        if self.float_scoring:
            return "float outputs scored unrounded (--float-scoring; not BasicSR's validation)"
        return "outputs clamped to [0, 1] and rounded to 8 bits first (BasicSR validation, tensor2img)"

    def _cells(self, runs: list[dict[str, Any]] | None, role: str, paper: dict[str, Any]) -> list[str]:
        cells = []
        for key, name in SETS:
            for i, metric in enumerate(("psnr", "ssim")):
                ours = _fmt(aggregate(runs, key, role, metric), 2 if metric == "psnr" else 4) if runs else "stopped"
                pub = paper.get(name, (None, None))[i]
                cells.append(f"{ours} [{_num(pub, 2 if metric == 'psnr' else 4)}]")
        return cells

    def main_table(self) -> str:
        paper = PAPER.get(self.scale.sr_scale, {})
        self.teacher_file()
        rows = []
        if self.teacher_runs is not None:
            rows.append(["teacher", *self._cells(self.teacher_runs, "student", {})])
        for key, m in METHODS.items():
            rows.append([m.label, *self._cells(self.method(key, m), "student", paper.get(key, {}))])
        headers = ["method", *(f"{name} {m.upper()}" for _, name in SETS for m in ("psnr", "ssim"))]
        caption = self.caption(
            f"MiPKD main table (x{self.scale.sr_scale}): ours [published, real data]. Published: MiPKD's EDSR "
            f"Urban100 PSNR from {SOURCES['S1']}; n/a = no published number with a source"
        )
        return table(headers, rows, caption) + "\n" + self.verdict()

    def verdict(self) -> str:
        """Where MiPKD stands against logits KD and scratch, per set (mean over seeds) — stated, not judged."""
        mip = self.runs.get("mipkd")
        if len(self.seeds) < 2:
            return f"MiPKD vs logits KD and scratch: {SMOKE_VERDICT}"
        lines = []
        for other in ("logitskd", "scratch"):
            runs = self.runs.get(other)
            if not mip or not runs:
                lines.append(f"MiPKD vs {METHODS[other].label}: not comparable (a run stopped)")
                continue
            deltas, spread = [], []
            for key, _ in SETS:
                a, b = aggregate(mip, key, "student", "psnr"), aggregate(runs, key, "student", "psnr")
                deltas.append(a.mean - b.mean)
                spread.append(max(a.std, b.std))
            per_set = ", ".join(f"{name} {d:+.3f}" for (_, name), d in zip(SETS, deltas))
            mean = statistics.fmean(deltas)
            within = all(abs(d) <= s for d, s in zip(deltas, spread))
            note = " — within the seed-to-seed spread on every set" if within and len(self.seeds) > 1 else ""
            lines.append(f"MiPKD vs {METHODS[other].label}: PSNR difference (dB) {per_set}; mean {mean:+.3f}{note}")
        return "\n".join(lines)

    def published_table(self) -> str:
        """Source S3's SwinIR/RCAN rows (printed for reference; this benchmark runs the EDSR recipes only)."""
        rows = []
        for (backbone, sr_scale), methods in published_s3().items():
            for m, per_set in methods.items():
                label = "teacher" if m == "teacher" else METHODS[m].label
                cells = [f"{per_set[name][0]:.2f}/{per_set[name][1]:.4f}" for _, name in SETS]
                rows.append([f"{backbone} x{sr_scale}", label, *cells])
        headers = ["student", "method", *(f"{name} PSNR/SSIM" for _, name in SETS)]
        caption = (
            f"Published MiPKD numbers for SwinIR c180x6 -> c60x4 and RCAN g10b20 -> g10b6 students (real data, Y "
            f"channel; not run here): {SOURCES['S3']}"
        )
        return table(headers, rows, caption)

    def ablation_table(self) -> str:
        rows = []
        for key in self.scale.ablations:
            m = ABLATIONS[key]
            runs = self.method(key, m)
            if not runs:
                rows.append([m.label, *(["stopped"] * (len(SETS) + 1))])
                continue
            psnr = [aggregate(runs, k, "student", "psnr") for k, _ in SETS]
            avg = Aggregate([statistics.fmean(v) for v in zip(*(a.values for a in psnr))])
            rows.append([m.label, *(_fmt(a, 2) for a in psnr), _fmt(avg, 2)])
        headers = ["variant", *(f"{name} PSNR" for _, name in SETS), "mean PSNR"]
        caption = self.caption("MiPKD ablation (PSNR; published ablation numbers: n/a, not available to us)")
        return table(headers, rows, caption)

    def cost_table(self) -> str:
        sc = self.scale
        if sc.teacher:
            t_args, s_args = {**sc.teacher, "upscale": sc.sr_scale}, {**sc.student, "upscale": sc.sr_scale}
        else:
            t_args = {"num_feat": 256, "num_block": 32, "res_scale": 0.1, "upscale": sc.sr_scale}
            s_args = {"num_feat": 64, "num_block": 16, "upscale": sc.sr_scale}
        example = torch.rand((1, *sc.profile_shape), generator=torch.Generator().manual_seed(0))
        profiles = [
            profile_model(build_model(ComponentSpec("edsr", args)), example, name=role)
            for role, args in (("teacher", t_args), ("student", s_args))
        ]
        title = f"Compression (x{sc.sr_scale}): teacher EDSR {_arch(t_args)} vs student EDSR {_arch(s_args)}, LR input"
        return f"{title} {sc.profile_shape[1]}x{sc.profile_shape[2]}\n" + profile_table(profiles, reference="teacher")


def _arch(args: dict[str, Any]) -> str:
    return f"c{args['num_feat']} b{args['num_block']}"


def _flow(args: dict[str, Any]) -> str:
    """A mapping as a YAML flow mapping for ``--set``."""
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in args.items()) + "}"


def _num(value: float | None, digits: int) -> str:
    return "n/a" if not is_defined(value) else f"{value:.{digits}f}"


def _fmt(agg: Aggregate, digits: int) -> str:
    return agg.format(digits, sep="±")


TABLE_NAMES = ("main", "ablation", "cost", "published")


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="smoke")
    parser.add_argument("--seeds", type=int, help="seeds per method (default: the scale's)")
    parser.add_argument(
        "--tables", default="main,ablation,cost", help="comma-separated: main, ablation, cost, published"
    )
    parser.add_argument(
        "--float-scoring",
        action="store_true",
        help="score float outputs (default: clamp and round to 8 bits first, as BasicSR's validation does)",
    )
    parser.add_argument("--out", type=Path, help="folder for data and runs (default runs/bench_mipkd_<scale>)")
    parser.add_argument("--data", type=Path, help="paper scale: folder with DIV2K/ and benchmark/<set>/")
    parser.add_argument(
        "--teacher", type=Path, help="teacher weights: zoo:edsr_x4 (published EDSR-L), a BasicSR file or a student.pt"
    )
    add_launcher_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show library warnings and INFO logs")
    add_force_argument(parser)
    args = parser.parse_args(argv)
    guard_outputs(parser, args)
    scale = SCALES[args.scale]
    out = args.out or Path(f"runs/bench_mipkd_{scale.name}")
    names = [t.strip() for t in args.tables.split(",")]
    for name in names:
        if name not in TABLE_NAMES:
            parser.error(f"--tables: unknown table '{name}'; choose from {', '.join(TABLE_NAMES)}")
    started = time.time()
    Bench(scale, args.seeds or scale.seeds, out, args.data, args.teacher, args.float_scoring).prepare_data()

    def make_tables(source: RunSource) -> dict[str, Callable[[], str]]:
        bench = Bench(scale, args.seeds or scale.seeds, out, args.data, args.teacher, args.float_scoring, source)
        return {
            "main": bench.main_table,
            "ablation": bench.ablation_table,
            "cost": bench.cost_table,
            "published": bench.published_table,
        }

    printed = render_tables(make_tables, names, args)
    if printed is None:
        return {}
    print(
        f"benchmark time: {time.time() - started:.0f} s, data writing included (finished runs under {out} are reused)"
    )
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "tables.json", json.dumps(printed, indent=2))
    return printed


if __name__ == "__main__":
    main()
