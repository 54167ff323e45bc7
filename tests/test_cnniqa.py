"""CNNIQA (Kang et al. 2014): its normalisation matches the release's scipy code, its shapes, gradients and errors,
and on a toy problem it ranks a distortion's strength on images it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from scipy.stats import spearmanr

from distill.models.iqa import CNNIQA
from distill.models.iqa.cnniqa import local_contrast_normalise, symmetric_pad
from distill.registry import MODELS


def _release_lcn(grey: np.ndarray, window: int, c: float) -> np.ndarray:
    """The release's LocalNormalization (github.com/lidq92/CNNIQA, IQADataset.py), written again with scipy."""
    kernel = np.ones((window, window)) / window**2
    mean = convolve2d(grey, kernel, boundary="symm", mode="same")
    mean_sq = convolve2d(grey * grey, kernel, boundary="symm", mode="same")
    return (grey - mean) / (np.sqrt(np.maximum(mean_sq - mean * mean, 0)) + c)


@pytest.mark.parametrize(("window", "c"), [(3, 1.0), (3, 0.01), (7, 0.01)])
def test_local_contrast_normalisation_matches_the_release(window: int, c: float) -> None:
    grey = np.random.default_rng(window).random((13, 17))
    ours = local_contrast_normalise(torch.from_numpy(grey)[None, None], window, c)[0, 0].numpy()
    np.testing.assert_allclose(ours, _release_lcn(grey, window, c), rtol=0, atol=1e-12)


def test_symmetric_pad_is_numpys() -> None:
    x = torch.arange(20.0).view(1, 1, 4, 5)
    np.testing.assert_array_equal(symmetric_pad(x, 2)[0, 0].numpy(), np.pad(x[0, 0].numpy(), 2, mode="symmetric"))


def test_normalisation_removes_brightness_and_contrast() -> None:
    grey = torch.rand(2, 1, 20, 20)
    base = local_contrast_normalise(grey, 7, 1e-6)
    np.testing.assert_allclose(local_contrast_normalise(0.3 * grey + 0.2, 7, 1e-6), base, atol=1e-3)


def test_registered_and_scores_images_of_any_size_and_patch_stacks() -> None:
    model = MODELS.build("cnniqa", kernels=8, hidden=16).eval()
    assert isinstance(model, CNNIQA)
    with torch.no_grad():
        assert model(torch.rand(3, 3, 40, 48)).shape == (3,)
        patches = torch.rand(2, 4, 3, 32, 32)
        torch.testing.assert_close(model(patches), model(patches.flatten(0, 1)).view(2, 4).mean(1))


def test_backward_reaches_every_parameter() -> None:
    model = CNNIQA(kernels=8, hidden=16)
    model(torch.rand(4, 3, 32, 32)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernels": 0}, "kernels must be a positive integer"),
        ({"hidden": 2.5}, "hidden must be a positive integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"lcn_window": 4}, r"lcn_window \(the normalisation window\) must be a positive odd integer"),
        ({"lcn_c": 0}, r"lcn_c \(the normalisation constant\) must be a positive number"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CNNIQA(**kwargs)


def test_too_small_an_image_is_named() -> None:
    with pytest.raises(ValueError, match=r"at least 7x7 pixels, got 5x9"):
        CNNIQA(kernels=4, hidden=8)(torch.rand(1, 3, 5, 9))


def test_ranks_noise_strength_on_unseen_textures() -> None:
    """Toy problem with a known answer: the score is the noise level; test textures are other draws than training's.

    The normalised input takes away each texture's brightness and contrast, so the level carries over.
    """
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        scale = torch.rand(n, 1, 1, 1, generator=gen) * 0.5 + 0.2
        texture = torch.nn.functional.avg_pool2d(torch.rand(n, 3, 36, 36, generator=gen), 5, stride=1) * scale
        level = torch.randint(0, 5, (n,), generator=gen).float()
        noisy = texture + 0.03 * level.view(n, 1, 1, 1) * torch.randn(n, 3, 32, 32, generator=gen)
        return noisy.clamp(0, 1), level

    model = CNNIQA(kernels=16, hidden=64, dropout=0.0, lcn_window=7, lcn_c=0.01)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(150):
        x, y = batch(32)
        loss = torch.nn.functional.l1_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(200)
    with torch.no_grad():
        assert spearmanr(model.eval()(x), y)[0] > 0.9


def test_pretrained_loads_a_saved_model_and_refuses_another(tmp_path) -> None:
    from distill.models.weights import WeightsError

    trained = CNNIQA(kernels=4, hidden=8)
    torch.save({"model": {"name": "cnniqa"}, "state_dict": trained.state_dict()}, tmp_path / "student.pt")
    loaded = CNNIQA(kernels=4, hidden=8, pretrained=str(tmp_path / "student.pt")).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), trained.eval()(x))
    with pytest.raises(WeightsError, match=r"student\.pt"):
        CNNIQA(kernels=6, hidden=8, pretrained=str(tmp_path / "student.pt"))
    with pytest.raises(WeightsError, match="not found"):
        CNNIQA(pretrained=str(tmp_path / "absent.pt"))
