"""MRKD paper tables 1–7, reproduced by running recipes, printed beside the published numbers.

    python benchmarks/mrkd_tables.py --scale smoke|small|paper [--seeds N] [--tables 1,hard,5,6,7] [--out DIR]
                                     [--split random|by_reference] [--statistic mean|median] [--dry-run]

Scales
------
* ``smoke``: seconds per run; tiny synthetic sets in each official layout, one seed, one epoch — proves that every
  table's pipeline runs; the numbers mean nothing.
* ``small``: minutes on 2 CPU cores; synthetic TID2013-, KADID-10k- and LIVEC-layout sets (32 references, 64 px,
  8 distortion types), ResNet-10 regressors from scratch as a stand-in for the paper's models (compared with the
  paper's ResNet50 rows), 8 epochs, 3 seeds. Default tables: 1, hard, 7; add ``--tables 5,6`` for LIVEC and
  cross-dataset.
* ``paper``: the real datasets under ``data/`` with the paper's DBCNN, ResNet50 and HyperIQA recipes (GPU), in the
  protocol of the code behind the paper's baselines: an 80/20 split by reference image (TID2013: 20 of 25
  references train, 5 test; KADID-10k: 65 of 81; LIVEC, which has no references, per image), re-drawn for every
  repeat (split seed = train seed), the final epoch, the average over repeats. The paper averages "multiple
  experiments" without saying how many; we run 10, the count of DBCNN's and HyperIQA's released code (10 random
  80/20 splits of the reference indices each: DBCNN-PyTorch DBCNN.py lines 315-329, SSL92 train_test_IQA.py lines
  25, 38-41).

Protocol options: ``--split by_reference`` is the default of every scale. ``--split random`` is the labelled
per-image variant (one reference's content in both parts; higher scores); its run folders carry ``_random``.
``--statistic median`` reports medians (HyperIQA's authors' convention) instead of the paper's average. Every
caption names the split, the statistic and the repeats; every cell says its ``n``; repeats that failed (a diverging
loss, bad data) are listed under their table, never dropped silently. ``--dry-run`` composes and validates every
recipe and prints every table's shape and caption (the paper's fixed distortion types included) without data and
without training.

Tables: ``1`` (overall SRCC/PLCC, baseline/URKD/MRKD per model on TID2013 and KADID-10k), ``hard`` (Tables 2–4:
the paper's own fixed types — TID2013 DBCNN 14, 16, 01, 12; KADID-10k DBCNN 20, 07, 01, 02; TID2013 ResNet50 14, 16,
08, 11 — beside the two hardest and two easiest types found in our baseline), ``5`` (LIVEC), ``6`` (cross-dataset
TID2013 ↔ KADID-10k) and ``7`` (teacher learning-rate grid on TID2013, both models). Every number comes from runs
made by ``collect_repeats`` — the benchmark has no training loop of its own; at the synthetic
scales it only composes recipes (``_base_`` = the ResNet-10 CPU recipes ``CPU_RECIPES`` plus the dataset, written under
``--out/recipes``). Finished runs under ``--out`` are reused; delete the folder to rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import add_force_argument, add_launcher_arguments, guard_outputs, render_tables  # noqa: E402
from distill.data.iqa.distortions import KADID_TYPES  # noqa: E402
from distill.data.iqa.distortions_tid import TID_TYPES as TID_TYPE_NAMES  # noqa: E402
from distill.experiments.repeats import Aggregate, RepeatSet, collect_repeats  # noqa: E402
from distill.experiments.sweep import INLINE, RunSource  # noqa: E402
from distill.recipe.check import load_recipe  # noqa: E402
from distill.registry import WRITERS, load_plugins  # noqa: E402
from distill.report.groups import hardest_and_easiest  # noqa: E402
from distill.report.tables import table  # noqa: E402
from distill.run.atomic import write_text  # noqa: E402
from distill.run.values import as_float  # noqa: E402

RECIPES = ROOT / "recipes"
METHODS = ("baseline", "urkd", "mrkd")
#: The synthetic scales' ResNet-10 stand-in recipes (the quickstart's until it moved to CNNIQA), one per method.
CPU_RECIPES = {
    "baseline": "mrkd_resnet10_cpu_baseline.yaml",
    "urkd": "mrkd_resnet10_cpu_urkd.yaml",
    "mrkd": "mrkd_resnet10_cpu.yaml",
}
LABEL = {"dbcnn": "DBCNN", "resnet50": "ResNet50", "hyperiqa": "HyperIQA", "resnet10": "ResNet-10*"}
DATASET = {"tid": "TID2013", "kadid": "KADID-10k", "livec": "LIVEC"}

# ---------------------------------------------------------------------------------------- published numbers (Yuan)
PAPER_T1 = {  # (model, dataset) → method → (SRCC, PLCC)
    ("dbcnn", "tid"): {"baseline": (0.8043, 0.8303), "urkd": (0.8074, 0.8331), "mrkd": (0.8397, 0.8633)},
    ("dbcnn", "kadid"): {"baseline": (0.8148, 0.8077), "urkd": (0.8152, 0.8085), "mrkd": (0.8258, 0.8231)},
    ("resnet50", "tid"): {"baseline": (0.7278, 0.7725), "urkd": (0.7284, 0.7726), "mrkd": (0.7700, 0.8063)},
    ("resnet50", "kadid"): {"baseline": (0.7117, 0.7139), "urkd": (0.7188, 0.7218), "mrkd": (0.7447, 0.7530)},
    ("hyperiqa", "tid"): {"baseline": (0.7764, 0.8081), "urkd": (0.7608, 0.8062), "mrkd": (0.7974, 0.8296)},
    ("hyperiqa", "kadid"): {"baseline": (0.7818, 0.7595), "urkd": (0.7862, 0.7626), "mrkd": (0.8011, 0.7875)},
}
PAPER_HARD = {  # (model, dataset) → (paper table, {type code → method → (SRCC, PLCC)})
    ("dbcnn", "tid"): (
        "Table 2",
        {
            "14": {"baseline": (0.0969, 0.0328), "urkd": (0.0869, 0.0385), "mrkd": (0.4277, 0.4014)},
            "16": {"baseline": (0.1523, 0.1274), "urkd": (0.1546, 0.1332), "mrkd": (0.2285, 0.1550)},
            "01": {"baseline": (0.8892, 0.8806), "urkd": (0.8900, 0.8817), "mrkd": (0.9069, 0.8934)},
            "12": {"baseline": (0.9423, 0.9385), "urkd": (0.9423, 0.9387), "mrkd": (0.9700, 0.9582)},
        },
    ),
    ("dbcnn", "kadid"): (
        "Table 3",
        {
            "20": {"baseline": (0.2430, 0.2082), "urkd": (0.2456, 0.2088), "mrkd": (0.3024, 0.2796)},
            "07": {"baseline": (0.3333, 0.3505), "urkd": (0.3400, 0.3581), "mrkd": (0.4208, 0.4661)},
            "01": {"baseline": (0.8710, 0.8795), "urkd": (0.8726, 0.8808), "mrkd": (0.8830, 0.8905)},
            "02": {"baseline": (0.7697, 0.8069), "urkd": (0.7736, 0.8093), "mrkd": (0.8776, 0.8505)},
        },
    ),
    ("resnet50", "tid"): (
        "Table 4",
        {
            "14": {"baseline": (0.3838, 0.4561), "urkd": (0.3646, 0.4583), "mrkd": (0.4262, 0.4603)},
            "16": {"baseline": (0.1008, 0.0495), "urkd": (0.1100, 0.0625), "mrkd": (0.4000, 0.3245)},
            "08": {"baseline": (0.8585, 0.8588), "urkd": (0.8608, 0.8595), "mrkd": (0.8946, 0.8817)},
            "11": {"baseline": (0.9346, 0.9335), "urkd": (0.9285, 0.9320), "mrkd": (0.9485, 0.9450)},
        },
    ),
}
PAPER_T5 = {  # model → method → (SRCC, PLCC) on LIVEC
    "resnet50": {"baseline": (0.7814, 0.8215), "urkd": (0.7834, 0.8235), "mrkd": (0.8312, 0.8552)},
    "dbcnn": {"baseline": (0.7812, 0.8296), "urkd": (0.7780, 0.8325), "mrkd": (0.8199, 0.8491)},
    "hyperiqa": {"baseline": (0.7875, 0.8015), "urkd": (0.7813, 0.8075), "mrkd": (0.8297, 0.8671)},
}
PAPER_T6 = {  # DBCNN, cross-dataset
    "tid_to_kadid": {"baseline": (0.5347, 0.5678), "mrkd": (0.6013, 0.6140)},
    "kadid_to_tid": {"baseline": (0.6240, 0.6423), "mrkd": (0.6433, 0.6670)},
}
PAPER_T7 = {  # DBCNN on TID2013, teacher lr / student lr 1e-2 → (large SRCC, large PLCC, small SRCC, small PLCC)
    1: (0.8074, 0.8331, 0.8074, 0.8331),
    3: (0.8292, 0.8558, 0.8119, 0.8415),
    5: (0.8159, 0.8394, 0.8239, 0.8519),
    7: (0.7942, 0.8196, 0.8241, 0.8528),
    10: (0.7711, 0.8022, 0.8265, 0.8547),
    30: (0.7070, 0.7549, 0.8299, 0.8589),
    50: (0.7410, 0.7904, 0.8309, 0.8585),
    70: (0.7728, 0.8166, 0.8397, 0.8633),
}

# -------------------------------------------------------------------------------- synthetic datasets of the scales
TID_TYPES = ["01", "08", "10", "11", "12", "14", "16", "17"]  # includes the paper's hard (14, 16) and easy types
TID_SMOKE = ["01", "08", "11", "12", "14", "16"]  # every type of the paper's Tables 2 and 4
KADID_SMOKE = ["gaussian_blur", "lens_blur", "colour_saturation", "non_eccentricity_patch", "white_noise", "jpeg"]
TYPE_NAMES = {"tid": dict(TID_TYPE_NAMES), "kadid": dict(KADID_TYPES)}
SPLITS = ("random", "by_reference")
SPLIT_TEXT = {
    "random": "random 80/20 of the images (per-image variant, not the default: one reference's content can be in both "
    "parts)",
    "by_reference": "by_reference 80/20 (DBCNN's and HyperIQA's released code: no reference content in both parts)",
}


def synthetic_sets(scale: str, out: Path) -> dict[str, dict[str, Any]]:
    """Root and writer of each synthetic dataset of a scale (``smoke`` sets are tiny and live under ``out``)."""
    if scale == "smoke":
        return {
            "kadid": {"root": str(out / "data" / "kadid"), "name": "kadid10k",
                      "args": {"n_refs": 5, "size": [48, 48], "seed": 0, "distortions": KADID_SMOKE}},
            "tid": {"root": str(out / "data" / "tid"), "name": "tid2013",
                    "args": {"n_refs": 5, "size": [48, 48], "seed": 1, "distortions": TID_SMOKE}},
            "livec": {"root": str(out / "data" / "livec"), "name": "livec",
                      "args": {"n_images": 40, "size": [48, 48], "seed": 2}},
        }  # fmt: skip
    quick, _ = load_recipe(RECIPES / CPU_RECIPES["mrkd"])
    assert quick.data.synthetic is not None
    return {
        "kadid": {"root": str(quick.data.root), "name": "kadid10k", "args": dict(quick.data.synthetic.args)},
        "tid": {"root": "data/tid2013_synthetic", "name": "tid2013",
                "args": {"n_refs": 32, "size": [64, 64], "seed": 1, "distortions": TID_TYPES}},
        "livec": {"root": "data/livec_synthetic", "name": "livec",
                  "args": {"n_images": 400, "size": [64, 64], "seed": 2}},
    }  # fmt: skip


def _iqa_split(name: str, split: str, mode: str, **extra: Any) -> dict[str, Any]:
    args = {"split": split, "split_mode": mode, "train_fraction": 0.8, "split_seed": 0, **extra}
    return {"name": name, "args": args}


def synthetic_data_section(cell: str, sets: dict[str, dict[str, Any]], split: str = "by_reference") -> dict[str, Any]:
    """The ``data:`` (and ``eval:``) keys that put a quickstart recipe on the synthetic set(s) of ``cell``."""
    train_key, _, test_key = cell.partition("_to_")
    test_key = test_key or train_key
    train, test = sets[train_key], sets[test_key]
    mode = "random" if train_key == "livec" else split
    cross = train_key != test_key
    train_split = _iqa_split(train["name"], "all" if cross else "train", mode, hflip=True, crop=None)
    test_split = _iqa_split(test["name"], "all" if cross else "test", mode, root=test["root"])
    section: dict[str, Any] = {
        "data": {
            "root": train["root"],
            "synthetic": {"_replace_": True, "name": train["name"], "root": train["root"], "args": train["args"]},
            "train": {"_replace_": True, **train_split},
            "eval": {"_replace_": True, "test": test_split},
        }
    }
    if test_key == "livec":
        section["eval"] = {"group_by": None}
    return section


@dataclass(frozen=True)
class Scale:
    """Models, seeds and training overrides of one scale; where its recipes come from."""

    name: str
    models: tuple[str, ...]
    overrides: tuple[str, ...]
    seeds: int
    tables: str
    grid_model: str
    student_lr: float
    lr_ratios: tuple[int, ...]
    split: str  # default split protocol of TID2013/KADID-10k cells

    @property
    def synthetic(self) -> bool:
        return self.name != "paper"


SCALES = {
    "smoke": Scale(
        "smoke", ("resnet10",), ("train.epochs=1", "train.batch_size=8", "train.eval_every=1"), 1,
        "1,hard,5,6,7", "resnet10", 0.005, (1, 4), "by_reference",
    ),
    "small": Scale(
        "small", ("resnet10",), ("train.epochs=8", "train.eval_every=2"), 3, "1,hard,7", "resnet10", 0.005,
        (1, 3, 4, 10), "by_reference",
    ),
    "paper": Scale(  # split by reference, 10 repeats as DBCNN's and HyperIQA's released code (paper: "multiple")
        "paper", ("dbcnn", "resnet50", "hyperiqa"), (), 10, "1,hard,5,6,7", "dbcnn", 0.01,
        (1, 3, 5, 7, 10, 30, 50, 70), "by_reference",
    ),
}  # fmt: skip
MODEL_SUFFIX = {"dbcnn": "", "resnet50": "_resnet50", "hyperiqa": "_hyperiqa"}


def paper_model(model: str) -> str:
    """The paper's model a stand-in is compared with (ResNet-10* → ResNet50)."""
    return "resnet50" if model == "resnet10" else model


class Bench:
    """Runs (or reuses) the repeats each table needs and formats the tables (or only their shape, ``dry_run``)."""

    def __init__(
        self,
        scale: Scale,
        seeds: int,
        out: Path,
        split: str | None = None,
        statistic: str = "mean",
        dry_run: bool = False,
        source: RunSource = INLINE,
    ) -> None:
        self.scale, self.seeds, self.out = scale, list(range(seeds)), out
        self.source = source  # where collect_repeats gets the runs: trained here, or a sweep's plan
        self.split, self.statistic, self.dry_run = split or scale.split, statistic, dry_run
        self.sets = synthetic_sets(scale.name, out) if scale.synthetic else {}
        self.runs: dict[str, RepeatSet] = {}
        self.used: list[str] = []  # keys the table being built reads (their failures are listed under it)

    # --------------------------------------------------------------------------------------------------- recipes
    def recipe(self, method: str, model: str, cell: str) -> Path:
        """The recipe file of one configuration (composed under ``out/recipes`` at the synthetic scales)."""
        if not self.scale.synthetic:
            suffix = MODEL_SUFFIX[model]
            prefix = "mrkd" if method == "mrkd" else f"mrkd_{method}"
            return RECIPES / (f"{prefix}_{cell}.yaml" if "_to_" in cell else f"{prefix}_{cell}{suffix}.yaml")
        doc = {"_base_": str(RECIPES / CPU_RECIPES[method]), "name": f"bench_{method}_{cell}"}
        doc.update(synthetic_data_section(cell, self.sets, self.split))
        path = self.out / "recipes" / f"{method}_{cell}{self.split_suffix(cell)}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, f"# composed by benchmarks/mrkd_tables.py --scale {self.scale.name}\n" + yaml.safe_dump(doc))
        return path

    def has_split(self, cell: str) -> bool:
        """Whether ``--split`` applies to ``cell`` (TID2013/KADID-10k within one set; LIVEC has no references)."""
        return cell in ("tid", "kadid")

    def split_suffix(self, cell: str) -> str:
        """Run-folder suffix of a split other than the scale's default (so the two protocols never share runs)."""
        return f"_{self.split}" if self.has_split(cell) and self.split != self.scale.split else ""

    def split_overrides(self, cell: str) -> list[str]:
        if self.scale.synthetic or not self.has_split(cell):
            return []
        return [f"data.train.args.split_mode={self.split}", f"data.eval.test.args.split_mode={self.split}"]

    def prepare_test_sets(self, cell: str) -> None:
        """Cross-dataset cells test on a second synthetic set; write it if missing (training writes only its own)."""
        _, _, test_key = cell.partition("_to_")
        if self.scale.synthetic and test_key and not Path(self.sets[test_key]["root"]).exists():
            spec = self.sets[test_key]
            WRITERS.build(spec["name"], out=spec["root"], **spec["args"])

    def method(
        self, method: str, model: str, cell: str, extra: Sequence[str] = (), key: str | None = None
    ) -> RepeatSet:
        """The repeats of one configuration: finished runs and failed ones (reported under the table, never hidden).

        With ``dry_run`` the recipe is composed and validated with its overrides, and nothing runs.
        """
        key = (key or f"{method}_{cell}" + ("" if self.scale.synthetic else f"_{model}")) + self.split_suffix(cell)
        self.used.append(key)
        if key not in self.runs:
            overrides = [
                *self.scale.overrides,
                "train.progress=false",
                "output.tensorboard=false",
                *self.split_overrides(cell),
                *extra,
            ]
            recipe = self.recipe(method, model, cell)
            if self.dry_run:
                load_recipe(recipe, overrides)
                self.runs[key] = RepeatSet(self.seeds, [], [])
            else:
                self.prepare_test_sets(cell)
                self.runs[key] = collect_repeats(recipe, self.seeds, self.out / key, overrides, source=self.source)
        return self.runs[key]

    def value(self, rep: RepeatSet, metric: str, role: str = "student", group: str | None = None) -> str:
        """One cell: the statistic over the finished repeats with its ``n`` (see :meth:`Aggregate.cell`)."""
        if self.dry_run:
            return "·"
        if not rep.runs:
            return f"all {len(rep.seeds)} repeats failed"
        values = []
        for run in rep.runs:
            res = run["results"]["test"][role]
            if group is None:
                values.append(as_float(res["overall"].get(metric)))
            elif group in res.get("groups", {}):
                values.append(as_float(res["groups"][group].get(metric)))
        if not values:
            return "type not in test set"
        return Aggregate(values).cell(self.statistic)

    def ours(self, rep: RepeatSet, role: str = "student", group: str | None = None) -> list[str]:
        return [self.value(rep, m, role, group) for m in ("srcc", "plcc")]

    def finish(self, text: str) -> str:
        """``text`` plus the failed repeats of the configurations it used (each with its seed and error)."""
        keys, self.used = list(dict.fromkeys(self.used)), []
        lines = [line for k in keys for line in self.runs[k].failure_lines(k)]
        if lines:
            text += "\n  failed repeats (not in n):\n" + "\n".join(f"    {line}" for line in lines)
        return text

    def caption(self, title: str, datasets: str, split: str) -> str:
        if self.scale.synthetic:
            data = f"SYNTHETIC {datasets} layout(s), objective pseudo-MOS, not human scores"
            model = "ResNet-10* = ResNet-10 regressor from scratch, a CPU stand-in compared with the paper's ResNet50"
        else:
            data, model = f"real {datasets} under data/", "the paper's models and learning rates"
        stat = "mean ± std" if self.statistic == "mean" else "median"
        paper_stat = "the paper's average" if self.statistic == "mean" else "not the paper's average"
        dry = "DRY RUN: recipes validated, nothing trained, no number measured; " if self.dry_run else ""
        return (
            f"{title}\n  {dry}data: {data}; split: {split}, split seed = train seed; seeds {self.seeds}; "
            f"selection: last evaluation (the paper's final-epoch policy); scale: {self.scale.name}; {model}; "
            f"ours = {stat} over the n finished repeats ({paper_stat}; the paper does not say how many it ran)"
        )

    # ---------------------------------------------------------------------------------------------------- tables
    def table1(self) -> str:
        rows = []
        for model in self.scale.models:
            for method in METHODS:
                cells = [self.ours(self.method(method, model, ds)) for ds in ("tid", "kadid")]
                paper = [PAPER_T1[(paper_model(model), ds)][method] for ds in ("tid", "kadid")]
                rows.append([LABEL[model], method, *cells[0], *cells[1], *paper[0], *paper[1]])
        headers = ["model", "method", "TID SRCC", "TID PLCC", "KADID SRCC", "KADID PLCC"]
        caption = self.caption("Table 1 — overall, student model", "TID2013 / KADID-10k", SPLIT_TEXT[self.split])
        return self.finish(table([*headers, *(f"{h} (paper)" for h in headers[2:])], rows, caption))

    def our_hard_and_easy(self, base: RepeatSet) -> tuple[list[str], list[str]] | None:
        """The two hardest and easiest types of our baseline by mean SRCC over its finished repeats."""
        if self.dry_run or not base.runs:
            return None
        groups = {g for run in base.runs for g in run["results"]["test"]["student"].get("groups", {})}
        mean = {}
        for g in groups:
            values = [
                as_float(run["results"]["test"]["student"]["groups"][g].get("srcc"))
                for run in base.runs
                if g in run["results"]["test"]["student"].get("groups", {})
            ]
            mean[g] = {"srcc": Aggregate(values).mean}
        return hardest_and_easiest(mean, "srcc", 2)

    def table_hard(self) -> str:
        out = []
        for model in self.scale.models:
            for ds in ("tid", "kadid"):
                ref = (paper_model(model), ds) if (paper_model(model), ds) in PAPER_HARD else ("dbcnn", ds)
                name, paper = PAPER_HARD[ref]
                fixed = list(paper)  # the paper lists its two hardest, then its two easiest types
                base = self.method("baseline", model, ds)
                rows = []
                for label, keys in (("paper hard", fixed[:2]), ("paper easy", fixed[2:])):
                    for g in keys:
                        for method in METHODS:
                            ours = self.ours(self.method(method, model, ds), group=g)
                            type_name = TYPE_NAMES[ds].get(g, "?")
                            rows.append([f"{label} {g} {type_name}", method, *ours, *paper[g][method]])
                picked = self.our_hard_and_easy(base)
                if picked is None:
                    why = "found after training" if self.dry_run else "no finished baseline repeat"
                    for label in ("our hardest #1", "our hardest #2", "our easiest #1", "our easiest #2"):
                        rows.append([label, f"({why})", "·", "·", None, None])
                else:
                    for label, keys in (("our hard", picked[0]), ("our easy", picked[1])):
                        for g in keys:
                            for method in METHODS:
                                ours = self.ours(self.method(method, model, ds), group=g)
                                numbers = paper.get(g, {}).get(method, (None, None))
                                rows.append([f"{label} {g} {TYPE_NAMES[ds].get(g, '?')}", method, *ours, *numbers])
                fixed_text = f"hard {', '.join(fixed[:2])}; easy {', '.join(fixed[2:])}"
                title = (
                    f"{name} analog — {LABEL[model]} on {DATASET[ds]}: the paper's own types ({name}, "
                    f"{LABEL[ref[0]]}: {fixed_text}) and the two hardest / easiest types of OUR baseline (mean SRCC "
                    "over repeats; paper numbers only where it picked the same type)"
                )
                headers = ["type", "method", "SRCC (ours)", "PLCC (ours)", "SRCC (paper)", "PLCC (paper)"]
                caption = self.caption(title, DATASET[ds], SPLIT_TEXT[self.split])
                out.append(self.finish(table(headers, rows, caption)))
        return "\n\n".join(out)

    def table5(self) -> str:
        rows = []
        for model in self.scale.models:
            ours = [c for method in METHODS for c in self.ours(self.method(method, model, "livec"))]
            paper = [c for method in METHODS for c in PAPER_T5[paper_model(model)][method]]
            rows.append([LABEL[model], *ours, *paper])
        headers = [f"{m.upper()} {k}" for m in ("ori", "urkd", "mrkd") for k in ("SRCC", "PLCC")]
        split = "random 80/20 of the images (LIVEC has no shared references; DBCNN's and HyperIQA's code split it so)"
        caption = self.caption("Table 5 — LIVE Challenge, student model", "LIVEC", split)
        return self.finish(table(["model", *headers, *(f"{h} (paper)" for h in headers)], rows, caption))

    def table6(self) -> str:
        rows = []
        model = "dbcnn" if "dbcnn" in self.scale.models else self.scale.models[0]
        for cell in ("tid_to_kadid", "kadid_to_tid"):
            train, test = cell.split("_to_")
            for method in ("baseline", "mrkd"):
                ours = self.ours(self.method(method, model, cell))
                rows.append([f"{DATASET[train]} → {DATASET[test]}", method, *ours, *PAPER_T6[cell][method]])
        caption = self.caption(
            f"Table 6 — cross-dataset, {LABEL[model]} (paper: DBCNN), student model",
            "TID2013 / KADID-10k",
            "train on all of one set, test on all of the other (the paper's protocol)",
        )
        headers = ["train → test", "method", "SRCC", "PLCC", "SRCC (paper)", "PLCC (paper)"]
        return self.finish(table(headers, rows, caption))

    def table7(self) -> str:
        model, rows = self.scale.grid_model, []
        mrkd, _ = load_recipe(self.recipe("mrkd", model, "tid"))
        mrkd_ratio = round(mrkd.optim["teacher"].lr / self.scale.student_lr, 6)
        for ratio in self.scale.lr_ratios:
            lr = self.scale.student_lr * ratio
            if ratio == 1:  # equal learning rates: the URKD runs of Table 1
                runs = self.method("urkd", model, "tid")
            elif ratio == mrkd_ratio:  # the MRKD recipe's own ratio: the MRKD runs of Table 1
                runs = self.method("mrkd", model, "tid")
            else:
                key = f"lr_x{ratio}_tid" + ("" if self.scale.synthetic else f"_{model}")
                runs = self.method("mrkd", model, "tid", [f"optim.teacher.lr={lr:g}"], key=key)
            ours = self.ours(runs, "teacher") + self.ours(runs, "student")
            rows.append([f"x{ratio} ({lr:g})", *ours, *PAPER_T7.get(ratio, (None,) * 4)])
        caption = self.caption(
            f"Table 7 — teacher lr = ratio × student lr {self.scale.student_lr:g} (x1 = URKD), {LABEL[model]}; "
            "paper: DBCNN on TID2013 at the same ratios to its 1e-2",
            "TID2013",
            SPLIT_TEXT[self.split],
        )
        headers = ["teacher lr", "large SRCC", "large PLCC", "small SRCC", "small PLCC"]
        return self.finish(table([*headers, *(f"{h} (paper)" for h in headers[1:])], rows, caption))


TABLE_NAMES = ("1", "hard", "5", "6", "7")


def main(argv: Sequence[str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="smoke")
    parser.add_argument("--seeds", type=int, help="number of repeats (default: the scale's; paper: 10)")
    parser.add_argument("--tables", help="comma-separated from 1, hard, 5, 6, 7 (default: the scale's)")
    parser.add_argument("--out", type=Path, help="folder for the runs (default runs/bench_mrkd_<scale>)")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        help="TID2013/KADID-10k split: by_reference (default: DBCNN's and HyperIQA's released code) or random (the "
        "per-image variant)",
    )
    parser.add_argument(
        "--statistic", choices=("mean", "median"), default="mean", help="over repeats (the paper: the average)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate every recipe and print the tables' shape; train nothing"
    )
    add_launcher_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show library warnings and INFO logs")
    add_force_argument(parser)
    args = parser.parse_args(argv)
    guard_outputs(parser, args)
    load_plugins()
    scale = SCALES[args.scale]
    out = args.out or Path(f"runs/bench_mrkd_{scale.name}")

    benches: list[Bench] = []

    def make_tables(source: RunSource) -> dict[str, Callable[[], str]]:
        bench = Bench(scale, args.seeds or scale.seeds, out, args.split, args.statistic, args.dry_run, source)
        benches.append(bench)
        return {"1": bench.table1, "hard": bench.table_hard, "5": bench.table5, "6": bench.table6, "7": bench.table7}

    names = [n.strip() for n in (args.tables or scale.tables).split(",")]
    unknown = [n for n in names if n not in TABLE_NAMES]
    if unknown:
        parser.error(f"--tables: unknown {', '.join(unknown)}; choose from {', '.join(TABLE_NAMES)}")
    started = time.time()
    printed = render_tables(make_tables, names, args)
    if printed is None:
        return {}
    bench = benches[-1]
    if args.dry_run:
        configs = len(bench.runs)
        print(
            f"dry run: {configs} configurations × {len(bench.seeds)} repeats = {configs * len(bench.seeds)} training "
            f"runs planned under {bench.out}; every recipe composed and validated, nothing trained"
        )
        return printed
    failed = sum(len(r.failures) for r in bench.runs.values())
    print(f"benchmark time: {time.time() - started:.0f} s (finished runs under {out} are reused)")
    if failed:
        print(f"{failed} repeats failed; each is listed under its table")
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "tables.json", json.dumps(printed, indent=2))
    return printed


if __name__ == "__main__":
    main()
