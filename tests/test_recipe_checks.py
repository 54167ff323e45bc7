"""Recipe checks across keys: one SR scale; constructor signatures followed up the class chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.errors import RecipeError
from distill.recipe.check import load_recipe, signature_of

SR = "recipes/quickstart_sr.yaml"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("models.student.args.upscale=3", r"models\.student\.args\.upscale: scale 3 disagrees with "
                                          r"models\.teacher\.args\.upscale = 2"),
        ("data.eval.valid.args.scale=4", r"data\.eval\.valid\.args\.scale: scale 4 disagrees with models\.teacher"),
        ("eval.metric_args.ssim.crop_border=3", r"eval\.metric_args\.ssim\.crop_border: scale 3 disagrees"),
    ],
)  # fmt: skip
def test_an_sr_recipe_with_two_scales_is_refused_naming_both_keys(override, named):
    with pytest.raises(RecipeError, match=named):
        load_recipe(SR, [override])


def test_a_left_out_scale_counts_with_its_default(tmp_path):
    recipe = tmp_path / "sr.yaml"
    recipe.write_text(
        f"_base_: {Path(SR).resolve()}\n"
        "data: {train: {_replace_: true, name: div2k, args: {split: train, patch_size: 16}}}\n"
    )
    # div2k's scale defaults to 4 and the x2 models disagree: refused before any data is read
    with pytest.raises(RecipeError, match=r"data\.train\.args\.scale: scale 4 disagrees with models\.teacher"):
        load_recipe(recipe)
    loaded, _ = load_recipe(SR)  # the quickstart states one scale everywhere
    assert loaded.models["student"].args["upscale"] == loaded.data.train.args["scale"] == 2


class _Parent:
    def __init__(self, models: dict, weight: float = 1.0, *, temperature: float = 4.0) -> None:
        pass


class _Child(_Parent):
    def __init__(self, models: dict, extra: int = 0, **kwargs) -> None:
        super().__init__(models, **kwargs)


class _Open(_Parent):
    def __init__(self, **kwargs) -> None:
        pass


def test_signature_of_follows_kwargs_up_the_class_chain():
    params, hints, takes_kwargs = signature_of(_Child)
    assert list(params) == ["models", "extra", "weight", "temperature"]
    assert hints["weight"] is float and hints["extra"] is int
    assert takes_kwargs is False  # the parent takes no **kwargs: unknown args are refused
    assert list(signature_of(_Parent)[0]) == ["models", "weight", "temperature"]
    assert signature_of(_Open)[2] is False and list(signature_of(_Open)[0]) == ["models", "weight", "temperature"]


def test_a_missing_required_key_lists_what_is_required_apart_from_what_is_optional(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("description: no name, no models\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe)
    text = str(err.value)
    assert "name: required key is missing (Recipe needs: name, models, distiller, data, optim; optional: " in text
    assert "description" in text.split("optional: ")[1]
