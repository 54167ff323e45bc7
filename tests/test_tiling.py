"""Tiled SR inference (SwinIR's ``--tile``): equal to the whole-image output away from seams, close near them.

Stated tolerance: pixels farther than the network's receptive field from every inner tile edge equal the whole-image
output to 1e-5; over the whole image, the tiled output of these small random networks on a noise image is within
30 dB PSNR of the whole-image output (seams average tiles that saw zero-padded borders; trained networks on photos
differ far less, see benchmarks/tile_memory.py); a tile as large as the image gives the whole-image output exactly.
"""

from __future__ import annotations

import pytest
import torch

from distill.build import build_model
from distill.errors import DistillError
from distill.models.sr import super_resolve
from distill.models.sr.inference import tile_starts
from distill.recipe.config import ComponentSpec

EDSR = ComponentSpec("edsr", {"num_feat": 8, "num_block": 2, "upscale": 2})
SWINIR = ComponentSpec(
    "swinir",
    {"embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 4, "img_size": 16, "upscale": 2,
     "drop_path_rate": 0.0},
)  # fmt: skip
#: EDSR c8b2: conv_first + 2 blocks x 2 convs + conv_after_body + upsampler conv = 7 LR pixels, plus conv_last
EDSR_RADIUS = 8


def _model(spec: ComponentSpec) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(spec).eval()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean()))


def _far_from_seams(h: int, w: int, tile: int, overlap: int, radius: int, scale: int) -> torch.Tensor:
    """HR pixels that no tile sees within ``radius`` LR pixels of one of its inner (not image-border) edges."""
    bad = torch.zeros(h, w, dtype=torch.bool)
    th, tw = min(tile, h), min(tile, w)
    for top in tile_starts(h, th, overlap):
        for left in tile_starts(w, tw, overlap):
            if top > 0:
                bad[top : top + radius, left : left + tw] = True
            if top + th < h:
                bad[top + th - radius : top + th, left : left + tw] = True
            if left > 0:
                bad[top : top + th, left : left + radius] = True
            if left + tw < w:
                bad[top : top + th, left + tw - radius : left + tw] = True
    return (~bad).repeat_interleave(scale, 0).repeat_interleave(scale, 1)


@pytest.mark.parametrize(("tile", "overlap"), [(16, 4), (24, 12)])
@torch.no_grad()
def test_tiled_equals_whole_away_from_seams_and_is_close_near_them(tile: int, overlap: int) -> None:
    model = _model(EDSR)
    x = torch.rand(2, 3, 45, 37)  # neither side a multiple of the tile or the stride
    whole = super_resolve(model, x)
    tiled = super_resolve(model, x, tile=tile, tile_overlap=overlap)
    assert tiled.shape == whole.shape
    keep = _far_from_seams(45, 37, tile, overlap, EDSR_RADIUS, 2)
    assert 0.05 < keep.float().mean() < 1.0
    assert torch.allclose(tiled[..., keep], whole[..., keep], atol=1e-5)
    assert not torch.allclose(tiled, whole, atol=1e-5)  # seams do differ: the mask above is not vacuous
    assert _psnr(tiled, whole) > 30


@torch.no_grad()
def test_tiled_swinir_keeps_its_window_and_is_close() -> None:
    model = _model(SWINIR)
    x = torch.rand(1, 3, 30, 21)  # not multiples of the window 4 either
    whole = super_resolve(model, x)
    tiled = super_resolve(model, x, tile=12, tile_overlap=4)
    assert tiled.shape == whole.shape == (1, 3, 60, 42)
    assert _psnr(tiled, whole) > 30
    with pytest.raises(DistillError, match=r"tile 10: a SwinIR network needs a multiple of its window size 4 "
                                           r"\(e.g. 8 or 12\)"):  # fmt: skip
        super_resolve(model, x, tile=10)


@torch.no_grad()
def test_a_tile_as_large_as_the_image_is_the_whole_image_and_bad_overlaps_are_refused() -> None:
    model = _model(EDSR)
    x = torch.rand(1, 3, 20, 24)
    assert torch.equal(super_resolve(model, x, tile=24, tile_overlap=8), super_resolve(model, x))
    ens = super_resolve(model, x, self_ensemble=True, tile=12, tile_overlap=4)
    assert _psnr(ens, super_resolve(model, x, self_ensemble=True)) > 30
    for tile, overlap in [(8, 8), (0, 0), (8, -1)]:
        with pytest.raises(DistillError, match="need tile >= 1 and 0 <= overlap < tile"):
            super_resolve(model, x, tile=tile, tile_overlap=overlap)


def test_tile_starts_cover_the_axis_and_end_at_the_border() -> None:
    assert tile_starts(45, 16, 4) == [0, 12, 24, 29]
    assert tile_starts(16, 16, 4) == [0] and tile_starts(10, 16, 4) == [0]
    for size, tile, overlap in [(45, 16, 4), (100, 33, 7), (64, 32, 0)]:
        starts = tile_starts(size, tile, overlap)
        covered = set().union(*(range(s, s + tile) for s in starts))
        assert covered == set(range(size)) and starts[-1] + tile == size


def test_predict_with_tiles_writes_the_tiled_output(tmp_path) -> None:
    from distill.cli import main
    from distill.data.images import load_rgb, save_rgb
    from distill.run.checkpoint import MODEL_FORMAT

    model = _model(EDSR)
    path = tmp_path / "student.pt"
    state = {k: v.detach() for k, v in model.state_dict().items()}
    torch.save({"format": MODEL_FORMAT, "role": "student", "model": model.distill_spec, "state_dict": state}, path)
    save_rgb(torch.rand(3, 30, 26), tmp_path / "lr" / "a.png")
    x = load_rgb(tmp_path / "lr" / "a.png")[None]
    assert main(["predict", str(path), str(tmp_path / "lr"), "--out", str(tmp_path / "sr"), "--tile", "16",
                 "--tile-overlap", "4"]) == 0  # fmt: skip
    with torch.no_grad():
        expected = super_resolve(model, x, tile=16, tile_overlap=4)[0].clamp(0, 1)
    assert torch.allclose(load_rgb(tmp_path / "sr" / "a.png"), (expected * 255).round() / 255, atol=1 / 255)
    assert main(["predict", str(path), str(tmp_path / "lr"), "--out", str(tmp_path / "sr2"), "--tile", "4",
                 "--tile-overlap", "4"]) == 2  # fmt: skip
