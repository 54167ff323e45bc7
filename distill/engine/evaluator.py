"""Evaluation of every reported model on a split, overall and per group (e.g. per distortion type)."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from distill.distillers.base import Distiller
from distill.engine.batches import channels_last, move_to
from distill.engine.distributed import all_gather_objects, is_distributed
from distill.metrics.base import Metric
from distill.metrics.grouped import grouped_metric
from distill.registry import METRICS
from distill.run.folder import Results

#: a "sample" metric whose per-sample values are its input (values already computed batch by batch)
_PER_SAMPLE_VALUES = Metric("per_sample_values", lambda values, _target: values, "sample")


def _as_keys(values: Any) -> list[str]:
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    return [str(v) for v in values]


def _gather(
    set_preds: Mapping[str, list[torch.Tensor]],
    sample_vals: Mapping[tuple[str, str], list[torch.Tensor]],
    targets: list[torch.Tensor],
    groups: list[str],
) -> tuple[dict[str, list[torch.Tensor]], dict[tuple[str, str], list[torch.Tensor]], list[torch.Tensor], list[str]]:
    """Per-sample predictions, metric values, targets and group keys of every rank, concatenated in rank order."""
    local = (
        {k: [torch.cat(v)] for k, v in set_preds.items() if v},
        {k: [torch.cat(v)] for k, v in sample_vals.items() if v},
        [torch.cat(targets)] if targets else [],
        list(groups),
    )
    all_preds: dict[str, list[torch.Tensor]] = defaultdict(list)
    all_vals: dict[tuple[str, str], list[torch.Tensor]] = defaultdict(list)
    all_targets: list[torch.Tensor] = []
    all_groups: list[str] = []
    for preds, vals, tgts, grps in all_gather_objects(local):
        for k, v in preds.items():
            all_preds[k].extend(v)
        for k, v in vals.items():
            all_vals[k].extend(v)
        all_targets.extend(tgts)
        all_groups.extend(grps)
    return all_preds, all_vals, all_targets, all_groups


def _gather_kept(
    kept: Mapping[str, list[torch.Tensor]], targets: list[torch.Tensor], groups: list[str]
) -> tuple[dict[str, list[torch.Tensor]], list[torch.Tensor], list[str]]:
    """The report's per-sample predictions of every rank, in rank order."""
    out: dict[str, list[torch.Tensor]] = defaultdict(list)
    all_targets: list[torch.Tensor] = []
    all_groups: list[str] = []
    local = ({k: [t.cpu() for t in v] for k, v in kept.items()}, [t.cpu() for t in targets], groups)
    for part, tgts, grps in all_gather_objects(local):
        for k, v in part.items():
            out[k].extend(v)
        all_targets.extend(tgts)
        all_groups.extend(grps)
    return out, all_targets, all_groups


class Evaluator:
    """Runs the distiller's evaluated models over a loader and computes the recipe's metrics.

    Set metrics (SRCC, PLCC …) see all predictions of the split at once; sample metrics (PSNR, top-1 …) are
    averaged over samples. With ``group_by`` set, each metric is also computed within each value of
    ``batch["meta"][group_by]``. Under ``torch.distributed`` every rank passes the batches of its own contiguous shard
    (:class:`~distill.engine.distributed.ShardSampler`, in rank order) and :meth:`evaluate` gathers the per-sample
    values of all ranks before computing any metric, so every rank returns the single-process numbers.
    """

    def __init__(
        self,
        metrics: Sequence[str],
        metric_args: Mapping[str, Mapping[str, Any]] | None = None,
        group_by: str | None = None,
        roles: Sequence[str] | None = None,
    ) -> None:
        self.metrics: dict[str, Metric] = {name: METRICS.get(name) for name in metrics}
        self.metric_args = {k: dict(v) for k, v in (metric_args or {}).items()}
        self.group_by = group_by
        self.roles = tuple(roles) if roles else None
        self.channels_last = False  # the trainer sets it from train.channels_last
        self.has_set_metrics = any(m.kind == "set" for m in self.metrics.values())
        #: per-sample predictions of the last :meth:`evaluate` (scores, or class indices of logits; not images),
        #: with the targets and groups: ``{"outputs": {role: list}, "target": list, "groups": list}``
        self.last_predictions: dict[str, Any] = {}

    @torch.no_grad()
    def evaluate(
        self,
        distiller: Distiller,
        batches: Iterable[dict[str, Any]],
        device: torch.device,
        autocast: AbstractContextManager[Any] | None = None,
    ) -> Results:
        """``{role: {"overall": {metric: value}, "groups": {key: {metric: value, "n": n}}, "n": n}}``."""
        was_training = distiller.training
        distiller.eval()
        set_preds: dict[str, list[torch.Tensor]] = defaultdict(list)
        sample_vals: dict[tuple[str, str], list[torch.Tensor]] = defaultdict(list)
        targets: list[torch.Tensor] = []
        groups: list[str] = []
        kept: dict[str, list[torch.Tensor]] = defaultdict(list)  # small per-sample predictions for the report
        kept_targets: list[torch.Tensor] = []
        try:
            for batch in batches:
                batch = move_to(batch, device)
                if self.channels_last:
                    batch = channels_last(batch)
                with autocast or nullcontext():
                    outputs = distiller.eval_outputs(batch)
                target = batch["target"]
                if target.ndim <= 1:
                    kept_targets.append(target.detach().cpu())
                if self.group_by is not None:
                    groups.extend(_as_keys(batch["meta"][self.group_by]))
                if self.has_set_metrics:
                    targets.append(target.detach().float().reshape(len(target)).cpu())
                for role, out in outputs.items():
                    if self.roles and role not in self.roles:
                        continue
                    out = out.float()
                    if self.has_set_metrics:
                        set_preds[role].append(out.detach().reshape(len(out)).cpu())
                    if out.ndim <= 2:
                        kept[role].append((out.detach().reshape(len(out)) if out.ndim == 1 else out.argmax(1)).cpu())
                    for name, metric in self.metrics.items():
                        if metric.kind == "sample":
                            vals = metric(out, target, **self.metric_args.get(name, {}))
                            sample_vals[(role, name)].append(vals.detach().double().reshape(-1).cpu())
        finally:
            distiller.train(was_training)
        if is_distributed():  # every rank evaluated a contiguous shard: gather all of them, in rank order
            local_groups = list(groups)
            set_preds, sample_vals, targets, groups = _gather(set_preds, sample_vals, targets, groups)
            kept, kept_targets, _ = _gather_kept(kept, kept_targets, local_groups)
        self.last_predictions = {
            "outputs": {role: torch.cat(v).cpu().tolist() for role, v in kept.items() if v},
            "target": torch.cat(kept_targets).tolist() if kept_targets else [],
            "groups": list(groups),
        }
        roles = list(dict.fromkeys([*set_preds, *(r for r, _ in sample_vals)]))
        return {role: self._compute(role, set_preds, sample_vals, targets, groups) for role in roles}

    def _compute(
        self,
        role: str,
        set_preds: Mapping[str, list[torch.Tensor]],
        sample_vals: Mapping[tuple[str, str], list[torch.Tensor]],
        targets: list[torch.Tensor],
        groups: list[str],
    ) -> Results:
        preds = torch.cat(set_preds[role]).double().numpy() if set_preds.get(role) else None
        target = torch.cat(targets).double().numpy() if targets else None
        per_sample = {
            name: torch.cat(sample_vals[(role, name)]).numpy()
            for name, m in self.metrics.items()
            if m.kind == "sample" and (role, name) in sample_vals
        }
        n = len(preds) if preds is not None else len(next(iter(per_sample.values())))

        def compute(mask: np.ndarray | slice) -> dict[str, float]:
            values: dict[str, float] = {}
            for name, metric in self.metrics.items():
                if metric.kind == "set":
                    assert preds is not None and target is not None
                    values[name] = float(metric(preds[mask], target[mask], **self.metric_args.get(name, {})))
                else:
                    values[name] = float(np.mean(per_sample[name][mask]))
            return values

        result: Results = {"overall": compute(slice(None)), "n": n}
        if self.group_by is not None:
            per_group = {name: self._grouped(name, preds, target, per_sample, groups) for name in self.metrics}
            counts = Counter(groups)
            result["groups"] = {
                key: {**{name: per_group[name][key] for name in self.metrics}, "n": counts[key]}
                for key in sorted(counts)
            }
        return result

    def _grouped(
        self,
        name: str,
        preds: np.ndarray | None,
        target: np.ndarray | None,
        per_sample: Mapping[str, np.ndarray],
        groups: list[str],
    ) -> dict[str, float]:
        """One metric per group through :func:`~distill.metrics.grouped.grouped_metric`; a sample metric's
        per-sample values were computed batch by batch, so they are averaged as they are."""
        metric = self.metrics[name]
        if metric.kind == "set":
            with_args = dataclasses.replace(metric, kwargs={**metric.kwargs, **self.metric_args.get(name, {})})
            return grouped_metric(with_args, preds, target, groups)
        values = per_sample[name]
        return grouped_metric(_PER_SAMPLE_VALUES, values, values, groups)
