"""The MRKD paper's protocols as the recipes state them: random 80/20 splits, HyperIQA's 25-patch protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distill.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER = sorted([*RECIPES.glob("mrkd_*.yaml"), *(RECIPES / "grid").glob("mrkd_*.yaml")])


def _splits(path: Path) -> list[tuple[str, str, str | None]]:
    recipe, _ = load_recipe(path)
    specs = [("train", recipe.data.train), *recipe.data.eval.items()]
    return [(part, spec.args.get("split", "train"), spec.args.get("split_mode")) for part, spec in specs]


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_recipes_split_images_at_random_like_the_paper(path: Path) -> None:
    splits = [(part, mode) for part, split, mode in _splits(path) if split != "all"]  # cross-dataset: all vs all
    assert all(mode == "random" for _, mode in splits), splits


def test_by_reference_variant_and_quickstarts_split_by_reference(tmp_path: Path) -> None:
    variant = tmp_path / "mrkd_tid_by_reference.yaml"
    base = [str(RECIPES / "mrkd_tid.yaml"), str(RECIPES / "_parts" / "split_by_reference.yaml")]
    variant.write_text(yaml.safe_dump({"_base_": base}))
    assert {mode for _, _, mode in _splits(variant)} == {"by_reference"}
    for name in ("quickstart", "quickstart_urkd", "quickstart_baseline"):
        assert {mode for _, _, mode in _splits(RECIPES / f"{name}.yaml")} == {"by_reference"}


@pytest.mark.parametrize("path", sorted(RECIPES.glob("mrkd_*hyperiqa.yaml")), ids=lambda p: p.stem)
def test_hyperiqa_recipes_use_the_authors_25_patches(path: Path) -> None:
    recipe, _ = load_recipe(path)
    train, test = recipe.data.train.args, recipe.data.eval["test"].args
    assert (train["crop"], train["patches"]) == (224, 25)
    assert (test["crop"], test["patches"], test.get("patch_layout", "grid")) == (224, 25, "grid")


@pytest.mark.parametrize("method", ["mrkd", "mrkd_urkd", "mrkd_baseline"])
def test_dbcnn_livec_recipes_test_whole_images_one_at_a_time_like_the_authors(method: str) -> None:
    recipe, _ = load_recipe(RECIPES / f"{method}_livec.yaml")
    assert recipe.data.train.args["crop"] == 448  # DBCNN-PyTorch: RandomCrop(448) in train, no crop in test
    assert recipe.data.eval["test"].args["crop"] is None and recipe.train.eval_batch_size == 1
