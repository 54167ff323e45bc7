"""Does it work? Each method against its baseline in a regime built like its paper's, with paired statistics (issue 27).

    python -m benchmarks.effect [--out runs/effect] [--json FILE] [--readme] [--force] [--threads 1]
    python -m benchmarks.effect --from benchmarks/results/effect_cpu.json --readme     # re-render, no training
    python -m benchmarks.effect --worker [--out runs/effect]   # a second process sharing the runs (then --workers 1)
    python -m benchmarks.effect --only mrkd[,mrkd_cnniqa,cqd,cqd_fit,mipkd] \
        --json benchmarks/results/effect_cpu.json --readme
        # re-measure only these methods (their pre-trained starts and stages); the file keeps the others' numbers
    python -m benchmarks.effect --worker --only mrkd [--out runs/effect]   # a worker for those methods' runs only

Every number comes from RECIPES (``recipes/effect/*.yaml``) run through
:func:`distill.experiments.repeats.run_repeats` (the engine of ``distill run``); the benchmark has no training loop.
Each finished run is kept under ``--out`` (its
``results.json``) and reused, so an interrupted benchmark continues where it stopped; the JSON is rewritten after
every stage, marked ``complete: false`` until every method is present and its last stage finished. Each method's
entry records when and where it was measured (``measured``: UTC date, machine, threads, worker processes, elapsed
and summed run wall minutes of its session, for MRKD the IQA split); a result saved before these records has one
set of top-level fields, which then stand for every method. The README block says one "measured" sentence per
distinct measurement, so methods re-measured with ``--only`` are told apart from the ones kept.

The regime (fixed before the first result; one regime per method)
------------------------------------------------------------------
Pre-trained starts, made once (seed 0) and cached under ``--out``:

* IQA: ``iqa_pretrain.yaml``, a ResNet-10 regressor of width 16 trained from scratch (4 epochs, SGD 0.02, cosine)
  on a synthetic KADID-10k-layout set of 48 references x 10 distortion types x 5 levels (48x48, writer seed 1) that
  shares no distortion type with the target; its trunk is the start of both MRKD copies.
* Recognition: ``cqd_pretrain.yaml``, VGG-M/4 trained from scratch (8 epochs, SGD 0.05) on clean crops of a
  synthetic CUB layout of 20 classes (writer seed 1, 30 train images each); ``cqd_teacher.yaml`` fine-tunes it
  (fresh 10-class head, 10 epochs, SGD 0.01) on clean crops of the target set (10 classes, writer seed 0).
* SR: ``sr_teacher.yaml``, EDSR c32 b8 x2 trained with L1 (1000 iterations, Adam 5e-4, cosine) on a synthetic
  DIV2K layout (24 train / 6 valid HR images of 96x96).

Comparisons, each over seeds 0-7 (8 pairs; method and baseline share the seed, the split and the start):

* MRKD (``mrkd.yaml``): both copies from the pre-trained trunk (fresh heads), teacher lr 0.02 / student lr 0.005
  (the paper's 4:1 ResNet50 ratio, 10x down), SGD momentum 0.9, cosine, alpha 1, 2 epochs, batch 16, on the target
  set (24 references x 8 types x 5 levels, 48x48, split 80/20 by reference with split seed = seed). Against URKD
  (``mrkd_urkd.yaml``, both lrs 0.005) and the baseline (``mrkd_baseline.yaml``: the same two models with alpha 0,
  so the student trains on MSE alone). Metric: the student's test SRCC at the last epoch.
* CQD (``cqd.yaml``): the pre-trained start (fresh head) fine-tuned on 14x14-of-64 low-resolution views, CE plus
  the paper's lambda 200 x soft-target CE at T 10 to the clean-view teacher, 8 epochs, SGD 0.01, batch 32. Against
  fine-tuning (``cqd_finetune.yaml``, the same without the teacher term). Metric: top-1 (%) on the low-resolution
  test views (200 images) at the last epoch.
* MiPKD (``mipkd.yaml``): EDSR c16 b4 student from scratch with the converged teacher, the paper's loss weights,
  K = 2 stages, 150 iterations, Adam 5e-4, cosine, batch 16, 16-px LR patches. Against scratch
  (``mipkd_scratch.yaml``) and logits KD (``mipkd_logitskd.yaml``, weight 1) with the same teacher, data, budget.
  Metric: PSNR (dB, Y channel, crop border 2) on the 6 valid images at the last iteration.

MRKD's second regime (``mrkd_cnniqa*.yaml``), added on 2026-12-07 after the first regime's result showed no
teacher-student gap before distillation, and written here before its own first result (the first regime's result
is kept and printed above it): only the model, its optimiser and the crop change. Pre-trained start
(``iqa_pretrain_cnniqa.yaml``): one CNNIQA (lcn_window 7, lcn_c 0.01: the quickstart's model) trained from scratch on
the IQA pre-training set above with MSE on random 32x32 crops, Adam 1e-3, cosine, 30 epochs, batch 32; its whole
network is the start of both copies. MRKD: Adam lr 2e-3 / 5e-4 (the quickstart's 4:1), no weight decay, clip 5,
cosine, alpha 1, 30 epochs, batch 32, random 32x32 crops, whole 48x48 images scored, on the first regime's target
set and splits (seeds 0-7). Against URKD (both 5e-4) and the baseline (alpha 0). Metric: student test SRCC at the
last epoch; the same diagnostics as the first regime.

CQD's second regime (``cqd_teacher_fit.yaml``), added on 2026-12-07 after the first regime's result (CQD below
fine-tuning) and written here before its own first result (the first regime's result is kept and printed above it):
a diagnostic run of the first regime's seeds 0-3 found that its teacher fits only 72 % of its own clean training
views, the views on which CQD's soft targets are computed (the paper's teacher is trained for 30 epochs on its
training set, run_CQD.m). Only the teacher's length changes: the paper's 30 epochs instead of 10, everything else as
``cqd_teacher.yaml``; the CQD students (``cqd.yaml`` with this teacher) and the fine-tuning baseline
(``cqd_finetune.yaml``, which has no teacher: the first regime's runs) are unchanged, seeds 0-7, the same metric
and selection. Diagnostics as the first regime's, plus each teacher's top-1 on its clean training views and, per
regime, the students' top-1 on the test views where that regime's teacher is right and where it is wrong (clean
view), with how often the student repeats the teacher's wrong class there.

Statistics: per comparison the paired differences d_k = method_k - baseline_k, their mean, the 95 % t-interval
mean +- t(0.975, n-1) s / sqrt(n) (scipy.stats.t) and the sign count; an effect is *shown* only when the interval
excludes zero.

Diagnostics (on the final checkpoints, nothing retrained): the teacher-student gap before distillation (MRKD: the
alpha-0 run's large-lr model against its student; CQD: the teacher on clean and on low-resolution test views
against the fine-tuned student; MiPKD: the teacher and bicubic against the scratch student); the student's
agreement with the teacher with and without the distillation term (MRKD: SRCC between the two models' test
predictions; CQD: top-1 agreement of the student on low-resolution views with the teacher on clean views; MiPKD:
PSNR of the student's output against the teacher's); the distillation term's gradient norm relative to the task
term's, on the student's parameters, averaged over 4 training batches; for MRKD the paired difference on the two
distortion types with the lowest mean baseline SRCC; for MiPKD the per-term ablation (MiPKD without the feature
mixer, without the block mixer) on seeds 0-7 (n = 8, as the main comparisons; the first measurement ran it on seeds
0-3 only, n = 4, to fit its budget: ``benchmarks/results/effect_history/``).

All data are SYNTHETIC (objective pseudo-MOS labels for IQA); nothing here measures the papers' real-data numbers.
Single thread (``--threads 1``) by default: on a shared 2-core machine two threads per process made steps slower.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._common import (  # noqa: E402
    add_result_arguments,
    guard_outputs,
    machine_info,
    machine_label,
    saved_result,
)
from distill.data.iqa.distortions import KADID_TYPES  # noqa: E402
from distill.run.atomic import write_text  # noqa: E402

RECIPES = ROOT / "recipes" / "effect"
BLOCK = "effect"
SEEDS = tuple(range(8))
ABLATION_SEEDS = tuple(range(8))
#: The IQA split rule the saved MRKD runs were made under (a saved result without it predates the photo-disjoint split).
IQA_SPLIT = "by reference, photo-disjoint for synthetic sets"
GRAD_BATCHES = 4
CONFIDENCE = 0.95

#: the regime as the README block states it (written before the first result, see the module docstring)
REGIME = (
    "**Regime** (fixed before the first result, one per method; MRKD and CQD each have a second regime, added after "
    "the first one's result and printed below it, the first kept as it was; `benchmarks/effect.py`'s docstring has "
    "every setting). Each method fine-tunes as its paper does, from a pre-trained start made once: a ResNet-10/16 "
    "regressor pre-trained on a larger synthetic KADID-layout set with 10 *other* distortion types (48 references, "
    "writer seed 1) for MRKD; a VGG-M/4 pre-trained on 20 synthetic CUB-layout classes (writer seed 1) for CQD, whose "
    "clean-view teacher is that start fine-tuned on the target's clean crops; an EDSR c32b8 x2 teacher trained for "
    "1000 iterations for MiPKD. MRKD: two copies from the same start, lr 0.02 / 0.005 (the paper's 4:1), 2 epochs, "
    "against URKD (0.005 / 0.005) and the baseline (the same two models, alpha 0); metric: student test SRCC, target "
    "24 references x 8 types, split by reference with split seed = seed. CQD: 14x14-of-64 low-resolution student, "
    "lambda 200, T 10, 8 epochs, against fine-tuning without the teacher term; metric: top-1 % on the low-resolution "
    "test views. MiPKD: EDSR c16b4 from scratch, the paper's loss weights, K 2, 150 iterations, against scratch and "
    "logits KD with the same teacher; metric: PSNR (Y, 6 valid images). Seeds 0-7 for every comparison (method and "
    "baseline share seed, split and start), last evaluation, 95 % t-interval of the mean paired difference; an effect "
    "is shown only when the interval excludes zero. SYNTHETIC data throughout."
)

#: MRKD's second regime, written before its first result (2026-12-07) and after the first regime's (kept unchanged)
SECOND_MRKD_REGIME = (
    "**Second regime, added after the first MRKD result** (written down before its own first result; the table above "
    "is kept as it was): the first regime showed no teacher-student gap before distillation, which the mechanism "
    "needs. Only the model, its optimiser and the crop change; the target set, split, seeds 0-7, metric and "
    "selection are the first regime's. Both copies are CNNIQAs (the quickstart's model, whose large-lr copy ended "
    "above its student in every quickstart seed) from one pre-trained CNNIQA (the first regime's pre-training set: "
    "48 references x 10 other distortion types; MSE on random 32x32 crops, Adam 1e-3, cosine, 30 epochs), fine-tuned "
    "with Adam lr 2e-3 / 5e-4 (the quickstart's 4:1), alpha 1, 30 epochs, batch 32, random 32x32 crops, whole 48x48 "
    "images scored; URKD 5e-4 / 5e-4; the baseline alpha 0."
)


#: CQD's second regime, written before its first result (2026-12-07) and after the first regime's (kept unchanged)
SECOND_CQD_REGIME = (
    "**Second regime, added after the first CQD result** (written down before its own first result; the table above "
    "is kept as it was): a diagnostic run of the first regime (seeds 0-3) found that its teacher fits only part of "
    "its own clean training views, the views CQD's soft targets are computed on, while the paper's teacher is trained "
    "for 30 epochs on its training set (run_CQD.m). Only the teacher's length changes: 30 epochs instead of 10 "
    "(`cqd_teacher_fit.yaml`); the CQD students, the fine-tuning baseline (the same runs as above: it has no teacher), "
    "seeds 0-7, metric and selection are the first regime's."
)


# ------------------------------------------------------------------------------------------------- statistics
def paired(method: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Paired comparison: mean difference (method - baseline), its t-interval, the sign count and the verdict.

    ``shown`` is ``"better"`` / ``"worse"`` when the interval lies above / below zero, else ``None``.
    """
    from scipy import stats

    if len(method) != len(baseline):
        raise ValueError(f"paired values differ in length: {len(method)} vs {len(baseline)}")
    diffs = [m - b for m, b in zip(method, baseline)]
    n = len(diffs)
    mean = statistics.fmean(diffs) if n else float("nan")
    sd = statistics.stdev(diffs) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n) if n > 1 else float("nan")
    low, high = mean - half, mean + half
    shown = "better" if low > 0 else "worse" if high < 0 else None
    return {
        "n": n,
        "diffs": diffs,
        "mean_diff": mean,
        "sd_diff": sd,
        "ci": [low, high],
        "confidence": confidence,
        "positive": sum(d > 0 for d in diffs),
        "negative": sum(d < 0 for d in diffs),
        "shown": shown,
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


# ------------------------------------------------------------------------------------------------------ runs
class Bench:
    """Runs the recipes under ``out`` (each finished run reused) and records each new run's wall time.

    Several processes may share ``out`` (``--worker``): a run being trained is claimed by a lock file beside its
    folder (holding the process id; a dead holder's lock is taken over), so no run is trained twice at once.
    """

    def __init__(self, out: Path, wait: bool = True) -> None:
        self.out = out
        self.wait = wait
        self.timings_file = out / "timings.json"

    @property
    def timings(self) -> dict[str, float]:
        return json.loads(self.timings_file.read_text()) if self.timings_file.is_file() else {}

    def _record(self, key: str, seconds: float) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        lock = self._take(self.out / ".timings")
        while not lock:
            time.sleep(0.2)
            lock = self._take(self.out / ".timings")
        try:
            timings = self.timings
            timings[key] = round(seconds, 1)
            write_text(self.timings_file, json.dumps(timings, indent=1))
        finally:
            lock.unlink()

    @staticmethod
    def _take(base: Path) -> Path | None:
        """Create ``base.lock`` holding this process id; None when a live process holds it."""
        lock = base.with_name(f".{base.name}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or "0"), 0)
                return None
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)  # its holder died: take it over
                return Bench._take(base)
            except FileNotFoundError:
                return Bench._take(base)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return lock

    def runs(
        self, recipe: str, name: str, seeds: Sequence[int], overrides: Sequence[str] = (), vary_split: bool = True
    ) -> list[dict[str, Any]]:
        """``results.json`` of each seed's run of ``recipes/effect/RECIPE.yaml`` under ``out/NAME/seed{k}`` (with
        ``wait=False``, seeds another process is training are skipped and left out)."""
        from distill.experiments.repeats import run_repeats
        from distill.experiments.sweep import is_complete

        out = []
        for seed in seeds:
            folder = self.out / name / f"seed{seed}"
            while not is_complete(folder):
                lock = self._take(folder)
                if lock is None:
                    if not self.wait:
                        break
                    time.sleep(5)
                    continue
                try:
                    if not is_complete(folder):
                        start = time.perf_counter()
                        run_repeats(RECIPES / f"{recipe}.yaml", [seed], self.out / name, overrides, vary_split)
                        self._record(f"{name}/seed{seed}", time.perf_counter() - start)
                finally:
                    lock.unlink(missing_ok=True)
            if is_complete(folder):
                out.append({"seed": seed, **json.loads((folder / "results.json").read_text())})
        return out

    def folder(self, name: str, seed: int = 0) -> Path:
        return self.out / name / f"seed{seed}"

    # ------------------------------------------------------------------------------------------- the regime's runs
    def job(self, name: str) -> list[dict[str, Any]]:
        """The runs of one group of the regime (:func:`jobs`), after the pre-trained starts it needs."""
        from distill.experiments.sweep import is_complete

        recipe, seeds, overrides, vary_split = jobs(self.out)[name]
        for dep in DEPENDS.get(name, ()):
            self.job(dep)
            if not is_complete(self.folder(dep)):
                return []  # only without wait: another process is still training the start this group needs
            if dep == "iqa_pretrain":
                extract_trunk(self.folder(dep) / "student.pt", self.folder(dep) / "iqa_trunk.pt")
        return self.runs(recipe, name, seeds, overrides, vary_split)


def jobs(out: Path) -> dict[str, tuple[str, tuple[int, ...], list[str], bool]]:
    """Every group of runs: name -> (recipe, seeds, --set overrides, split seed = seed). The pre-trained files are
    named by their run folders under ``out``."""
    trunk = out / "iqa_pretrain" / "seed0" / "iqa_trunk.pt"
    cnniqa_start = out / "iqa_pretrain_cnniqa" / "seed0" / "student.pt"
    cqd_start = out / "cqd_pretrain" / "seed0" / "student.pt"
    cqd_teacher = out / "cqd_teacher" / "seed0" / "student.pt"
    cqd_teacher_fit = out / "cqd_teacher_fit" / "seed0" / "student.pt"
    sr_teacher = out / "sr_teacher" / "seed0" / "student.pt"
    iqa = [f"models.{r}.args.pretrained={trunk}" for r in ("teacher", "student")]
    cnniqa = [f"models.{r}.args.pretrained={cnniqa_start}" for r in ("teacher", "student")]
    cqd = [f"models.student.args.pretrained={cqd_start}"]
    sr = [f"models.teacher.args.pretrained={sr_teacher}"]
    return {
        "iqa_pretrain": ("iqa_pretrain", (0,), [], False),
        "cqd_pretrain": ("cqd_pretrain", (0,), [], False),
        "cqd_teacher": ("cqd_teacher", (0,), cqd, False),
        "sr_teacher": ("sr_teacher", (0,), [], False),
        "mrkd_baseline": ("mrkd_baseline", SEEDS, iqa, True),
        "mrkd_urkd": ("mrkd_urkd", SEEDS, iqa, True),
        "mrkd": ("mrkd", SEEDS, iqa, True),
        "iqa_pretrain_cnniqa": ("iqa_pretrain_cnniqa", (0,), [], False),
        "mrkd_cnniqa_baseline": ("mrkd_cnniqa_baseline", SEEDS, cnniqa, True),
        "mrkd_cnniqa_urkd": ("mrkd_cnniqa_urkd", SEEDS, cnniqa, True),
        "mrkd_cnniqa": ("mrkd_cnniqa", SEEDS, cnniqa, True),
        "cqd_finetune": ("cqd_finetune", SEEDS, cqd, True),
        "cqd": ("cqd", SEEDS, [*cqd, f"models.teacher.args.pretrained={cqd_teacher}"], True),
        "cqd_teacher_fit": ("cqd_teacher_fit", (0,), cqd, False),
        "cqd_fit": ("cqd", SEEDS, [*cqd, f"models.teacher.args.pretrained={cqd_teacher_fit}"], True),
        "mipkd_scratch": ("mipkd_scratch", SEEDS, [], False),
        "mipkd_logitskd": ("mipkd_logitskd", SEEDS, sr, False),
        "mipkd": ("mipkd", SEEDS, sr, False),
        "mipkd_no_feature_mixer": ("mipkd", ABLATION_SEEDS, [*sr, "distiller.args.feature_mixer=false"], False),
        "mipkd_no_block_mixer": ("mipkd", ABLATION_SEEDS, [*sr, "distiller.args.block_mixer=false"], False),
    }


DEPENDS = {
    "cqd_teacher": ("cqd_pretrain",),
    "cqd_teacher_fit": ("cqd_pretrain",),
    "cqd_fit": ("cqd_pretrain", "cqd_teacher_fit"),
    **{k: ("iqa_pretrain",) for k in ("mrkd_baseline", "mrkd_urkd", "mrkd")},
    **{k: ("iqa_pretrain_cnniqa",) for k in ("mrkd_cnniqa_baseline", "mrkd_cnniqa_urkd", "mrkd_cnniqa")},
    **{k: ("cqd_pretrain", "cqd_teacher") for k in ("cqd_finetune", "cqd")},
    **{k: ("sr_teacher",) for k in ("mipkd_logitskd", "mipkd", "mipkd_no_feature_mixer", "mipkd_no_block_mixer")},
}
#: the order of a ``--worker`` process: the far end of the main process's order first, so the two meet late
WORKER_ORDER = (
    "mipkd_scratch",
    "sr_teacher",
    "mipkd_no_block_mixer",
    "mipkd_no_feature_mixer",
    "mipkd",
    "mipkd_logitskd",
    "cqd_fit",
    "cqd_teacher_fit",
    "cqd",
    "cqd_finetune",
    "iqa_pretrain_cnniqa",
    "mrkd_cnniqa",
    "mrkd_cnniqa_urkd",
    "mrkd_cnniqa_baseline",
    "mrkd",
    "mrkd_urkd",
    "mrkd_baseline",
)


def group_finished(bench: Bench, name: str) -> bool:
    """Every seed's run of the group ``name`` (:func:`jobs`) is finished under ``bench.out``."""
    from distill.experiments.sweep import is_complete

    return all(is_complete(bench.folder(name, s)) for s in jobs(bench.out)[name][1])


def work(bench: Bench, names: Sequence[str], poll: float = 5.0) -> None:
    """A ``--worker`` process: train the runs of the groups ``names`` in this order (after the pre-trained starts
    each needs), skipping runs another process is training, and pass over them again every ``poll`` seconds until
    every run of them is finished (a start another process is still training holds its groups back until then)."""
    while True:
        for name in names:
            bench.job(name)
        if all(group_finished(bench, n) for n in names):
            return
        time.sleep(poll)


def metric(run: dict[str, Any], split: str, role: str, name: str, group: str | None = None) -> float:
    """One reported number of a run's ``results.json``."""
    from distill.run.values import as_float

    res = run["results"][split][role]
    return as_float(res["groups"][group][name] if group is not None else res["overall"][name])


def extract_trunk(student_pt: Path, out: Path) -> Path:
    """The ``trunk.*`` weights of a ``resnet_regressor`` run's ``student.pt`` as a torchvision-layout state dict
    (what ``resnet_regressor``'s ``pretrained`` reads); written once, next to it."""
    if not out.is_file():
        from distill.run.checkpoint import atomic_save, load_checkpoint

        state = load_checkpoint(student_pt)["state_dict"]
        atomic_save({k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}, out)
    return out


# ------------------------------------------------------------------------------------------------ diagnostics
def _distiller_of(folder: Path) -> tuple[Any, Any]:
    """The run's distiller with its final checkpoint's weights, and its recipe."""
    from distill.build import build_distiller
    from distill.recipe.check import load_recipe
    from distill.run.checkpoint import load_checkpoint

    recipe, _ = load_recipe(folder / "recipe.yaml")
    distiller = build_distiller(recipe)
    distiller.load_state_dict(load_checkpoint(folder / "checkpoints" / "last.pt")["distiller"])
    return distiller, recipe


def _batches(dataset: Any, batch_size: int, count: int | None = None) -> list[dict[str, Any]]:
    """The first ``count`` batches (all when None) of ``dataset`` in index order, collated."""
    from torch.utils.data import default_collate

    dataset.set_seed(0)
    dataset.set_epoch(0)
    n = len(dataset) if count is None else min(len(dataset), count * batch_size)
    return [default_collate([dataset[i] for i in range(s, min(n, s + batch_size))]) for s in range(0, n, batch_size)]


def grad_ratio(folder: Path, task: str, distill_terms: Sequence[str]) -> float:
    """||grad of the distillation terms|| / ||grad of the task term|| on the student's parameters, each norm averaged
    over the first :data:`GRAD_BATCHES` training batches of the run's own training set, at its final weights."""
    from distill.build import build_dataset

    distiller, recipe = _distiller_of(folder)
    distiller.train()
    params = [p for p in distiller.models["student"].parameters() if p.requires_grad]
    train = build_dataset(recipe.data.train, recipe.data)
    norms: dict[str, list[float]] = {"task": [], "distill": []}
    torch.manual_seed(0)
    for batch in _batches(train, recipe.train.batch_size, GRAD_BATCHES):
        terms = distiller.training_step(batch)
        for key, loss in (("task", terms[task]), ("distill", sum(terms[t] for t in distill_terms))):
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            norms[key].append(float(torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None))))
    return statistics.fmean(norms["distill"]) / statistics.fmean(norms["task"])


@torch.no_grad()
def mrkd_agreement(folder: Path) -> float:
    """SRCC between the two MRKD models' predictions on the run's test split (final weights)."""
    from scipy import stats

    from distill.build import build_dataset

    distiller, recipe = _distiller_of(folder)
    distiller.eval()
    test = build_dataset(recipe.data.eval["test"], recipe.data)
    t, s = [], []
    for batch in _batches(test, 64):
        t.append(distiller.models["teacher"](batch["input"]))
        s.append(distiller.models["student"](batch["input"]))
    return float(stats.spearmanr(torch.cat(t).numpy(), torch.cat(s).numpy())[0])


@torch.no_grad()
def cqd_views(model_pt: Path, recipe_file: Path, split: str, view: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The classes a model predicts on the ``split`` (``train`` / ``test``) images of a CQD run's target set, seen
    through ``view`` (``input``: the run's low-resolution test view; ``input_clean``: the clean crop), and the labels.
    Both views come from one paired reader built like the run's test split (no augmentation), image order kept."""
    from distill.build import build_dataset
    from distill.deploy.model import load_deployable
    from distill.recipe.check import load_recipe
    from distill.recipe.config import ComponentSpec

    recipe, _ = load_recipe(recipe_file)
    args = {**recipe.data.eval["test"].args, "split": split}
    paired_views = build_dataset(ComponentSpec("cub200_paired", args), recipe.data)
    model, _ = load_deployable(model_pt)
    with torch.no_grad():
        batches = _batches(paired_views, 100)
        predicted = torch.cat([model(b[view]).argmax(1) for b in batches])
    return predicted, torch.cat([b["target"] for b in batches])


def cqd_agreement(student_pt: Path, teacher_pt: Path, recipe_file: Path) -> float:
    """Top-1 agreement (%) of the student on the low-resolution test views with the teacher on the clean ones."""
    student, _ = cqd_views(student_pt, recipe_file, "test", "input")
    teacher, _ = cqd_views(teacher_pt, recipe_file, "test", "input_clean")
    return 100.0 * (student == teacher).float().mean().item()


def cqd_by_teacher(student_pt: Path, teacher_pt: Path, recipe_file: Path) -> dict[str, float]:
    """The student's top-1 (%) on the low-resolution test views where the teacher is right on the clean view and
    where it is wrong, and how often (%) it predicts the teacher's wrong class there."""
    student, labels = cqd_views(student_pt, recipe_file, "test", "input")
    teacher, _ = cqd_views(teacher_pt, recipe_file, "test", "input_clean")
    right = teacher == labels

    def pct(hits: torch.Tensor) -> float:
        return 100.0 * hits.float().mean().item() if hits.numel() else float("nan")

    return {
        "teacher_right": pct(student[right] == labels[right]),
        "teacher_wrong": pct(student[~right] == labels[~right]),
        "repeats_teacher_error": pct(student[~right] == teacher[~right]),
    }


def cqd_teacher_fit(teacher_pt: Path, recipe_file: Path) -> float:
    """The teacher's top-1 (%) on the clean views of the training images: those its soft targets are computed on."""
    predicted, labels = cqd_views(teacher_pt, recipe_file, "train", "input_clean")
    return 100.0 * (predicted == labels).float().mean().item()


@torch.no_grad()
def sr_agreement(student_pt: Path, teacher_pt: Path, recipe_file: Path) -> dict[str, float]:
    """PSNR (Y, crop 2) of the student's output against the teacher's on the valid images; also bicubic's PSNR
    against HR (torch bicubic, not MATLAB's), for the teacher-student gap."""
    from distill.build import build_dataset
    from distill.deploy.model import load_deployable
    from distill.metrics.image import psnr
    from distill.recipe.check import load_recipe

    recipe, _ = load_recipe(recipe_file)
    valid = build_dataset(recipe.data.eval["valid"], recipe.data)
    student, _ = load_deployable(student_pt)
    teacher, _ = load_deployable(teacher_pt)
    agree, bicubic = [], []
    for batch in _batches(valid, 1):
        x, hr = batch["input"], batch["target"]
        agree.append(float(psnr(student(x).clamp(0, 1), teacher(x).clamp(0, 1), 2, True, True)))
        up = torch.nn.functional.interpolate(x, size=hr.shape[-2:], mode="bicubic", align_corners=False)
        bicubic.append(float(psnr(up.clamp(0, 1), hr, 2, True, True)))
    return {"agreement_psnr": statistics.fmean(agree), "bicubic_psnr": statistics.fmean(bicubic)}


# -------------------------------------------------------------------------------------------- the benchmark
def _summary(values: Sequence[float]) -> dict[str, Any]:
    mean, std = mean_std(values)
    return {"values": list(values), "mean": mean, "std": std}


def elapsed_minutes(out: Path, groups: Sequence[str] | None = None) -> float | None:
    """Minutes from the first run's start (its ``recipe.yaml``) to the last run's end (its ``results.json``), over
    the run groups ``groups`` (all under ``out`` when None)."""
    names = ["*"] if groups is None else list(groups)
    starts = [p.stat().st_mtime for g in names for p in out.glob(f"{g}/seed*/recipe.yaml")]
    ends = [p.stat().st_mtime for g in names for p in out.glob(f"{g}/seed*/results.json")]
    return round((max(ends) - min(starts)) / 60, 1) if starts and ends else None


#: the methods in the order of the README block and of a full run
METHODS = ("mrkd", "mrkd_cnniqa", "cqd", "cqd_fit", "mipkd")
LABELS = {
    "mrkd": "MRKD",
    "mrkd_cnniqa": "MRKD (CNNIQA regime)",
    "cqd": "CQD",
    "cqd_fit": "CQD (30-epoch teacher regime)",
    "mipkd": "MiPKD",
}
#: the IQA methods: each an MRKD regime whose runs are the groups ``{key}_baseline``, ``{key}_urkd`` and ``key``
IQA_METHODS = ("mrkd", "mrkd_cnniqa")
#: the run groups (:func:`jobs`) each method's numbers come from, its pre-trained starts first
GROUPS = {
    "mrkd": ("iqa_pretrain", "mrkd_baseline", "mrkd_urkd", "mrkd"),
    "mrkd_cnniqa": ("iqa_pretrain_cnniqa", "mrkd_cnniqa_baseline", "mrkd_cnniqa_urkd", "mrkd_cnniqa"),
    "cqd": ("cqd_pretrain", "cqd_teacher", "cqd_finetune", "cqd"),
    "cqd_fit": ("cqd_pretrain", "cqd_teacher", "cqd_teacher_fit", "cqd_finetune", "cqd", "cqd_fit"),
    "mipkd": (
        "sr_teacher",
        "mipkd_scratch",
        "mipkd_logitskd",
        "mipkd",
        "mipkd_no_feature_mixer",
        "mipkd_no_block_mixer",
    ),
}
#: the ``pretrained`` keys of the saved result that belong to each method
PRETRAINED_KEYS = {
    "mrkd": ("iqa_pretrain_test_srcc",),
    "mrkd_cnniqa": ("iqa_pretrain_cnniqa_test_srcc",),
    "cqd": ("cqd_pretrain_test_top1", "cqd_teacher_clean_top1", "cqd_teacher_low_resolution_top1"),
    "cqd_fit": ("cqd_teacher_fit_clean_top1", "cqd_teacher_fit_low_resolution_top1"),
    "mipkd": ("sr_teacher_psnr", "sr_teacher_psnr_curve"),
}
#: the key each method's last stage adds to its entry (a method is finished when its entry has it)
LAST_STAGE = {
    "mrkd": "grad_ratio",
    "mrkd_cnniqa": "grad_ratio",
    "cqd": "grad_ratio",
    "cqd_fit": "by_teacher",
    "mipkd": "ablation",
}


def is_finished(res: dict[str, Any]) -> bool:
    """Every method is present and its last stage finished."""
    methods = res.get("methods", {})
    return all(m in methods and LAST_STAGE[m] in methods[m] for m in METHODS)


def mrkd_pretrained(bench: Bench) -> dict[str, Any]:
    """The IQA pre-trained start (trained or reused) and its ``pretrained`` keys."""
    (pre,) = bench.job("iqa_pretrain")
    return {"iqa_pretrain_test_srcc": metric(pre, "test", "student", "srcc")}


def mrkd_cnniqa_pretrained(bench: Bench) -> dict[str, Any]:
    """The second MRKD regime's pre-trained CNNIQA (trained or reused) and its ``pretrained`` keys."""
    (pre,) = bench.job("iqa_pretrain_cnniqa")
    return {"iqa_pretrain_cnniqa_test_srcc": metric(pre, "test", "student", "srcc")}


def cqd_pretrained(bench: Bench) -> dict[str, Any]:
    """The recognition pre-trained start and the clean-view teacher, and their ``pretrained`` keys."""
    (cqd_pre,) = bench.job("cqd_pretrain")
    (cqd_teacher,) = bench.job("cqd_teacher")
    return {
        "cqd_pretrain_test_top1": 100 * metric(cqd_pre, "test", "student", "top1"),
        "cqd_teacher_clean_top1": 100 * metric(cqd_teacher, "test", "student", "top1"),
        "cqd_teacher_low_resolution_top1": 100 * metric(cqd_teacher, "test_low_resolution", "student", "top1"),
    }


def mipkd_pretrained(bench: Bench) -> dict[str, Any]:
    """The SR teacher and its ``pretrained`` keys (its PSNR and convergence curve)."""
    (sr_teacher,) = bench.job("sr_teacher")
    return {
        "sr_teacher_psnr": metric(sr_teacher, "valid", "student", "psnr"),
        "sr_teacher_psnr_curve": _psnr_curve(bench.folder("sr_teacher")),
    }


def mrkd_stages(bench: Bench, res: dict[str, Any], stage_done: Callable[[], None], key: str = "mrkd") -> None:
    """An MRKD regime's runs (groups ``{key}_baseline``, ``{key}_urkd``, ``key``) and comparisons into
    ``res["methods"][key]``, then its diagnostics (keyed by role: ``mrkd_baseline``, ``mrkd_urkd``, ``mrkd``)."""
    base, urkd, mrkd = bench.job(f"{key}_baseline"), bench.job(f"{key}_urkd"), bench.job(key)
    srcc = {
        k: [metric(r, "test", "student", "srcc") for r in v]
        for k, v in (("baseline", base), ("urkd", urkd), ("mrkd", mrkd))
    }
    groups = sorted(base[0]["results"]["test"]["student"]["groups"])
    group_mean = {g: statistics.fmean(metric(r, "test", "student", "srcc", g) for r in base) for g in groups}
    hardest = sorted(groups, key=lambda g: group_mean[g])[:2]
    big_teacher = [metric(r, "test", "teacher", "srcc") for r in base]
    res["methods"][key] = {
        "metric": "SRCC",
        "rows": {k: _summary(v) for k, v in srcc.items()},
        "comparisons": {
            "mrkd_vs_baseline": paired(srcc["mrkd"], srcc["baseline"]),
            "mrkd_vs_urkd": paired(srcc["mrkd"], srcc["urkd"]),
            "urkd_vs_baseline": paired(srcc["urkd"], srcc["baseline"]),
        },
        "hardest": {
            f"{g} {KADID_TYPES.get(g, '')}".strip(): paired(
                [metric(r, "test", "student", "srcc", g) for r in mrkd],
                [metric(r, "test", "student", "srcc", g) for r in base],
            )
            for g in hardest
        },
        "gap": paired(big_teacher, srcc["baseline"]) | {"teacher": _summary(big_teacher)},
    }
    stage_done()
    group = {"mrkd_baseline": f"{key}_baseline", "mrkd_urkd": f"{key}_urkd", "mrkd": key}
    res["methods"][key]["agreement"] = {
        k: _summary([mrkd_agreement(bench.folder(group[k], s)) for s in SEEDS]) for k in ("mrkd_baseline", "mrkd")
    }
    res["methods"][key]["grad_ratio"] = {
        k: _summary([grad_ratio(bench.folder(group[k], s), "student", ["mutual"]) for s in SEEDS])
        for k in ("mrkd_urkd", "mrkd")
    }
    stage_done()


#: each CQD regime's teacher group and CQD student group (the fine-tuning baseline, ``cqd_finetune``, has no teacher)
CQD_REGIMES = {"first": ("cqd_teacher", "cqd"), "second": ("cqd_teacher_fit", "cqd_fit")}


def cqd_regime_stages(bench: Bench, res: dict[str, Any], stage_done: Callable[[], None], key: str, regime: str) -> None:
    """One CQD regime's runs and comparison into ``res["methods"][key]``, then its diagnostics: CQD with the regime's
    teacher against fine-tuning (the same runs in every regime)."""
    teacher, students = CQD_REGIMES[regime]
    fine, cqd = bench.job("cqd_finetune"), bench.job(students)
    top1 = {k: [100 * metric(r, "test", "student", "top1") for r in v] for k, v in (("finetune", fine), ("cqd", cqd))}
    res["methods"][key] = {
        "metric": "top-1 %",
        "rows": {k: _summary(v) for k, v in top1.items()},
        "comparisons": {"cqd_vs_finetune": paired(top1["cqd"], top1["finetune"])},
        "gap": {
            "teacher_clean": res["pretrained"][f"{teacher}_clean_top1"],
            "teacher_low_resolution": 100 * metric(cqd[0], "test", "teacher", "top1"),
            "finetune": _summary(top1["finetune"]),
        },
    }
    stage_done()
    teacher_pt = bench.folder(teacher) / "student.pt"
    res["methods"][key]["agreement"] = {
        k: _summary([cqd_agreement(bench.folder(g, s) / "student.pt", teacher_pt, bench.folder(g, s) / "recipe.yaml")
                     for s in SEEDS])
        for k, g in (("cqd_finetune", "cqd_finetune"), ("cqd", students))
    }  # fmt: skip
    res["methods"][key]["grad_ratio"] = {
        "cqd": _summary([grad_ratio(bench.folder(students, s), "task", ["kd"]) for s in SEEDS])
    }
    stage_done()


def cqd_stages(bench: Bench, res: dict[str, Any], stage_done: Callable[[], None]) -> None:
    """CQD's runs and comparison into ``res["methods"]["cqd"]``, then its diagnostics."""
    cqd_regime_stages(bench, res, stage_done, "cqd", "first")


def cqd_fit_pretrained(bench: Bench) -> dict[str, Any]:
    """The second CQD regime's teacher (30 epochs; trained or reused) and its ``pretrained`` keys."""
    bench.job("cqd_pretrain")
    (teacher,) = bench.job("cqd_teacher_fit")
    return {
        "cqd_teacher_fit_clean_top1": 100 * metric(teacher, "test", "student", "top1"),
        "cqd_teacher_fit_low_resolution_top1": 100 * metric(teacher, "test_low_resolution", "student", "top1"),
    }


def cqd_fit_stages(bench: Bench, res: dict[str, Any], stage_done: Callable[[], None]) -> None:
    """The second CQD regime into ``res["methods"]["cqd_fit"]``: CQD with the 30-epoch teacher against the same
    fine-tuning runs, the first regime's diagnostics, then each teacher's fit of its training views and the
    students' top-1 split by whether their regime's teacher is right."""
    cqd_regime_stages(bench, res, stage_done, "cqd_fit", "second")
    entry = res["methods"]["cqd_fit"]
    bench.job("cqd")  # the first regime's CQD students, for its side of the split by teacher
    recipe_file = bench.folder("cqd_fit") / "recipe.yaml"
    entry["teacher_train_fit"] = {
        regime: cqd_teacher_fit(bench.folder(teacher) / "student.pt", recipe_file)
        for regime, (teacher, _) in CQD_REGIMES.items()
    }
    by_teacher: dict[str, Any] = {}
    for regime, (teacher, students) in CQD_REGIMES.items():
        pt = bench.folder(teacher) / "student.pt"
        per_group = {}
        for k, g in (("cqd_finetune", "cqd_finetune"), ("cqd", students)):
            rows = [cqd_by_teacher(bench.folder(g, s) / "student.pt", pt, bench.folder(g, s) / "recipe.yaml")
                    for s in SEEDS]  # fmt: skip
            per_group[k] = {name: _summary([r[name] for r in rows]) for name in rows[0]}
        by_teacher[regime] = per_group
    entry["by_teacher"] = by_teacher


def mipkd_stages(bench: Bench, res: dict[str, Any], stage_done: Callable[[], None]) -> None:
    """MiPKD's runs and comparisons into ``res["methods"]["mipkd"]``, then its diagnostics and the ablation."""
    sr_teacher_pt = bench.folder("sr_teacher") / "student.pt"
    scratch, logits, mipkd = bench.job("mipkd_scratch"), bench.job("mipkd_logitskd"), bench.job("mipkd")
    psnr = {
        k: [metric(r, "valid", "student", "psnr") for r in v]
        for k, v in (("scratch", scratch), ("logits_kd", logits), ("mipkd", mipkd))
    }
    sr_diag = {
        k: [
            sr_agreement(bench.folder(k, s) / "student.pt", sr_teacher_pt, bench.folder(k, s) / "recipe.yaml")
            for s in SEEDS
        ]
        for k in ("mipkd_scratch", "mipkd_logitskd", "mipkd")
    }
    res["methods"]["mipkd"] = {
        "metric": "PSNR dB",
        "rows": {k: _summary(v) for k, v in psnr.items()},
        "comparisons": {
            "mipkd_vs_scratch": paired(psnr["mipkd"], psnr["scratch"]),
            "mipkd_vs_logits_kd": paired(psnr["mipkd"], psnr["logits_kd"]),
            "logits_kd_vs_scratch": paired(psnr["logits_kd"], psnr["scratch"]),
        },
        "gap": {
            "teacher": res["pretrained"]["sr_teacher_psnr"],
            "bicubic": sr_diag["mipkd"][0]["bicubic_psnr"],
            "scratch": _summary(psnr["scratch"]),
        },
        "agreement": {k: _summary([d["agreement_psnr"] for d in v]) for k, v in sr_diag.items()},
    }
    stage_done()
    res["methods"]["mipkd"]["grad_ratio"] = {
        "logits_kd": _summary([grad_ratio(bench.folder("mipkd_logitskd", s), "task", ["kd"]) for s in SEEDS]),
        "mipkd": _summary([grad_ratio(bench.folder("mipkd", s), "task", ["kd", "feat", "block"]) for s in SEEDS]),
    }
    stage_done()
    ablation: dict[str, Any] = {}
    full = psnr["mipkd"][: len(ABLATION_SEEDS)]
    for name, override in (
        ("no_feature_mixer", "distiller.args.feature_mixer=false"),
        ("no_block_mixer", "distiller.args.block_mixer=false"),
    ):
        runs = bench.job(f"mipkd_{name}")
        values = [metric(r, "valid", "student", "psnr") for r in runs]
        ablation[name] = {"override": override, **_summary(values), "full_minus_ablated": paired(full, values)}
    ablation["logits_kd_only"] = {
        "override": "(mipkd_logitskd.yaml)",
        **_summary(psnr["logits_kd"][: len(ABLATION_SEEDS)]),
        "full_minus_ablated": paired(full, psnr["logits_kd"][: len(ABLATION_SEEDS)]),
    }
    res["methods"]["mipkd"]["ablation"] = ablation
    res["ablation_seeds"] = list(ABLATION_SEEDS)  # written with the ablation, so a MiPKD-only rerun updates it


#: each method's pre-trained starts (run before any method's stages, in :data:`METHODS` order) and its stages
PRETRAIN: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "mrkd": mrkd_pretrained,
    "mrkd_cnniqa": mrkd_cnniqa_pretrained,
    "cqd": cqd_pretrained,
    "cqd_fit": cqd_fit_pretrained,
    "mipkd": mipkd_pretrained,
}
STAGES: dict[str, Callable[[Bench, dict[str, Any], Callable[[], None]], None]] = {
    "mrkd": mrkd_stages,
    "mrkd_cnniqa": lambda bench, res, done: mrkd_stages(bench, res, done, "mrkd_cnniqa"),
    "cqd": cqd_stages,
    "cqd_fit": cqd_fit_stages,
    "mipkd": mipkd_stages,
}


def keep_others(previous: dict[str, Any], only: Sequence[str]) -> dict[str, Any]:
    """``previous`` (a saved result) without what the methods ``only`` will replace: their ``methods`` entries,
    their ``pretrained`` keys and their runs' timings; everything else (the other methods' entries, which carry their
    provenance, and the top-level fields that stand for the provenance of entries saved without one) is kept as is."""
    res = json.loads(json.dumps(previous))
    groups = {g for m in only for g in GROUPS[m]}
    keys = {k for m in only for k in PRETRAINED_KEYS[m]}
    res["methods"] = {k: v for k, v in res.get("methods", {}).items() if k not in only}
    res["pretrained"] = {k: v for k, v in res.get("pretrained", {}).items() if k not in keys}
    res["timings"] = {k: v for k, v in res.get("timings", {}).items() if k.split("/")[0] not in groups}
    res["complete"] = False
    return res


def run_benchmark(
    out: Path,
    save: Callable[[dict[str, Any]], None],
    threads: int = 1,
    workers: int = 0,
    only: Sequence[str] | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or reuse) every run of the regime, then the diagnostics; ``save`` is called after every stage.

    ``only``: just these methods (their pre-trained starts, then their stages); with ``previous`` (a saved result)
    the other methods' entries, ``pretrained`` keys and timings are kept from it untouched. Each method measured here
    gets a ``measured`` record (:func:`provenance`): date, machine, threads, worker processes, elapsed and run wall
    minutes of this session (and for MRKD the IQA split)."""
    torch.set_num_threads(threads)
    bench = Bench(out)
    names = [m for m in METHODS if only is None or m in only]
    session = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": machine_info(),
        "threads": threads,
        "worker_processes": workers,
        "out": str(out),
    }
    kept = previous if only is not None else None  # a full run starts a new result
    merged = kept is not None
    if kept is not None:
        res = keep_others(kept, names)
    else:
        res = {
            "benchmark": "effect",
            "complete": False,
            "machine": session["machine"],
            "seeds": list(SEEDS),
            "out": str(out),
            "worker_processes": workers,
            "iqa_split": IQA_SPLIT,
            "methods": {},
        }
    again = set(kept.get("methods", {})) if kept is not None else set()  # methods this run measures again
    kept_timings = dict(res.get("timings", {}))
    groups = [g for m in names for g in GROUPS[m]]
    started = time.perf_counter()

    def stage_done() -> None:
        timings = {k: v for k, v in bench.timings.items() if k.split("/")[0] in groups}
        wall, elapsed = round(sum(timings.values()) / 60, 1), elapsed_minutes(out, groups)
        if not merged:
            res["wall_minutes_runs"], res["elapsed_minutes"] = wall, elapsed
        res["timings"] = {**kept_timings, **timings}
        record = {**session, "elapsed_minutes": elapsed, "wall_minutes_runs": wall}
        for m in names:
            if m in res["methods"]:
                res["methods"][m]["measured"] = (
                    record
                    | ({"iqa_split": IQA_SPLIT} if m in IQA_METHODS else {})
                    | ({"re_measured": True} if m in again else {})
                )
        res["complete"] = is_finished(res)
        save(res)

    # ---------------------------------------------------------------- pre-trained starts (seed 0, no split seed)
    pretrained = {}
    for m in names:
        pretrained.update(PRETRAIN[m](bench))
    res["pretrained"] = {**res.get("pretrained", {}), **pretrained}
    stage_done()
    for m in names:
        STAGES[m](bench, res, stage_done)
    if not merged:
        res["session_wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
    stage_done()
    return res


def _psnr_curve(folder: Path) -> list[list[float]]:
    """[step, PSNR] of every evaluation in a run's ``metrics.jsonl`` (the teacher's convergence)."""
    curve = []
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "eval" and rec.get("split") == "valid":
            curve.append([rec["step"], float(rec["results"]["student"]["overall"]["psnr"])])
    return curve


# ---------------------------------------------------------------------------------------------- the README block
def _f(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _pm(summary: dict[str, Any], digits: int) -> str:
    return f"{_f(summary['mean'], digits)} ± {_f(summary['std'], digits)}"


def _diff(cmp: dict[str, Any], digits: int) -> str:
    low, high = cmp["ci"]
    return f"{cmp['mean_diff']:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def verdict(cmp: dict[str, Any], method: str, baseline: str) -> str:
    """One sentence that follows from the interval."""
    if cmp["shown"] == "better":
        return f"{method} beats {baseline}: effect shown (the 95 % interval lies above zero)"
    if cmp["shown"] == "worse":
        return f"{method} is below {baseline}: the opposite effect is shown (the 95 % interval lies below zero)"
    return f"no effect shown: the 95 % interval includes zero ({method} vs {baseline})"


def _comparison_rows(method: dict[str, Any], names: dict[str, tuple[str, str]], digits: int) -> list[str]:
    rows = []
    for key, (m, b) in names.items():
        cmp = method["comparisons"][key]
        sign = f"{cmp['positive']}/{cmp['n']}"
        rows.append(
            f"| {m} vs {b} | {_pm(method['rows'][_row_key(m)], digits)} | {_pm(method['rows'][_row_key(b)], digits)} "
            f"| {_diff(cmp, digits)} | {sign} | {cmp['n']} | {verdict(cmp, m, b)} |"
        )
    return rows


def _row_key(label: str) -> str:
    return {
        "MRKD": "mrkd",
        "URKD": "urkd",
        "baseline": "baseline",
        "CQD": "cqd",
        "fine-tuning": "finetune",
        "MiPKD": "mipkd",
        "scratch": "scratch",
        "logits KD": "logits_kd",
    }[label]


MECHANISMS = (
    "**Mechanism tests** (`tests/test_mechanisms.py`, default suite, toy problems whose answer is known, through the "
    "project's own distillers): a student trained only on CQD's soft-target term (labels replaced by noise) reaches "
    "the teacher's decisions; MRKD's mutual term (alpha 1 against alpha 0, same data and initialisations) lowers the "
    "two models' disagreement; CQD's clean-view soft targets raise a noisy-view student's agreement with the teacher "
    "above what noisy labels alone give. Each compares the mechanism with the same training without it."
)

HEADER = (
    "| comparison | method mean ± std | baseline mean ± std | mean paired diff [95 % CI] | method higher | n "
    "| verdict |"
)
RULE = "|---|---|---|---|---|---|---|"


def agreement_change(a: dict[str, Any], method: str, baseline: str, digits: int) -> tuple[str, str]:
    """(``raises`` / ``lowers`` / ``does not measurably change``, "a → b, paired d [lo, hi]") of a paired agreement."""
    cmp = paired(a[method]["values"], a[baseline]["values"])
    verb = {"better": "raises", "worse": "lowers"}.get(cmp["shown"] or "", "does not measurably change")
    return verb, f"{_f(a[baseline]['mean'], digits)} → {_f(a[method]['mean'], digits)}, paired {_diff(cmp, digits)}"


def mrkd_reading(m: dict[str, Any], shown_elsewhere: int = 0, compared: int = 3) -> str:
    """What the MRKD diagnostics say, by rule from the saved numbers (each claim from its paired interval).

    ``shown_elsewhere``: intervals excluding zero among the other MRKD regimes' comparisons; ``compared``: how many
    MRKD comparisons there are in all (for the note on a lone interval that only just excludes zero)."""
    gap = m["gap"]
    better = gap["shown"] == "better"
    text = (
        "the large-lr model is shown better than its student before distillation"
        if better
        else "the large-lr model is not shown better than its student before distillation (the mechanism needs it to "
        "be)"
    )
    base, urkd = m["comparisons"]["mrkd_vs_baseline"], m["comparisons"]["mrkd_vs_urkd"]
    gain = base["shown"] == "better"
    if "agreement" in m:
        verb, change = agreement_change(m["agreement"], "mrkd", "mrkd_baseline", 3)
        text += f"; the mutual term {verb} the two models' agreement ({change})"
        if not better and not gain:
            text += (
                ", and agreement with a model that is no better does not lift the student"
                if verb == "raises"
                else ", so in this regime the mutual term neither pulls the models together nor lifts the student"
            )
    if gain:
        text += (
            f"; the student ends above the baseline ({_diff(base, 4)}, higher in {base['positive']}/{base['n']})"
            + (" although its partner is not shown better" if not better else "")
        )
        text += (
            "; MRKD is also shown above URKD, so the gain is tied to the unequal learning rates"
            if urkd["shown"] == "better"
            else "; MRKD is not shown above URKD (equal learning rates), so the gain is not shown to come from the "
            "paper's unequal rates"
        )
        shown = shown_elsewhere + sum(c["shown"] is not None for c in m["comparisons"].values())
        near = base["ci"][0] < 0.1 * base["mean_diff"]
        if near:
            verb = "excludes" if shown == 1 else "exclude"
            text += (
                f". The interval's lower end is {base['ci'][0]:+.4f}, and {shown} of the {compared} MRKD intervals "
                f"(both regimes, 95 % each, not corrected for multiple comparisons) {verb} zero: weak evidence of a "
                "small effect"
            )
    return text + "."


def cqd_reading(c: dict[str, Any], fit: dict[str, float] | None = None, second: bool = False) -> str:
    """What the CQD diagnostics say, by rule from the saved numbers (each claim from its paired interval). ``fit``:
    each regime's teacher's top-1 on its clean training views (the second regime's diagnostic), when measured;
    ``second``: ``c`` is the second regime's entry."""
    gap, cmp = c["gap"], c["comparisons"]["cqd_vs_finetune"]
    margin = gap["teacher_clean"] - gap["finetune"]["mean"]
    text = f"the clean-view teacher is {_f(margin, 2)} points above the fine-tuned student"
    if "agreement" in c:
        ratio = c["grad_ratio"]["cqd"]["mean"]
        size = "dominates" if ratio > 1 else "is smaller than"
        verb, change = agreement_change(c["agreement"], "cqd", "cqd_finetune", 2)
        text += (
            f"; the soft-target term's gradient {size} the CE term's ({_f(ratio, 2)}x) and it {verb} the student's "
            f"agreement with the teacher ({change} points)"
        )
    if second and fit is not None:
        text += (
            f"; its teacher fits {_f(fit['second'], 2)} % of the clean views of its training images (the first "
            f"regime's {_f(fit['first'], 2)} %)"
        )
    if cmp["shown"] == "better":
        text += f", and top-1 follows ({_diff(cmp, 2)} points over fine-tuning, higher in {cmp['positive']}/{cmp['n']})"
    if cmp["shown"] != "better":
        wrong = 100 - gap["teacher_clean"]
        text += f", yet top-1 does not follow; the teacher is wrong on {_f(wrong, 2)} % of the clean test views"
        paper_wrong, paper_gain = paper_low_resolution()
        if wrong <= paper_wrong:
            text += (
                f", which does not explain it: the paper's VGG-M teacher was wrong on {_f(paper_wrong, 1)} % of "
                f"clean CUB test crops and its CQD student still gained {_f(paper_gain, 1)} points over fine-tuning "
                "at low resolution (Table 1, benchmarks/cqd_tables.py)"
            )
            if fit is None or second:
                text += ". The cause is not found here"
            else:
                text += (
                    f". What the second regime below finds: this teacher fits only {_f(fit['first'], 2)} % of the "
                    "clean views of its own training images, on which the soft targets are computed, and the CQD "
                    "student repeats its wrong classes more often than fine-tuning does (split below); trained for the "
                    f"paper's 30 epochs it fits {_f(fit['second'], 2)} %, and it is then also better on the clean test "
                    "views, so that regime does not tell the two apart"
                )
        else:
            text += (
                f", more often than the paper's VGG-M teacher ({_f(paper_wrong, 1)} %, whose CQD student gained "
                f"{_f(paper_gain, 1)} points over fine-tuning at low resolution; Table 1, benchmarks/cqd_tables.py)"
            )
    return text + "."


def paper_low_resolution() -> tuple[float, float]:
    """The paper's low-resolution column (VGG-M, CUB): how often its teacher is wrong on clean test crops (100 −
    oracle top-1) and CQD's gain over fine-tuning, both in points, from :data:`benchmarks.cqd_tables.PAPER_T1`."""
    from benchmarks.cqd_tables import DEGRADATIONS, PAPER_T1

    col = DEGRADATIONS.index("low_resolution")
    oracle, finetune, cqd = (PAPER_T1[row][col] for row in ("Oracle", "Fine-tuning", "CQD"))
    assert oracle is not None and finetune is not None and cqd is not None
    return 100 - oracle, cqd - finetune


def mipkd_reading(p: dict[str, Any]) -> str:
    """What the MiPKD diagnostics say, by rule from the saved numbers."""
    bicubic = p["gap"]["bicubic"]
    below = all(row["mean"] < bicubic for row in p["rows"].values())
    text = f"the teacher is {_f(p['gap']['teacher'] - p['gap']['scratch']['mean'], 2)} dB above the scratch student"
    if below:
        text += (
            f"; every student, the scratch one included, stays below bicubic ({_f(bicubic, 3)} dB) at this budget, so "
            "the differences are measured on under-trained students, not on models worth deploying"
        )
    return text + "."


def provenance(res: dict[str, Any], method: str) -> dict[str, Any]:
    """When and where ``method`` was measured: its entry's ``measured`` record, else (a result saved before methods
    had one) the result's top-level fields, which then stand for every method."""
    entry = res.get("methods", {}).get(method, {})
    if "measured" in entry:
        return entry["measured"]
    record = {k: res[k] for k in ("machine", "worker_processes", "elapsed_minutes", "wall_minutes_runs") if k in res}
    if method == "mrkd" and "iqa_split" in res:
        record["iqa_split"] = res["iqa_split"]
    return record


#: provenance fields that do not tell one measurement from another (a method's own notes)
_OWN = ("iqa_split", "re_measured")


def measurements(res: dict[str, Any]) -> list[tuple[list[str], dict[str, Any]]]:
    """The distinct measurements of the saved methods: (methods, provenance), in date order (records without a date,
    saved before methods had their own, first), then in :data:`METHODS` order. With no method saved yet, the
    top-level fields (if the benchmark has saved any) as one measurement of no method."""
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for m in METHODS:
        if m in res.get("methods", {}):
            prov = provenance(res, m)
            key = json.dumps({k: v for k, v in prov.items() if k not in _OWN}, sort_keys=True)
            groups.setdefault(key, ([], prov))[0].append(m)
    if not groups and "wall_minutes_runs" in res:
        return [([], provenance(res, ""))]
    order = sorted(groups.values(), key=lambda g: (g[1].get("date_utc") or "", METHODS.index(g[0][0])))
    return [(names, prov) for names, prov in order if "wall_minutes_runs" in prov]


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def measured_sentence(prov: dict[str, Any]) -> str:
    """``on MACHINE, torch ..., ... sum to N minutes`` for one measurement."""
    machine = prov["machine"]
    workers = prov.get("worker_processes", 0)
    sharing = f"this process and {workers} `--worker` process(es) shared the runs, " if workers else ""
    when = f"{prov['date_utc']} UTC " if prov.get("date_utc") else ""
    return (
        f"{when}on {machine_label(machine)}, torch {machine['torch']}, {prov.get('threads', machine['threads'])} "
        f"thread(s) per process, under `nice` on a machine shared with other work (1-min load average "
        f"{machine.get('load_1min')} at the start): {sharing}{prov.get('elapsed_minutes')} minutes elapsed from the "
        f"first run's start to the last run's end; the wall times of the runs this benchmark trained sum to "
        f"{prov['wall_minutes_runs']} minutes (a run found finished is not timed again)"
    )


def measured_paragraph(res: dict[str, Any]) -> str:
    """How the numbers were made: one "measured" sentence per distinct measurement (methods re-measured alone by
    ``--only`` get their own), or "not run yet"."""
    found = measurements(res)
    if not found:
        return "Not run yet: `python -m benchmarks.effect --json benchmarks/results/effect_cpu.json --readme`."
    how = (
        "Written by `python -m benchmarks.effect --readme`; re-rendered from `benchmarks/results/effect_cpu.json` by "
        "`python -m benchmarks.effect --from benchmarks/results/effect_cpu.json --readme`."
    )
    if len(found) == 1:
        return f"Measured {measured_sentence(found[0][1])}. {how}"
    parts = []
    for names, prov in found:
        again = all(provenance(res, m).get("re_measured") for m in names)
        split = (
            "after the photo-disjoint split, "
            if "mrkd" in names and provenance(res, "mrkd").get("iqa_split") == IQA_SPLIT
            else ""
        )
        verb = "re-measured" if again else "measured"
        parts.append(f"{_and([LABELS[m] for m in names])}: {verb} {split}{measured_sentence(prov)}.")
    return (
        " ".join(parts) + " " + how.replace("--readme`;", "--readme` (with `--only` for the methods measured apart);")
    )


def mrkd_section(res: dict[str, Any], key: str, title: str, preface: str = "") -> list[str]:
    """The README lines of one MRKD regime's entry ``key``: title, table, diagnostics and reading."""
    m = res.get("methods", {}).get(key)
    lines = [title, ""] + ([preface, ""] if preface else [])
    if m and key == "mrkd" and provenance(res, key).get("iqa_split") != IQA_SPLIT:  # the later regime came after it
        lines += [
            "**Measured under an earlier split:** these MRKD runs (and the IQA pre-training) were measured when the "
            "synthetic sets' by-reference split could put crops of one source photo on both sides; the split is now "
            "photo-disjoint, so a rerun of `python -m benchmarks.effect` trains on other splits and gives other "
            "numbers (the README quickstart's test SRCC fell with the same change: docs/quickstarts.md).",
            "",
        ]
    if m:
        lines += [
            HEADER,
            RULE,
            *_comparison_rows(
                m,
                {
                    "mrkd_vs_baseline": ("MRKD", "baseline"),
                    "mrkd_vs_urkd": ("MRKD", "URKD"),
                    "urkd_vs_baseline": ("URKD", "baseline"),
                },
                4,
            ),
            "",
        ]
        gap = m["gap"]
        diag = [
            f"- Gap before distillation: the alpha-0 large-lr model {_pm(gap['teacher'], 4)} vs its student "
            f"{_pm(m['rows']['baseline'], 4)}, paired {_diff(gap, 4)} "
            f"(teacher higher in {gap['positive']}/{gap['n']}).",
        ]
        if "agreement" in m:
            a, g = m["agreement"], m["grad_ratio"]
            diag += [
                f"- Agreement (SRCC between the two models' test predictions): without the mutual term (alpha 0) "
                f"{_pm(a['mrkd_baseline'], 3)}, with it (MRKD) {_pm(a['mrkd'], 3)}.",
                f"- Gradient norm of the mutual term / the student's MSE term on the student (final weights, "
                f"{GRAD_BATCHES} training batches): MRKD {_pm(g['mrkd'], 3)}, URKD {_pm(g['mrkd_urkd'], 3)}.",
            ]
        hard = "; ".join(f"{g}: {_diff(c, 4)}, MRKD higher {c['positive']}/{c['n']}" for g, c in m["hardest"].items())
        diag.append(f"- Hardest distortion types (lowest mean baseline SRCC), MRKD − baseline: {hard}.")
        others = [e for k, e in res.get("methods", {}).items() if k in IQA_METHODS and k != key]
        shown = sum(c["shown"] is not None for e in others for c in e["comparisons"].values())
        compared = sum(len(e["comparisons"]) for e in [m, *others])
        diag.append(f"- Reading: {mrkd_reading(m, shown, compared)}")
        lines += [*diag, ""]
    else:
        lines += ["not run yet", ""]
    return lines


def cqd_section(res: dict[str, Any], key: str, title: str, preface: str | None = None) -> list[str]:
    """The README lines of one CQD regime: its table, diagnostics and reading ("not run yet" when absent)."""
    lines = [title, ""] + ([preface, ""] if preface else [])
    c = res.get("methods", {}).get(key)
    if not c:
        return [*lines, "not run yet", ""]
    lines += [HEADER, RULE, *_comparison_rows(c, {"cqd_vs_finetune": ("CQD", "fine-tuning")}, 2), ""]
    gap = c["gap"]
    diag = [
        f"- Gap before distillation: the teacher on clean test views {_f(gap['teacher_clean'], 2)}, on the "
        f"low-resolution views (no adaptation) {_f(gap['teacher_low_resolution'], 2)}; the fine-tuned student "
        f"{_pm(gap['finetune'], 2)}.",
    ]
    if "agreement" in c:
        a = c["agreement"]
        diag += [
            f"- Agreement (top-1 % of the student on low-resolution views with the teacher on clean views): "
            f"fine-tuning {_pm(a['cqd_finetune'], 2)}, CQD {_pm(a['cqd'], 2)}.",
            f"- Gradient norm of lambda x soft-target CE / the CE term on the student (final weights, "
            f"{GRAD_BATCHES} training batches): {_pm(c['grad_ratio']['cqd'], 3)}.",
        ]
    if "by_teacher" in c:
        fit = c["teacher_train_fit"]
        diag.append(
            f"- The teacher's top-1 on the clean views of its own training images (where CQD's soft targets are "
            f"computed): first regime {_f(fit['first'], 2)}, this regime {_f(fit['second'], 2)}."
        )
        for regime, label in (("first", "the first regime's teacher"), ("second", "this regime's teacher")):
            b = c["by_teacher"][regime]
            diag.append(
                f"- Split by {label} on the clean test view (CQD with that teacher against fine-tuning), student "
                f"top-1 where it is right: fine-tuning "
                f"{_pm(b['cqd_finetune']['teacher_right'], 2)}, CQD {_pm(b['cqd']['teacher_right'], 2)}; where it is "
                f"wrong: fine-tuning {_pm(b['cqd_finetune']['teacher_wrong'], 2)}, CQD "
                f"{_pm(b['cqd']['teacher_wrong'], 2)}; the student repeats the teacher's wrong class: fine-tuning "
                f"{_pm(b['cqd_finetune']['repeats_teacher_error'], 2)} %, "
                f"CQD {_pm(b['cqd']['repeats_teacher_error'], 2)} %."
            )
    fit = c.get("teacher_train_fit") or res.get("methods", {}).get("cqd_fit", {}).get("teacher_train_fit")
    diag.append(f"- Reading: {cqd_reading(c, fit, second=key == 'cqd_fit')}")
    return [*lines, *diag, ""]


def render(res: dict[str, Any]) -> str:
    """The README block: regime, per method the table and the diagnostics, then how it was made."""
    lines = [REGIME, ""]
    methods = res.get("methods", {})
    if not res.get("complete"):
        lines += ["**PARTIAL RESULTS**: the benchmark has not finished every stage; missing methods are marked.", ""]
    lines += mrkd_section(res, "mrkd", "### MRKD (blind IQA), student test SRCC")
    lines += mrkd_section(
        res,
        "mrkd_cnniqa",
        "### MRKD, second regime (CNNIQA), student test SRCC",
        SECOND_MRKD_REGIME,
    )
    lines += cqd_section(res, "cqd", "### CQD (recognition under degradation), top-1 % on low-resolution test views")
    lines += cqd_section(
        res,
        "cqd_fit",
        "### CQD, second regime (30-epoch teacher), top-1 % on low-resolution test views",
        SECOND_CQD_REGIME,
    )
    p = methods.get("mipkd")
    lines += ["### MiPKD (super-resolution x2), PSNR dB on the valid images", ""]
    if p:
        lines += [
            HEADER,
            RULE,
            *_comparison_rows(
                p,
                {
                    "mipkd_vs_scratch": ("MiPKD", "scratch"),
                    "mipkd_vs_logits_kd": ("MiPKD", "logits KD"),
                    "logits_kd_vs_scratch": ("logits KD", "scratch"),
                },
                3,
            ),
            "",
        ]
        gap, a = p["gap"], p["agreement"]
        diag = [
            f"- Gap before distillation: teacher {_f(gap['teacher'], 3)}, scratch student {_pm(gap['scratch'], 3)}, "
            f"bicubic {_f(gap['bicubic'], 3)} (torch bicubic). Teacher PSNR by iteration: "
            + ", ".join(f"{int(s)}: {_f(v, 3)}" for s, v in res["pretrained"]["sr_teacher_psnr_curve"])
            + ".",
            f"- Agreement (PSNR of the student's output against the teacher's): scratch {_pm(a['mipkd_scratch'], 3)}, "
            f"logits KD {_pm(a['mipkd_logitskd'], 3)}, MiPKD {_pm(a['mipkd'], 3)}.",
        ]
        if "grad_ratio" in p:
            g = p["grad_ratio"]
            diag.append(
                f"- Gradient norm of the distillation terms / the L1-to-HR term on the student (final weights, "
                f"{GRAD_BATCHES} training batches): logits KD {_pm(g['logits_kd'], 3)}, MiPKD (kd + feat + block) "
                f"{_pm(g['mipkd'], 3)}."
            )
        if "ablation" in p:
            parts = []
            for name, label in (
                ("no_feature_mixer", "without the feature mixer"),
                ("no_block_mixer", "without the block mixer"),
                ("logits_kd_only", "logits KD only"),
            ):
                abl = p["ablation"][name]
                cmp = abl["full_minus_ablated"]
                parts.append(f"{label} {_pm(abl, 3)} (full − this {_diff(cmp, 3)}, n {cmp['n']})")
            n_ablation = p["ablation"]["no_feature_mixer"]["full_minus_ablated"]["n"]
            smaller = " (smaller n to fit the budget)" if n_ablation < len(res["seeds"]) else ""
            diag.append(f"- Per-term ablation on seeds 0–{n_ablation - 1}{smaller}: " + "; ".join(parts) + ".")
        diag.append(f"- Reading: {mipkd_reading(p)}")
        lines += [*diag, ""]
    else:
        lines += ["not run yet", ""]
    lines += [MECHANISMS, ""]
    lines.append(measured_paragraph(res))
    return "\n".join(lines)


def parse_only(parser: argparse.ArgumentParser, value: str | None) -> list[str] | None:
    """``--only mrkd,cqd`` as method names in :data:`METHODS` order; an unknown name is a usage error."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        parser.error(
            f"--only {value}: unknown method {bad[0] if bad else '(none given)'!r} (choices: {', '.join(METHODS)})"
        )
    return [m for m in METHODS if m in names]


def _is_effect_result(path: Path) -> bool:
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(res, dict) and res.get("benchmark") == "effect" and isinstance(res.get("methods"), dict)


def previous_result(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any] | None:
    """With ``--only``: the existing ``--json`` file (a saved effect result, which ``--only`` updates in place;
    any other existing file is refused unless ``--force``), else None; ``--out`` is checked as always."""
    from distill.errors import DistillError
    from distill.run.safe_write import check_new_file

    guard_outputs(parser, args, files=())
    if args.json is None:
        return None
    try:
        check_new_file(args.json, "--json", force=args.force, replaceable=_is_effect_result)
    except DistillError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    return json.loads(args.json.read_text()) if _is_effect_result(args.json) else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.effect", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/effect"), help="run folders (reused when finished)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--workers", type=int, default=0, help="how many --worker processes share --out (recorded, for the block)"
    )
    parser.add_argument("--regime-only", action="store_true", help="write the README block with the regime only")
    parser.add_argument(
        "--worker",
        action="store_true",
        help="only train runs (from the far end of the order, skipping runs another process is training) into the "
        "same --out, so a second process shares the work, until every run is finished (with --only: those methods' "
        "runs); no diagnostics, no --json",
    )
    parser.add_argument(
        "--only",
        metavar="METHOD[,METHOD...]",
        help=f"measure only these methods ({', '.join(METHODS)}); an existing --json file keeps the other methods' "
        "saved numbers, pre-trained results, timings and provenance and gets these methods' new ones",
    )
    add_result_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    only = parse_only(parser, args.only)
    previous = None
    if only is not None:
        if args.saved is not None:
            parser.error("--only measures methods again; --from re-renders a saved file: give one of them")
        previous = previous_result(parser, args)
        saved = None
    else:
        saved = saved_result(parser, args)
    from benchmarks._common import write_readme_block

    if args.worker:
        torch.set_num_threads(args.threads)
        groups = {g for m in only or METHODS for g in GROUPS[m]}
        work(Bench(args.out, wait=False), [name for name in WORKER_ORDER if name in groups])
        return
    if args.regime_only:
        text = render({"methods": {}, "complete": True})
        print(text)
        if args.readme:
            write_readme_block(BLOCK, text)
        return
    if saved is not None:
        res = saved
    else:
        from distill import quiet

        quiet.install(False)

        def save(partial: dict[str, Any]) -> None:
            if args.json is not None:
                write_text(args.json, json.dumps(partial, indent=1, default=float) + "\n")  # a kill keeps the last
            if args.readme:
                write_readme_block(BLOCK, render(partial))

        res = run_benchmark(args.out, save, args.threads, args.workers, only, previous)
    text = render(res)
    print(text)
    if args.readme:
        write_readme_block(BLOCK, text)


if __name__ == "__main__":
    main()
