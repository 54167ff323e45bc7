"""The one training loop every distiller runs in.

The trainer owns everything that is not the method: data order, per-group optimizers and schedules, precision,
gradient clipping, non-finite detection, evaluation and model selection, logging, atomic checkpoints and resume.
Resuming continues to the same weights as an uninterrupted run (bit-identical on CPU with the same seed) because
the data order is a function of (seed, epoch), augmentation draws from per-item generators, the learning rate is a
function of the step, and checkpoints carry the optimizer, scaler and global RNG states.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from distill.data.base import as_distill_dataset
from distill.data.loading import EpochBatchSource, EpochItems
from distill.distillers.base import Distiller, StepContext
from distill.engine import distributed as dist_utils
from distill.engine import ema as ema_utils
from distill.engine import outputs, runtime, trainer_state
from distill.engine.batches import channels_last, move_to
from distill.engine.evaluator import Evaluator
from distill.engine.interrupt import StopRequests
from distill.engine.optim import build_optimizer
from distill.engine.run_log import Console, RunLogger
from distill.engine.runtime import resolve_device, seed_everything
from distill.engine.schedules import Schedule
from distill.engine.selection import Selection
from distill.engine.teacher_cache import TeacherOutputs
from distill.engine.teacher_cache import prepare as prepare_teacher_cache
from distill.engine.trackers import open_trackers
from distill.errors import DistillError, RecipeError, check_names
from distill.recipe.check import check_training_numbers
from distill.recipe.config import EvalConfig, OptimConfig, OutputConfig, TrainConfig
from distill.run import folder as run_folder
from distill.run.checkpoint import (
    atomic_save,
    load_checkpoint,
    preserved_rng,
)
from distill.run.folder import Results, RunResult
from distill.run.interrupted import resume_line
from distill.run.layout import RunFolder


class Trainer:
    """Trains a :class:`Distiller` on a dataset; identical for every distillation method.

    Args:
        distiller: the method (models, trainable groups, loss terms).
        train_set: the training dataset (items as in :mod:`distill.data.base`).
        eval_sets: named evaluation splits, e.g. ``{"val": ..., "test": ...}``.
        optim: one :class:`OptimConfig` per trainable group of the distiller.
        config: loop settings (length, batch size, device, precision, seed, logging, failure policy).
        evaluation: metrics, grouping and the selection policy.
        out_dir: where checkpoints, ``metrics.jsonl``, ``results.json`` and ``student.pt`` go (None: nowhere).
        recipe: the resolved recipe mapping, stored in checkpoints to refuse resuming under a different recipe.
    """

    def __init__(
        self,
        distiller: Distiller,
        train_set: Dataset,
        eval_sets: Mapping[str, Dataset] | None = None,
        *,
        optim: Mapping[str, OptimConfig],
        config: TrainConfig,
        evaluation: EvalConfig | None = None,
        out_dir: str | Path | None = None,
        recipe: dict[str, Any] | None = None,
        tensorboard: bool | str = "auto",
        output: OutputConfig | None = None,
    ) -> None:
        self.distiller = distiller
        self.train_set = as_distill_dataset(train_set)
        self.eval_sets = {name: as_distill_dataset(ds) for name, ds in (eval_sets or {}).items()}
        check_training_numbers(config, optim)  # what a recipe's checks refuse, refused for the Python API too
        self.config = config
        self.evaluation = evaluation or EvalConfig()
        if self.eval_sets and self.evaluation.metrics is None:
            raise RecipeError(
                "eval.metrics: not set; name the metrics to evaluate (distill.build fills them in from the "
                "student's task with distill.tasks.resolve_metrics)"
            )
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.recipe = recipe
        self.tensorboard = tensorboard
        self.output = output  # output.trackers: W&B / MLflow runs opened by fit (distill.engine.trackers)
        self.dist = dist_utils.init_distributed(resolve_device(config.device))
        self.device = self.dist.device
        runtime.check_batching(config, self.dist.world_size, len(train_set))  # type: ignore[arg-type]
        groups = distiller.param_groups()
        check_names(
            f"optim: distiller '{type(distiller).__name__}' trains groups",
            groups,
            optim,
            extra_label="not trained by this distiller",
        )
        self.distiller.to(self.device)
        if config.channels_last:
            self.distiller.to(memory_format=torch.channels_last)
        self.optim_cfg = {g: optim[g] for g in groups}
        self.ema = ema_utils.for_distiller(distiller, config.ema.decay) if config.ema is not None else None
        ratios = distiller.lr_ratios()  # parameters trained at a multiple of their group's rate (HyperIQA)
        self.optimizers = {g: build_optimizer(params, optim[g], ratios) for g, params in groups.items()}
        self.group_params = groups
        self.ddp: nn.Module | None = None
        if self.dist.enabled:
            find_unused = config.find_unused_parameters
            if find_unused is None:
                find_unused = distiller.has_stochastic_paths
            self.ddp = dist_utils.wrap_ddp(distiller, self.dist, find_unused, config.sync_batchnorm)
        self._step_fn: Callable[[dict[str, Any]], dict[str, torch.Tensor]] = distiller.training_step
        if config.compile:  # compiles the step, not the modules: checkpoints keep the models' own keys
            if self.ddp is not None:
                self.ddp = torch.compile(self.ddp)  # type: ignore[assignment]
            else:
                self._step_fn = torch.compile(distiller.training_step)  # type: ignore[assignment]
        self.steps_per_epoch = self._steps_per_epoch()
        self.total_steps = config.iterations or config.epochs * self.steps_per_epoch  # type: ignore[operator]
        self.schedules = {
            g: Schedule(cfg.lr, cfg.schedule, self.total_steps, self.steps_per_epoch)
            for g, cfg in self.optim_cfg.items()
        }
        self.evaluator = Evaluator(
            self.evaluation.metrics or [], self.evaluation.metric_args, self.evaluation.group_by, self.evaluation.models
        )
        self.evaluator.channels_last = config.channels_last
        self.scaler = runtime.make_scaler(config.precision, self.device)
        self.step = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.skipped = 0
        self.history: list[dict[str, Any]] = []
        self.selection = Selection(self.evaluation, distiller.student_role)
        self.teacher_outputs: TeacherOutputs | None = None  # cached frozen-teacher outputs (teacher_cache.py)
        self._batch_source: EpochBatchSource | None = None  # the persistent training loader's (num_workers > 0)
        self._train_loader: DataLoader | None = None
        self.predictions: dict[str, dict[str, Any]] = {}  # split → last evaluation's per-sample predictions
        #: called on the main rank with the run's result before ``results.json``, the file that marks a run
        #: finished, is written: what else a finished run must hold (``build_run``: the report data)
        self.before_results: list[Callable[[RunResult], object]] = []
        self.console = Console(
            config.progress and self.dist.is_main,
            self.total_steps,
            self.steps_per_epoch,
            config.epochs,
            self.selection.metric,
            write=lambda line: tqdm.write(line, file=sys.stderr),
        )
        self.running: dict[str, float] = {}  # loss sums since the last logged train record (checkpointed)
        self.n_running = 0
        self._last_save = time.monotonic()
        self._saved_step: int | None = None  # the step of the last checkpoint this process wrote or loaded
        self._stop: StopRequests | None = None  # SIGINT/SIGTERM handling while the loop runs (engine/interrupt.py)

    # ------------------------------------------------------------------------------------------------ set-up bits
    def _steps_per_epoch(self) -> int:
        n = len(self.train_set)  # type: ignore[arg-type]
        return dist_utils.batches_per_epoch(n, self.config.batch_size, self.config.drop_last, self.dist.world_size)

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward-pass precision context (autocast for fp16/bf16, nothing for fp32)."""
        return runtime.autocast(self.config.precision, self.device)

    def _loader(self, dataset: Dataset, batch_sampler: Sampler[list[int]] | None = None, **kw: Any) -> DataLoader:
        # A private generator keeps DataLoader's worker-seed draw off the global RNG, which resume restores.
        generator = torch.Generator()
        generator.manual_seed(self.config.seed * 7919 + self.epoch)
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
            **kw,
        )

    def _train_batches(self, sampler: Sampler[list[int]]) -> DataLoader:
        """The training loader serving ``sampler``'s batches: with workers, one persistent loader for the whole run
        (workers start once; items keyed by (seed, epoch, index) so every worker count gives the same batches)."""
        if self.config.num_workers == 0:
            return self._loader(self.train_set, sampler)
        if self._batch_source is None or self._train_loader is None:
            self._batch_source = EpochBatchSource()
            self._train_loader = self._loader(EpochItems(self.train_set), self._batch_source, persistent_workers=True)
        self._batch_source.set(sampler, self.config.seed, self.epoch)
        return self._train_loader

    def _checkpoint_path(self) -> Path | None:
        return run_folder.checkpoint_path(self.out_dir)

    # --------------------------------------------------------------------------------------------------- fitting
    def fit(self, resume: bool = False) -> RunResult:
        """Train to the configured length (continuing from the last checkpoint when ``resume``); no other process
        may train into the same run folder meanwhile (:mod:`distill.run.lock`)."""
        with outputs.holding_run_folder(self.out_dir, self.dist):
            return self._fit(resume)

    def _fit(self, resume: bool) -> RunResult:
        seed_everything(dist_utils.derived_seed(self.config.seed, self.dist.rank), self.config.deterministic)
        ckpt_path = self._checkpoint_path()
        if self.out_dir is not None:
            outputs.open_run_folder(self.out_dir, resume, self.dist)
        # only rank 0 logs; the others get a logger that writes nowhere
        main_dir = self.out_dir if self.dist.is_main else None
        trackers = open_trackers(self.output, main_dir, self.recipe, resume)
        logger = RunLogger(main_dir, self.tensorboard, trackers)  # type: ignore[arg-type]
        if resume:
            self.load_state(load_checkpoint(ckpt_path, self.device))  # type: ignore[arg-type]
            kept = logger.truncate_after(self.step)
            # the evaluations before the checkpoint, for what reads the whole history (the per-distortion plot)
            self.history = [r for r in kept if r.get("kind") == "eval"]
            self._saved_step = self.step
            if self.dist.is_main:
                print(resume_line(self.step, self.total_steps, self.out_dir), file=sys.stderr, flush=True)
        else:  # records of an earlier attempt that died before its first checkpoint
            logger.truncate_after(0)
        self.console.start(self.out_dir, self.step)
        self.teacher_outputs = prepare_teacher_cache(self.distiller, self.train_set, self.config, self.device,
                                                     out_dir=self.out_dir, autocast=self.autocast(),
                                                     dist=self.dist)  # fmt: skip
        try:
            with StopRequests(self) as self._stop:  # a signal saves a checkpoint at the next step boundary
                self._train(logger)
            result = self._finish()
            logger.log_outputs()  # student.pt, results.json to the trackers
        finally:
            logger.close()
            self._batch_source = self._train_loader = None  # stops persistent workers (they hold memory)
        return result

    def _train(self, logger: RunLogger) -> None:
        cfg = self.config
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not cfg.progress or not self.dist.is_main,
            dynamic_ncols=True,
            desc=self.console.epoch_label(self.epoch),
            file=sys.stderr,
        )
        try:
            while self.step < self.total_steps:
                self.train_set.set_epoch(self.epoch)
                self.train_set.set_seed(cfg.seed)
                sampler = dist_utils.EpochBatches(
                    len(self.train_set),  # type: ignore[arg-type]
                    cfg.batch_size,
                    cfg.seed,
                    self.epoch,
                    cfg.drop_last,
                    skip=self.step_in_epoch,
                    rank=self.dist.rank,
                    world=self.dist.world_size,
                )
                self.distiller.train()
                for batch in self._train_batches(sampler):
                    values = self._train_step(batch)
                    self.step += 1
                    self.step_in_epoch += 1
                    if values is not None:
                        for k, v in values.items():
                            self.running[k] = self.running.get(k, 0.0) + v
                        self.n_running += 1
                        if not bar.disable:  # formatting the postfix costs more than the rest of the bookkeeping
                            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
                    bar.update(1)
                    if self.step % cfg.log_every == 0 and self.n_running:
                        logger.log(self._train_record({k: v / self.n_running for k, v in self.running.items()}))
                        self.running, self.n_running = {}, 0
                    last = self.step >= self.total_steps
                    every = bool(cfg.checkpoint_every) and self.step % cfg.checkpoint_every == 0  # type: ignore[operator]
                    if self._eval_due(epoch_end=False):
                        self._evaluate(logger)
                        self.save()
                    elif every or trainer_state.checkpoint_due(self):  # checkpoint_every steps, or minutes passed
                        self.save()
                    if last:
                        break
                    self._stop_if_requested()
                if self.step_in_epoch >= self.steps_per_epoch:
                    self.epoch += 1
                    self.step_in_epoch = 0
                    bar.set_description(self.console.epoch_label(self.epoch), refresh=False)
                    if self._eval_due(epoch_end=True):
                        self._evaluate(logger)
                        self.save()
                    if self.step < self.total_steps:
                        self._stop_if_requested()
        finally:
            bar.close()

    def _eval_due(self, epoch_end: bool) -> bool:
        """The one evaluation rule: every ``eval_every`` iterations after a step (``iterations`` runs) or epochs at an
        epoch's end (``epochs`` runs), and after the last step."""
        cfg = self.config
        if (cfg.iterations is not None) == epoch_end:
            return False
        done = self.step if cfg.iterations is not None else self.epoch
        return done % cfg.eval_every == 0 or self.step >= self.total_steps

    def _stop_if_requested(self) -> None:
        """After SIGINT/SIGTERM (on any rank): save this step's checkpoint and raise ``TrainingInterrupted``."""
        if self._stop is not None and self._stop.requested():
            self._stop.stop_here()

    def _train_step(self, batch: dict[str, Any]) -> dict[str, float] | None:
        batch = move_to(batch, self.device)
        if self.config.channels_last:
            batch = channels_last(batch)
        if self.teacher_outputs is not None:
            batch = self.teacher_outputs.attach(batch)
        for group, opt in self.optimizers.items():
            lr = self.schedules[group].lr(self.step)
            for pg in opt.param_groups:
                pg["lr"] = lr * pg.get("lr_ratio", 1.0)
        self.distiller.context = StepContext(self.step, self.epoch, self.total_steps, self.steps_per_epoch)
        with self.autocast():
            terms = self._step_fn(batch) if self.ddp is None else self._ddp_step(batch)
        if not terms:
            raise DistillError(f"{type(self.distiller).__name__}.training_step returned no loss terms")
        stacked = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
        scale = 1.0
        if self.ddp is None:
            values = stacked.tolist()
        else:  # global-batch means of the terms: every rank sees the same values and takes the same decisions
            values, scale = dist_utils.global_means(stacked, batch, self.dist.world_size)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        bad = [(name, v) for name, v in zip(terms, values) if not math.isfinite(v)]
        if bad:  # train.nonfinite: stop here, or skip the step (up to train.max_skipped)
            if self.config.nonfinite != "stop":
                self.skipped += 1
            runtime.refuse_nonfinite(bad[0], self.step, self.skipped, self.config)
            return None
        total = sum(terms.values())
        if scale != 1.0:  # DDP averages gradients over ranks; weight each rank by its share of the global batch
            total = total * scale
        if self.scaler is not None:
            self.scaler.scale(total).backward()  # type: ignore[arg-type]
        else:
            total.backward()  # type: ignore[union-attr]
        for group, opt in self.optimizers.items():
            clip = self.optim_cfg[group].clip_grad_norm
            if clip:
                if self.scaler is not None:
                    self.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(self.group_params[group], clip)
            if self.scaler is not None:
                self.scaler.step(opt)
            else:
                opt.step()
        if self.scaler is not None:
            self.scaler.update()
        if self.ema is not None:
            self.ema.update()
        return dict(zip(terms, values))

    def _ddp_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        assert self.ddp is not None
        try:
            return self.ddp(batch)
        except RuntimeError as err:
            if "find_unused_parameters" not in str(err):
                raise
            raise RecipeError(
                f"train.find_unused_parameters: {type(self.distiller).__name__} left some trainable parameters "
                "without a gradient in the previous step, which DistributedDataParallel must be told about; set "
                "train.find_unused_parameters: true (or declare has_stochastic_paths = True on the distiller)"
            ) from None

    def _train_record(self, losses: dict[str, float]) -> dict[str, Any]:
        return {
            "kind": "train",
            "step": self.step,
            "epoch": self.epoch,
            "loss": {**losses, "total": sum(losses.values())},
            "lr": {g: s.lr(self.step - 1) for g, s in self.schedules.items()},
        }

    # ------------------------------------------------------------------------------------------------ evaluation
    def evaluate(self, splits: Sequence[str] | None = None) -> dict[str, Results]:
        """Evaluate the distiller's reported models on the named splits (all by default), RNG-neutrally."""
        out: dict[str, Results] = {}
        bs = self.config.eval_batch_size or self.config.batch_size
        dist_utils.broadcast_buffers(self.distiller)  # every rank evaluates rank 0's BatchNorm statistics
        with preserved_rng(), ema_utils.maybe_applied(self.ema):
            for split in splits or list(self.eval_sets):
                ds = self.eval_sets[split]
                if self.dist.enabled:  # a contiguous shard per rank; the evaluator gathers before any metric
                    shard = dist_utils.ShardSampler(len(ds), self.dist.rank, self.dist.world_size)  # type: ignore[arg-type]
                    loader = self._loader(ds, batch_size=bs, sampler=shard)
                else:
                    loader = self._loader(ds, batch_size=bs, shuffle=False)
                out[split] = self.evaluator.evaluate(self.distiller, loader, self.device, self.autocast())
                self.predictions[split] = self.evaluator.last_predictions  # per-sample, for the HTML report
        return out

    def _evaluate(self, logger: RunLogger) -> None:
        if not self.eval_sets:
            return
        results = self.evaluate()
        for split, res in results.items():
            record = {"kind": "eval", "step": self.step, "epoch": self.epoch, "split": split, "results": res}
            logger.log(record)
            self.history.append(record)
        self.console.evaluation(self.step, results)
        if self.selection.observe(self.step, results) and self.out_dir is not None and self.dist.is_main:
            atomic_save(self.export_state(), RunFolder(self.out_dir).best_student)

    # ----------------------------------------------------------------------------------------- checkpoints/resume
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly (a collective call when distributed)."""
        return trainer_state.capture(self)

    def save(self) -> None:
        """Write ``checkpoints/last.pt`` atomically from rank 0; the other ranks wait until it is on disk."""
        path = self._checkpoint_path()
        self._last_save = time.monotonic()
        self._saved_step = self.step
        if path is not None:
            dist_utils.broadcast_buffers(self.distiller)
            state = self.state_dict()
            if self.dist.is_main:
                atomic_save(state, path)
            dist_utils.barrier()

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; refuses checkpoints of another model or an incompatible recipe."""
        trainer_state.restore(self, state)

    def export_state(self) -> dict[str, Any]:
        """The deployable model alone, with the registry spec needed to rebuild it."""
        with ema_utils.maybe_applied(self.ema):  # the averaged weights when train.ema is set
            return outputs.export_state(self.distiller, self.recipe, self.step)

    def _finish(self) -> RunResult:
        self.selection.finish(self.step, bool(self.eval_sets))
        result = RunResult(
            results=self.selection.results,
            selected_step=int(self.selection.step),
            steps=self.step,
            out_dir=self.out_dir,
            history=self.history,
            skipped_steps=self.skipped,
        )
        result.corrupt_skipped = outputs.corrupt_counts({"train": self.train_set, **self.eval_sets}, self.dist)
        if self.out_dir is not None and self.dist.is_main:
            for write in self.before_results:
                write(result)
            run_folder.write_outputs(self.out_dir, result, self.evaluation.selection, self.export_state)
        dist_utils.barrier()  # the run's files are complete before any rank returns
        return result
