"""Typed configuration objects shared by recipes and the Python API.

Every field here is a recipe key; the recipe loader (:mod:`distill.recipe.check`) checks types and names against these
dataclasses, so adding a field here is all it takes to add a recipe key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OptimizerName = Literal["sgd", "adam", "adamw"]
ScheduleName = Literal["constant", "cosine", "step", "multistep", "piecewise"]


@dataclass
class ComponentSpec:
    """A registered component by ``name`` and the keyword ``args`` its constructor takes."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyntheticSpec(ComponentSpec):
    """A synthetic dataset writer (``name``, ``args``) and ``root``, the one folder it may fill: the stand-in is
    written only when ``data.root`` is that folder and does not exist, so a mistyped or user-given ``data.root``
    is never filled with synthetic data."""

    root: str | None = None


@dataclass
class ScheduleConfig:
    """Learning-rate schedule of one trainable group, a closed-form function of the iteration.

    ``cosine`` is MRKD eq. 6: ``lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * T / t_max)) / 2`` with ``T`` the
    iterations since the end of warm-up, clamped at ``t_max`` (default: all remaining iterations).
    ``step`` multiplies by ``gamma`` every ``step_size`` and ``multistep`` at each of ``milestones``.
    ``piecewise`` multiplies ``lr0`` by the factor interpolated linearly between ``points`` (``[[at, factor], ...]``,
    ``at`` ascending; the first factor before the first point, the last after the last); with ``unit: epoch`` it
    is evaluated at the epoch index, so it is constant within an epoch (MatConvNet's per-epoch learning-rate vector).
    ``unit`` says whether ``t_max``, ``step_size``, ``milestones``, ``points`` and ``warmup`` count iterations or
    epochs.
    Warm-up ramps linearly from ``warmup_start * lr0`` to ``lr0``.
    """

    name: ScheduleName = "constant"
    unit: Literal["iteration", "epoch"] = "iteration"
    eta_min: float = 0.0
    t_max: int | None = None
    step_size: int = 1
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    points: list[list[float]] = field(default_factory=list)
    warmup: int = 0
    warmup_start: float = 0.0


@dataclass
class OptimConfig:
    """Optimizer, learning rate, weight decay, schedule and gradient clipping of one trainable group."""

    optimizer: OptimizerName = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    clip_grad_norm: float | None = None


@dataclass
class EMAConfig:
    """Exponential moving average of the trained weights (``train.ema``; :mod:`distill.engine.ema`).

    After each optimizer step ``ema = decay * ema + (1 - decay) * weights``; the averaged weights are evaluated,
    selected and exported (BasicSR's ``net_g_ema``, ``ema_decay: 0.999`` in the configs MiPKD's protocol follows).
    """

    decay: float = 0.999


@dataclass
class TrainConfig:
    """How long and how the engine trains: length, batches, devices, precision, logging and failure policy."""

    epochs: int | None = None
    iterations: int | None = None
    batch_size: int = 16
    eval_batch_size: int | None = None
    num_workers: int = 0
    drop_last: bool = True
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    log_every: int = 10
    eval_every: int = 1
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = 5.0  # also write checkpoints/last.pt when this long passed since the last one
    nonfinite: Literal["stop", "skip"] = "stop"
    max_skipped: int = 10
    progress: bool = True
    # multi-process (torchrun) only: batch_size above is the global batch, split across processes
    find_unused_parameters: bool | None = None  # DDP flag; None: the distiller's has_stochastic_paths
    sync_batchnorm: bool = False  # BatchNorm statistics over the global batch (CUDA only)
    channels_last: bool = False  # models and 4-D inputs in channels_last memory format (faster convs on GPU)
    compile: bool = False  # torch.compile the training step (the models' state-dict keys are unchanged)
    # outputs of frozen roles a distiller declares cacheable (engine/teacher_cache.py): auto | cached | online
    teacher_cache: Literal["auto", "cached", "online"] = "auto"
    teacher_cache_dir: str | None = None  # default: <out_dir>/teacher_cache
    ema: EMAConfig | None = None  # evaluate/select/export a moving average of the weights (null: the weights)

    def length_error(self) -> str | None:
        """What is wrong with the training length (it is exactly one of ``epochs`` or ``iterations``), or None."""
        if (self.epochs is None) == (self.iterations is None):
            return "set exactly one of train.epochs or train.iterations"
        return None


@dataclass
class EvalConfig:
    """What evaluation computes and how the reported result is selected.

    ``metrics: null`` (the default) evaluates the task's own metrics (:attr:`distill.tasks.Task.default_metrics`:
    IQA srcc/plcc, SR psnr/ssim, recognition top1), resolved from the student when the trainer is built and saved
    so in the run's ``recipe.yaml``.
    ``selection: last`` reports the final evaluation (the MRKD paper's policy); ``best_val`` reports the test
    results at the evaluation where ``select_metric`` of ``select_model`` was best on the ``select_split`` split
    (a validation split carved from train, never the test split).
    """

    metrics: list[str] | None = None
    metric_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_by: str | None = None
    models: list[str] | None = None
    selection: Literal["last", "best_val"] = "last"
    select_split: str = "val"
    select_metric: str | None = None
    select_model: str | None = None


@dataclass
class DataConfig:
    """Datasets of the run. ``root`` is passed to every dataset that does not set its own.

    When ``synthetic`` is set, ``root`` is its declared folder (``synthetic.root``) and does not exist yet, that
    writer creates a synthetic stand-in there first (reported as synthetic in every table).
    """

    train: ComponentSpec
    eval: dict[str, ComponentSpec] = field(default_factory=dict)
    root: str | None = None
    synthetic: SyntheticSpec | None = None


@dataclass
class WandbConfig:
    """``output.wandb``: ``wandb.init`` settings. ``mode: null`` is ``$WANDB_MODE`` or else ``offline`` (the run is
    written under ``<run>/wandb`` and uploaded only by ``wandb sync``); ``online`` logs to the W&B server."""

    project: str = "distill"
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] | None = None
    name: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class MlflowConfig:
    """``output.mlflow``: ``tracking_uri: null`` is ``$MLFLOW_TRACKING_URI`` or else a local SQLite store in the run
    folder (``sqlite:///<run>/mlflow.db``, artifacts in ``<run>/mlartifacts``); ``experiment`` defaults to the
    recipe name."""

    tracking_uri: str | None = None
    experiment: str | None = None
    run_name: str | None = None


@dataclass
class OutputConfig:
    """Where a run writes (``{name}`` expands to the recipe name) and what it logs to besides ``metrics.jsonl``.

    ``trackers`` lists ``tensorboard``, ``wandb`` and ``mlflow`` (:mod:`distill.engine.trackers`); when it is null,
    ``tensorboard`` decides TensorBoard alone (``auto``: if installed), as before trackers existed.
    """

    dir: str = "runs/{name}"
    tensorboard: bool | Literal["auto"] = "auto"
    trackers: list[Literal["tensorboard", "wandb", "mlflow"]] | None = None
    wandb: WandbConfig = field(default_factory=WandbConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


@dataclass
class Recipe:
    """A complete, validated experiment: models, distiller, data, per-group optimisation, training and evaluation.

    ``vars`` holds named values that other keys use as ``${name}`` (e.g. one SR ``scale`` for the models' upscale,
    the datasets' scale and the metrics' crop_border); they are substituted when the recipe is loaded.
    """

    name: str
    models: dict[str, ComponentSpec]
    distiller: ComponentSpec
    data: DataConfig
    optim: dict[str, OptimConfig]
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    description: str = ""
    source: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
