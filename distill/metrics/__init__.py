"""distill.metrics: registered evaluation metrics (see :mod:`distill.metrics.base` for the contract)."""

from __future__ import annotations

from distill.metrics import classification, correlation, grouped, image
from distill.metrics.base import Metric, MetricKind, register_metric
from distill.metrics.classification import top1, top5, topk_correct
from distill.metrics.correlation import fit_logistic, krcc, logistic4, logistic5, plcc, rmse, srcc
from distill.metrics.grouped import grouped_metric
from distill.metrics.image import psnr, rgb_to_y, ssim

__all__ = [
    "Metric",
    "MetricKind",
    "classification",
    "correlation",
    "fit_logistic",
    "grouped",
    "grouped_metric",
    "image",
    "krcc",
    "logistic4",
    "logistic5",
    "plcc",
    "psnr",
    "register_metric",
    "rgb_to_y",
    "rmse",
    "srcc",
    "ssim",
    "top1",
    "top5",
    "topk_correct",
]
