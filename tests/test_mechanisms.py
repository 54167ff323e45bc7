"""Each distillation mechanism isolated on a toy problem whose answer is known (issue 27, item 5).

The distillers and loss functions are the project's own (``DISTILLERS``, ``LOSSES``); only the data and the few
lines that step an optimizer are toys, so a sign error, a wrong detach or a missing term in a distiller fails here
even when a benchmark at some scale shows no effect. Each test compares the mechanism with the same training without
it (same seeds, same data), so it fails when the mechanism does nothing.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distill.registry import DISTILLERS


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is faster, and much faster on a busy machine (two threads spin against other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(distiller: nn.Module, batches: list[dict[str, torch.Tensor]], lrs: dict[str, float], epochs: int) -> None:
    """SGD on the sum of the distiller's loss terms, one optimizer per trainable group (what the engine does)."""
    opts = [torch.optim.SGD(p, lr=lrs[g]) for g, p in distiller.param_groups().items()]
    distiller.train()
    for _ in range(epochs):
        for batch in batches:
            loss = sum(distiller.training_step(batch).values())
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()


def _teacher(d: int, classes: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    t = nn.Linear(d, classes)
    nn.init.normal_(t.weight, std=2.0)
    return t


def _agreement(student: nn.Module, teacher: nn.Module, x_student: torch.Tensor, x_teacher: torch.Tensor) -> float:
    with torch.no_grad():
        return float((student(x_student).argmax(1) == teacher(x_teacher).argmax(1)).float().mean())


def test_a_student_trained_only_on_soft_targets_approaches_the_teacher():
    """CQD's soft-target term alone (task weight 0, labels replaced by noise) teaches a student the teacher's
    decision rule: agreement on held-out inputs goes from chance to near 1."""
    d, classes = 8, 4
    teacher = _teacher(d, classes, seed=0)
    torch.manual_seed(1)
    x, x_test = torch.randn(512, d), torch.randn(1000, d)
    student = nn.Linear(d, classes)
    distiller = DISTILLERS.build(
        "cqd", models={"teacher": teacher, "student": student}, temperature=2.0, weight=1.0, task_weight=0.0
    )
    before = _agreement(student, teacher, x_test, x_test)
    noise_labels = torch.randint(0, classes, (512,))  # never used: the task term has weight 0
    batches = [
        {"input": x[i : i + 64], "input_clean": x[i : i + 64], "target": noise_labels[i : i + 64]}
        for i in range(0, 512, 64)
    ]
    _train(distiller, batches, {"student": 0.5}, epochs=30)
    after = _agreement(student, teacher, x_test, x_test)
    assert before < 0.5
    assert after > 0.95, (before, after)


def _mrkd_disagreement(alpha: float) -> float:
    """Mean squared difference between MRKD's two models on held-out inputs after a short run (lrs 0.05 / 0.0125,
    the 4:1 ratio, noisy linear targets, different initialisations)."""
    torch.manual_seed(0)
    d = 16
    w = torch.randn(d)
    x, x_test = torch.randn(256, d), torch.randn(500, d)
    y = x @ w + 0.5 * torch.randn(256)
    torch.manual_seed(1)
    models = {"teacher": nn.Linear(d, 1), "student": nn.Linear(d, 1)}
    for m in models.values():
        nn.init.normal_(m.weight, std=1.0)

    class Squeeze(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m(x).squeeze(-1)

    wrapped = {k: Squeeze(m) for k, m in models.items()}
    distiller = DISTILLERS.build("mrkd", models=wrapped, alpha=alpha)
    batches = [{"input": x[i : i + 32], "target": y[i : i + 32]} for i in range(0, 256, 32)]
    _train(distiller, batches, {"teacher": 0.05, "student": 0.0125}, epochs=2)
    with torch.no_grad():
        return float((wrapped["teacher"](x_test) - wrapped["student"](x_test)).pow(2).mean())


def test_mrkd_mutual_term_lowers_the_two_models_disagreement():
    """With the mutual term (alpha 1) the small-lr and large-lr models end closer together than without it (alpha
    0), on the same data, initialisations and batches."""
    without, with_term = _mrkd_disagreement(0.0), _mrkd_disagreement(1.0)
    assert with_term < 0.5 * without, (without, with_term)


def _cqd_agreement(weight: float) -> float:
    """Agreement of a degraded-view student with the clean-view teacher: few, noisy labels (40 % wrong); the degraded
    view adds Gaussian noise (std 0.7) to the clean one."""
    d, classes, n = 12, 3, 96
    teacher = _teacher(d, classes, seed=2)
    torch.manual_seed(3)
    x, x_test = torch.randn(n, d), torch.randn(2000, d)

    def degrade(v: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(v.shape[0])
        return v + 0.7 * torch.randn(v.shape, generator=g)

    with torch.no_grad():
        labels = teacher(x).argmax(1)
    flip = torch.rand(n) < 0.4  # 40 % of the labels are wrong
    labels = torch.where(flip, torch.randint(0, classes, (n,)), labels)
    torch.manual_seed(4)
    student = nn.Linear(d, classes)
    distiller = DISTILLERS.build(
        "cqd", models={"teacher": teacher, "student": student}, temperature=2.0, weight=weight, task_weight=1.0
    )
    batches = [
        {"input": degrade(x)[i : i + 32], "input_clean": x[i : i + 32], "target": labels[i : i + 32]}
        for i in range(0, n, 32)
    ]
    _train(distiller, batches, {"student": 0.2}, epochs=40)
    return _agreement(student, teacher, degrade(x_test), x_test)


def test_cqd_clean_view_soft_targets_raise_a_degraded_student_agreement_with_the_teacher():
    """The clean-view teacher's soft targets (lambda 4 at T 2) make the degraded-view student agree with the
    teacher more than the noisy labels alone do."""
    labels_only, with_teacher = _cqd_agreement(0.0), _cqd_agreement(4.0)
    assert with_teacher > labels_only + 0.03, (labels_only, with_teacher)
