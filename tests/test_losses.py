"""Functional losses against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distill.losses import hinton_kd, l1, mse, soft_target_ce
from distill.losses.functional import cross_entropy
from distill.registry import LOSSES

LN3 = math.log(3.0)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_mse_and_l1_by_hand() -> None:
    pred, target = _t([[1.0, 2.0], [3.0, 4.0]]), _t([[1.5, 2.0], [1.0, 4.0]])
    # differences 0.5, 0, 2, 0 -> squares 0.25, 0, 4, 0 -> mean 4.25 / 4 = 1.0625; |.| mean 2.5 / 4 = 0.625
    assert mse(pred, target).item() == pytest.approx(1.0625, abs=1e-15)
    assert l1(pred, target).item() == pytest.approx(0.625, abs=1e-15)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    assert mse(torch.from_numpy(a), torch.from_numpy(b)).item() == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)
    assert l1(torch.from_numpy(a), torch.from_numpy(b)).item() == pytest.approx(np.mean(np.abs(a - b)), rel=1e-12)


def test_hinton_kd_literal_values() -> None:
    student, teacher = _t([[0.0, 0.0]]), _t([[LN3, 0.0]])
    # T=1: p = (3/4, 1/4), q = (1/2, 1/2); KL = 0.75 ln 1.5 + 0.25 ln 0.5 = 0.13081203594113697
    assert hinton_kd(student, teacher, temperature=1.0).item() == pytest.approx(0.13081203594113697, abs=1e-14)
    # T=2: p = (√3, 1) / (1 + √3), q = (1/2, 1/2); T²·KL = 4 (p1 ln 2p1 + p2 ln 2p2) = 0.14536313148189411
    assert hinton_kd(student, teacher, temperature=2.0).item() == pytest.approx(0.14536313148189411, abs=1e-14)


def test_hinton_kd_matches_numpy_batchmean() -> None:
    s = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    t = np.array([[3.0, 2.0, 1.0], [0.0, 0.0, 1.0]])
    for temperature in (1.0, 4.0):
        p, q = _softmax(t / temperature), _softmax(s / temperature)
        kl = float(np.sum(p * (np.log(p) - np.log(q))) / 2)  # batchmean: sum over classes and rows / B
        got = hinton_kd(torch.from_numpy(s), torch.from_numpy(t), temperature=temperature, t_squared=False)
        assert got.item() == pytest.approx(kl, rel=1e-12)
        got_sq = hinton_kd(torch.from_numpy(s), torch.from_numpy(t), temperature=temperature)
        assert got_sq.item() == pytest.approx(temperature**2 * kl, rel=1e-12)


def test_hinton_kd_t_squared_scaling_and_zero_on_equal_logits() -> None:
    rng = np.random.default_rng(1)
    s, t = torch.from_numpy(rng.normal(size=(4, 10))), torch.from_numpy(rng.normal(size=(4, 10)))
    for temperature in (0.5, 2.0, 4.0, 10.0):
        plain = hinton_kd(s, t, temperature=temperature, t_squared=False)
        assert hinton_kd(s, t, temperature=temperature).item() == pytest.approx(
            temperature**2 * plain.item(), rel=1e-12
        )
        assert hinton_kd(t, t, temperature=temperature).item() == pytest.approx(0.0, abs=1e-12)
    assert hinton_kd(s, t).item() > 0  # default T = 4 with the T² factor


def test_soft_target_ce_literal_values() -> None:
    # p = (3/4, 1/4), q = (1/2, 1/2): H(p, q) = -(0.75 + 0.25) ln 0.5 = ln 2 = 0.6931471805599453
    got = soft_target_ce(_t([[0.0, 0.0]]), _t([[LN3, 0.0]]), temperature=1.0)
    assert got.item() == pytest.approx(0.6931471805599453, abs=1e-14)
    # equal logits: H(p, p) = H(p) = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.5623351446188083
    got = soft_target_ce(_t([[LN3, 0.0]]), _t([[LN3, 0.0]]), temperature=1.0)
    assert got.item() == pytest.approx(0.5623351446188083, abs=1e-14)


def test_soft_target_ce_matches_numpy_without_t_squared() -> None:
    s = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    t = np.array([[3.0, 2.0, 1.0], [0.0, 0.0, 1.0]])
    for temperature in (1.0, 10.0):
        p, q = _softmax(t / temperature), _softmax(s / temperature)
        expected = float(np.mean(-np.sum(p * np.log(q), axis=1)))
        got = soft_target_ce(torch.from_numpy(s), torch.from_numpy(t), temperature=temperature)
        assert got.item() == pytest.approx(expected, rel=1e-12)
        # H(p, q) = H(p) + KL(p || q): relation to hinton_kd without the T² factor
        entropy = float(np.mean(-np.sum(p * np.log(p), axis=1)))
        kd = hinton_kd(torch.from_numpy(s), torch.from_numpy(t), temperature=temperature, t_squared=False)
        assert got.item() == pytest.approx(entropy + kd.item(), rel=1e-12)


def test_soft_target_ce_equals_teacher_entropy_on_equal_logits() -> None:
    t = np.random.default_rng(2).normal(size=(3, 7))
    for temperature in (1.0, 10.0):
        p = _softmax(t / temperature)
        entropy = float(np.mean(-np.sum(p * np.log(p), axis=1)))
        got = soft_target_ce(torch.from_numpy(t), torch.from_numpy(t), temperature=temperature)
        assert got.item() == pytest.approx(entropy, rel=1e-12)


def test_log_softmax_is_stable_for_huge_logits() -> None:
    s, t = _t([[1000.0, 0.0]]), _t([[0.0, 1000.0]])
    assert torch.isfinite(hinton_kd(s, t, temperature=1.0))
    assert torch.isfinite(soft_target_ce(s, t, temperature=1.0))


@pytest.mark.parametrize("loss", [hinton_kd, soft_target_ce])
def test_gradients_reach_the_student_only_when_teacher_is_detached(loss) -> None:
    rng = np.random.default_rng(3)
    student = torch.tensor(rng.normal(size=(2, 4)), requires_grad=True)
    teacher = torch.tensor(rng.normal(size=(2, 4)), requires_grad=True)
    temperature = 3.0
    loss(student, teacher.detach(), temperature=temperature).backward()
    assert teacher.grad is None
    # analytic gradient: d/ds of (1/B) Σ H(p, q) is (q - p) / (T B); hinton_kd carries an extra T²
    p = _softmax(teacher.detach().numpy() / temperature)
    q = _softmax(student.detach().numpy() / temperature)
    scale = temperature**2 if loss is hinton_kd else 1.0
    np.testing.assert_allclose(student.grad.numpy(), scale * (q - p) / (temperature * 2), rtol=1e-10, atol=1e-14)


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        hinton_kd(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        soft_target_ce(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0.0)


def test_registry_lookup_and_descriptions() -> None:
    assert LOSSES.get("soft_target_ce") is soft_target_ce
    assert LOSSES.get("hinton_kd") is hinton_kd
    assert LOSSES.get("mse") is mse
    assert LOSSES.get("l1") is l1
    for name in ("mse", "l1", "hinton_kd", "soft_target_ce"):
        assert LOSSES.describe(name)  # a one-line description from the docstring


def test_cross_entropy_by_hand() -> None:
    logits = _t([[LN3, 0.0, 0.0], [0.0, 0.0, 0.0]]).requires_grad_(True)
    labels = torch.tensor([0, 2])
    # row 1: softmax (3/5, 1/5, 1/5), -ln(3/5) = ln(5/3); row 2: uniform, -ln(1/3) = ln 3; mean = ln(5) / 2
    loss = cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(math.log(5.0) / 2, abs=1e-14)
    loss.backward()  # d/dz = (softmax - one_hot) / B
    expected = np.array([[-0.4, 0.2, 0.2], [1 / 3, 1 / 3, -2 / 3]]) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-12, atol=1e-15)
    assert cross_entropy(logits, labels.double()).item() == pytest.approx(loss.item())  # float labels accepted
    assert LOSSES.get("cross_entropy") is cross_entropy and LOSSES.describe("cross_entropy")
    with pytest.raises(ValueError, match="labels for 2 logit rows"):
        cross_entropy(logits, torch.tensor([0]))
