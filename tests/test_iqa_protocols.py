"""The MRKD paper's protocols as the recipes state them: 80/20 splits by reference (LIVEC per image), a labelled
per-image variant, HyperIQA's 25-patch protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distill.recipe.check import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PAPER = sorted([*RECIPES.glob("mrkd_*.yaml"), *(RECIPES / "grid").glob("mrkd_*.yaml")])


def _splits(path: Path) -> list[tuple[str, str, str | None]]:
    recipe, _ = load_recipe(path)
    specs = [("train", recipe.data.train), *recipe.data.eval.items()]
    return [(part, spec.args.get("split", "train"), spec.args.get("split_mode")) for part, spec in specs]


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_recipes_split_by_reference_like_the_baselines_code(path: Path) -> None:
    """TID2013 and KADID-10k by reference, LIVEC (no references) per image.

    Sources: zwx8981/DBCNN @ 64f6e3e dbcnn/get_imdb/getTIDDatabase_train.m lines 40-53 (``sel = randperm(25)``;
    references ``sel(1:20)`` train, ``sel(21:25)`` test); zwx8981/DBCNN-PyTorch @ 16c3156 DBCNN.py lines 315 and
    327-329 (TID2013 ``index = range(25)`` of references, LIVEC line 319 ``range(1162)`` of images; shuffled,
    ``round(0.8 * n)`` train); SSL92/hyperIQA @ c42e727 train_test_IQA.py lines 25-26 and 39-41 (the same).
    """
    recipe, _ = load_recipe(path)
    splits = [(part, mode) for part, split, mode in _splits(path) if split != "all"]  # cross-dataset: all vs all
    expected = "random" if recipe.data.train.name == "livec" else "by_reference"
    assert all(mode == expected for _, mode in splits), splits
    if recipe.data.train.name == "tid2013" and splits:
        assert recipe.data.train.args["train_fraction"] == 0.8  # 20 of 25 references (counted below)


def test_tid2013_by_reference_is_20_train_and_5_test_references_kadid_65_and_16() -> None:
    """round(0.8 * 25) = 20 (DBCNN-PyTorch DBCNN.py line 328; SSL92 train_test_IQA.py line 40); KADID-10k 81 -> 65."""
    from distill.data.splits import split_indices

    for n_refs, n_train in ((25, 20), (81, 65)):
        refs = [f"I{r:02d}" for r in range(n_refs) for _ in range(3)]
        parts = split_indices(refs, "by_reference", 0.8, seed=4)
        train_refs, test_refs = ({refs[i] for i in parts[p]} for p in ("train", "test"))
        assert (len(train_refs), len(test_refs)) == (n_train, n_refs - n_train) and not train_refs & test_refs


def test_per_image_variant_and_quickstarts(tmp_path: Path) -> None:
    variant = tmp_path / "mrkd_tid_random.yaml"
    base = [str(RECIPES / "mrkd_tid.yaml"), str(RECIPES / "_parts" / "split_random.yaml")]
    variant.write_text(yaml.safe_dump({"_base_": base}))
    assert {mode for _, _, mode in _splits(variant)} == {"random"}
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
