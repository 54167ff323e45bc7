"""MiPKD: mixer shapes, every block-mixing path, where gradients go, options, and a tiny recipe end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from distill._compat import import_basicsr
from distill.cli import main
from distill.deploy.model import load_deployable
from distill.distillers import MiPKD
from distill.distillers.mipkd import PriorMixer, random_mask
from distill.models.sr import StagedView, edsr, rcan, super_resolve, swinir

import_basicsr()
from basicsr.archs.edsr_arch import EDSR  # noqa: E402

RECIPES = Path(__file__).parent.parent / "recipes"
pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:torch.meshgrid")]


def edsr_pair(c_t: int = 16, b_t: int = 6, c_s: int = 8, b_s: int = 3, scale: int = 2) -> dict:
    torch.manual_seed(0)
    return {
        "teacher": edsr(num_feat=c_t, num_block=b_t, upscale=scale),
        "student": edsr(num_feat=c_s, num_block=b_s, upscale=scale),
    }


def batch(scale: int = 2, size: int = 8, n: int = 2) -> dict:
    g = torch.Generator().manual_seed(1)
    return {"input": torch.rand(n, 3, size, size, generator=g), "target": torch.rand(n, 3, size * scale, size * scale)}


def grads(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


# -------------------------------------------------------------------------------------------------------- mixers
def test_feature_mixer_maps_mismatched_widths_and_depths_to_teacher_features():
    models = edsr_pair(c_t=16, b_t=6, c_s=8, b_s=3)
    d = MiPKD(models, num_stages=3, latent_channels=12)
    t_view, s_view = d.views["teacher"], d.views["student"]
    assert t_view.ends == [2, 4, 6] and s_view.ends == [1, 2, 3]  # proportional positions in different depths
    x = batch()["input"]
    _, _, f_t = t_view.features(x)
    _, _, f_s = s_view.features(x)
    for k, mixer in enumerate(d.mixers):
        z_t, z_s = mixer.enc_teacher(f_t[k]), mixer.encode_student(f_s[k])
        assert z_t.shape == z_s.shape == (2, 12, 8, 8)
        assert mixer.mix(z_t, z_s, random_mask(z_t)).shape == f_t[k].shape == (2, 16, 8, 8)
    shared = PriorMixer(16, 8, 16, shared_encoder=True)
    assert shared.enc_student is None and shared.encode_student(f_s[0]).shape == (2, 16, 8, 8)
    assert isinstance(PriorMixer(8, 8, 4, shared_encoder=True).project, torch.nn.Identity)


@pytest.mark.parametrize(
    ("kind", "shape"), [("random3d", (64, 6, 8, 8)), ("channel", (64, 6, 1, 1)), ("spatial", (64, 1, 8, 8))]
)
def test_masks_are_fresh_binary_draws_of_the_right_granularity(kind, shape):
    like = torch.empty(64, 6, 8, 8)
    a, b = random_mask(like, kind, 0.3), random_mask(like, kind, 0.3)
    assert a.shape == shape and set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)  # fresh every call
    big = random_mask(torch.empty(256, 32, 16, 16), kind, 0.3)
    assert abs(big.mean().item() - 0.3) < 0.03
    with pytest.raises(ValueError, match="unknown mask kind"):
        random_mask(like, "stripes")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- block mixing
MODES = {
    "through_mixer": {},
    "raw_with_mixer": {"block_through_mixer": False},
    "bpm_only": {"feature_mixer": False},
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("owners", [("student", *o) for o in itertools.product(("teacher", "student"), repeat=2)])
def test_every_block_mixing_path_runs_forward_and_backward(mode, owners):
    d = MiPKD(edsr_pair(), num_stages=3, **MODES[mode]).train()
    terms = d.training_step(batch(), owners=list(owners))
    assert "block" in terms and all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert any(grads(d.models["student"]))
    raw = mode != "through_mixer"
    for k in (1, 2):
        prev, nxt = owners[k - 1], owners[k]
        into_student = nxt == "student" and (not raw or prev == "teacher")
        assert all(grads(d.to_student[k - 1])) == into_student, (k, owners)
        if raw:
            assert all(grads(d.to_teacher[k - 1])) == (nxt == "teacher" and prev == "student"), (k, owners)
    assert all(p.grad is None for p in d.models["teacher"].parameters())


def test_composite_ends_in_the_tail_of_the_network_that_ran_the_last_stage(monkeypatch):
    d = MiPKD(edsr_pair(), num_stages=2, block_through_mixer=False).train()
    calls = []
    for role, view in d.views.items():
        monkeypatch.setattr(view, "tail", lambda f, ctx, role=role, tail=view.tail: calls.append(role) or tail(f, ctx))
    d.training_step(batch(), owners=["student", "teacher"])
    assert calls == ["teacher", "student", "teacher"]  # the two own forwards, then the composite
    calls.clear()
    d.training_step(batch(), owners=["student", "student"])
    assert calls == ["teacher", "student", "student"]


def test_gradients_reach_student_and_helpers_never_the_teacher():
    d = MiPKD(edsr_pair(), num_stages=3).train()
    teacher = d.models["teacher"]
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    terms = d.training_step(batch(), owners=["student", "student", "student"])
    assert set(terms) == {"task", "kd", "feat", "ae", "block"}
    sum(terms.values()).backward()
    assert all(grads(d.models["student"]))
    assert all(grads(d.mixers)) and all(grads(d.to_student))
    assert all(p.grad is None for p in teacher.parameters())
    groups = d.param_groups()
    assert set(groups) == {"student", "helpers"}
    ids = {id(p) for p in teacher.parameters()}
    assert not any(id(p) in ids for g in groups.values() for p in g)
    assert {id(p) for p in groups["helpers"]} == {id(p) for m in (d.mixers, d.to_student) for p in m.parameters()}
    opt = torch.optim.Adam([p for g in groups.values() for p in g], lr=0.1)
    opt.step()
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert d.deployable() is d.models["student"] and not hasattr(d.deployable(), "mixers")


def test_teacher_stages_pass_gradients_to_earlier_student_stages():
    d = MiPKD(edsr_pair(), num_stages=3, kd_weight=0.0, feat_weight=0.0, ae_weight=0.0).train()
    terms = d.training_step(batch(), owners=["student", "teacher", "teacher"])
    terms["block"].backward()
    first_stage = StagedView(d.models["student"], 3).stage_blocks(0)
    assert all(all(grads(b)) for b in first_stage)  # through frozen teacher stages into student stage 1
    assert not any(grads(d.models["student"].body[-1]))  # stages the composite did not run get nothing


@pytest.mark.parametrize(
    ("options", "terms", "helpers"),
    [
        ({}, {"task", "kd", "feat", "ae", "block"}, True),
        ({"block_mixer": False}, {"task", "kd", "feat", "ae"}, True),
        ({"feature_mixer": False}, {"task", "kd", "block"}, True),
        ({"feature_mixer": False, "block_mixer": False, "kd_weight": 0.0}, {"task"}, False),
        ({"ae_weight": 0.0, "encoder": "shared", "mask": "channel"}, {"task", "kd", "feat", "block"}, True),
    ],
)
def test_ablation_switches_change_terms_and_helper_groups(options, terms, helpers):
    d = MiPKD(edsr_pair(), num_stages=2, **options)
    assert set(d.training_step(batch())) == terms
    assert ("helpers" in d.param_groups()) == helpers
    if options.get("block_mixer") is False:
        assert len(d.to_student) == len(d.to_teacher) == 0


def test_loss_weights_scale_their_terms():
    base = MiPKD(edsr_pair(), num_stages=2)
    torch.manual_seed(5)
    a = base.training_step(batch(), owners=["student", "teacher"])
    base.kd_weight, base.feat_weight, base.block_weight = 2.0, 3.0, 0.5
    torch.manual_seed(5)
    b = base.training_step(batch(), owners=["student", "teacher"])
    assert torch.allclose(b["kd"], 2 * a["kd"]) and torch.allclose(b["feat"], 3 * a["feat"])
    assert torch.allclose(b["ae"], 3 * a["ae"]) and torch.allclose(b["block"], 5 * a["block"])


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="encoder 'both'"):
        MiPKD(edsr_pair(), encoder="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask_prob must be in"):
        MiPKD(edsr_pair(), mask_prob=1.5)
    with pytest.raises(ValueError, match="needs num_stages >= 2"):
        MiPKD(edsr_pair(), num_stages=1)
    with pytest.raises(ValueError, match="cannot split 3 body blocks into 4 stages"):
        MiPKD(edsr_pair(b_s=3), num_stages=4)
    with pytest.raises(ValueError, match="starting with student"):
        MiPKD(edsr_pair(), num_stages=2).training_step(batch(), owners=["teacher", "student"])


@pytest.mark.parametrize("family", ["rcan", "swinir"])
def test_mipkd_steps_on_rcan_and_swinir(family):
    torch.manual_seed(0)
    if family == "rcan":
        models = {
            "teacher": rcan(num_feat=16, num_group=4, num_block=2, squeeze_factor=4, upscale=2),
            "student": rcan(num_feat=8, num_group=2, num_block=1, squeeze_factor=4, upscale=2),
        }
    else:
        models = {
            "teacher": swinir(
                embed_dim=12, depths=[1, 1, 1], num_heads=[2, 2, 2], window_size=4, upscale=2, img_size=8
            ),
            "student": swinir(
                embed_dim=8, depths=[1, 1], num_heads=[2, 2], window_size=4, upscale=2, img_size=8,
                upsampler="pixelshuffledirect",
            ),
        }  # fmt: skip
    d = MiPKD(models, num_stages=2).train()
    for owners in (["student", "teacher"], ["student", "student"]):
        sum(d.training_step(batch(), owners=owners).values()).backward()
    assert all(grads(d.models["student"].conv_first)) and all(p.grad is None for p in models["teacher"].parameters())


def test_eval_path_uses_the_shared_self_ensemble():
    d = MiPKD(edsr_pair(), num_stages=2, self_ensemble=True).eval()
    x = batch()["input"]
    out = d.eval_outputs({"input": x})
    assert set(out) == {"student"}
    assert torch.allclose(out["student"], super_resolve(d.models["student"], x, self_ensemble=True))


# ------------------------------------------------------------------------------------------------- end to end
def _sets(*items: str) -> list[str]:
    return [arg for s in items for arg in ("--set", s)]


TINY_DATA = (
    "data.synthetic.args={n_train: 4, n_valid: 1, size: [24, 24], scales: [2], seed: 0}",
    "data.train.args.patch_size=6",
    "train.iterations=3",
    "train.eval_every=3",
    "train.log_every=1",
    "train.batch_size=4",
    "train.progress=false",
    "output.tensorboard=false",
)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mipkd_e2e")
    data = f"data.root={tmp / 'div2k'}"
    teacher_args = "{num_feat: 8, num_block: 4, upscale: 2}"
    code_t = main(
        ["run", str(RECIPES / "sr_teacher_quickstart.yaml"), "--out", str(tmp / "teacher"),
         *_sets(data, f"data.synthetic.root={tmp / 'div2k'}", *TINY_DATA, f"models.student.args={teacher_args}")]
    )  # fmt: skip
    teacher_file = tmp / "teacher" / "student.pt"
    teacher = f"models.teacher.args={{num_feat: 8, num_block: 4, upscale: 2, pretrained: {teacher_file}}}"
    student = "models.student.args={num_feat: 4, num_block: 2, upscale: 2}"
    code_s = main(
        [
            "run",
            str(RECIPES / "quickstart_sr.yaml"),
            "--out",
            str(tmp / "mipkd"),
            *_sets(data, *TINY_DATA, teacher, student),
        ]
    )
    return tmp, code_t, code_s


def test_quickstart_recipes_train_a_teacher_then_distil_from_it(tiny_runs):
    tmp, code_t, code_s = tiny_runs
    assert code_t == 0 and code_s == 0
    results = json.loads((tmp / "mipkd" / "results.json").read_text())["results"]["valid"]
    assert set(results) == {"student"} and results["student"]["n"] == 1
    assert 5 < results["student"]["overall"]["psnr"] < 60 and 0 < results["student"]["overall"]["ssim"] <= 1
    records = [json.loads(line) for line in (tmp / "mipkd" / "metrics.jsonl").read_text().splitlines()]
    train_terms = {k for r in records if r["kind"] == "train" for k in r["loss"]}
    assert {"task", "kd", "feat", "ae", "block"} <= train_terms


def test_saved_student_loads_into_plain_basicsr_with_no_leftover_keys(tiny_runs):
    tmp, _, _ = tiny_runs
    exported = torch.load(tmp / "mipkd" / "student.pt", weights_only=True)
    assert exported["model"] == {"name": "edsr", "args": {"num_feat": 4, "num_block": 2, "upscale": 2}}
    plain = EDSR(3, 3, num_feat=4, num_block=2, upscale=2)
    plain.load_state_dict(exported["state_dict"], strict=True)  # no mixer/adapter/teacher keys, none missing
    model, _ = load_deployable(tmp / "mipkd" / "student.pt")
    x = torch.rand(1, 3, 6, 6)
    assert torch.equal(model(x), plain.eval()(x))


def test_the_teacher_is_never_trained(tiny_runs):
    tmp, _, _ = tiny_runs
    teacher = torch.load(tmp / "teacher" / "student.pt", weights_only=True)["state_dict"]
    ckpt = torch.load(tmp / "mipkd" / "checkpoints" / "last.pt", weights_only=True)
    after = {
        k.removeprefix("models.teacher."): v for k, v in ckpt["distiller"].items() if k.startswith("models.teacher.")
    }
    assert after.keys() == teacher.keys() and all(torch.equal(after[k], teacher[k]) for k in teacher)
    assert set(ckpt["optimizers"]) == {"student", "helpers"}


def test_a_missing_teacher_file_says_how_to_make_one(tmp_path, capsys):
    code = main(
        ["run", str(RECIPES / "quickstart_sr.yaml"), "--out", str(tmp_path / "r"),
         *_sets(f"data.root={tmp_path / 'd'}", f"data.synthetic.root={tmp_path / 'd'}", *TINY_DATA,
                f"models.teacher.args.pretrained={tmp_path / 'none.pt'}")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "none.pt: EDSR c32 b8 x2 weights file not found" in err and "train a teacher first" in err
    assert "It is written by" not in err  # no recipe's run writes none.pt


@pytest.mark.parametrize("kind", ["random3d", "channel", "spatial"])
def test_mask_mix_keeps_the_arithmetic_values_and_gradients(kind):
    # the mixer's autograd function (which keeps only the mask for backward) against plain autograd arithmetic
    from distill.distillers.mipkd import _MaskMix

    g = torch.Generator().manual_seed(3)
    a, b = (torch.randn(2, 6, 5, 4, generator=g, requires_grad=True) for _ in range(2))
    mask, up = random_mask(a.detach(), kind, 0.4), torch.randn(2, 6, 5, 4, generator=g)
    fast = _MaskMix.apply(a, b, mask)
    grads_fast = torch.autograd.grad(fast, (a, b), up)
    plain = mask * a + (1 - mask) * b
    grads_plain = torch.autograd.grad(plain, (a, b), up)
    assert torch.equal(fast, plain) and all(torch.equal(x, y) for x, y in zip(grads_fast, grads_plain))
