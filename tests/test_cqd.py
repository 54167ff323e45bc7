"""CQD: the soft-target loss, the distiller's terms and gradients, the classifiers, and recipes end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distill.cli import main
from distill.distillers.cqd import CQD
from distill.errors import CheckpointError, DataError
from distill.losses.functional import soft_target_ce
from distill.models.recognition.classification import resnet_classifier, vgg16, vgg_m

pytestmark = pytest.mark.usefixtures("one_thread")
RECIPES = Path(__file__).parent.parent / "recipes"


def test_soft_target_loss_equals_a_hand_computation():
    # T = 2. Row 1: teacher [0, 2 ln 3] -> p = softmax([0, ln 3]) = [1/4, 3/4]; student [0, 0] -> q = [1/2, 1/2]:
    #   H = -(1/4 ln 1/2 + 3/4 ln 1/2) = ln 2.
    # Row 2: teacher [0, 0] -> p = [1/2, 1/2]; student [2 ln 3, 0] -> q = [3/4, 1/4]:
    #   H = -(1/2 ln 3/4 + 1/2 ln 1/4) = ln 4 - (1/2) ln 3.
    teacher = torch.tensor([[0.0, 2 * math.log(3)], [0.0, 0.0]])
    student = torch.tensor([[0.0, 0.0], [2 * math.log(3), 0.0]])
    expected = (math.log(2) + math.log(4) - 0.5 * math.log(3)) / 2  # the mean over the batch, no T^2 factor
    assert soft_target_ce(student, teacher, temperature=2.0).item() == pytest.approx(expected, abs=1e-6)
    # its gradient w.r.t. the student logits is (q - p) / (T B) (vl_nndistillloss.m, per image)
    s = student.clone().requires_grad_(True)
    soft_target_ce(s, teacher, temperature=2.0).backward()
    q, p = torch.softmax(student / 2, 1), torch.softmax(teacher / 2, 1)
    assert torch.allclose(s.grad, (q - p) / (2 * 2), atol=1e-6)


class Recorder(nn.Module):
    """Linear classifier on the image mean colour; remembers its last input."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(3, 4)
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = x
        return self.fc(x.mean(dim=(2, 3)))


def batch(n: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(n, 3, 8, 8, generator=g)
    return {"input": clean * 0.5, "input_clean": clean, "target": torch.randint(0, 4, (n,), generator=g),
            "index": torch.arange(n)}  # fmt: skip


def test_cqd_terms_are_ce_plus_lambda_times_soft_targets_teacher_on_clean_student_on_degraded():
    teacher, student = Recorder(0), Recorder(1)
    cqd = CQD({"teacher": teacher, "student": student}, temperature=10.0, weight=200.0)
    b = batch()
    terms = cqd.training_step(b)
    assert set(terms) == {"task", "kd"}
    assert torch.equal(teacher.last, b["input_clean"]) and torch.equal(student.last, b["input"])
    s, t = student.fc(b["input"].mean(dim=(2, 3))), teacher.fc(b["input_clean"].mean(dim=(2, 3)))
    assert terms["task"].item() == pytest.approx(F.cross_entropy(s, b["target"]).item(), rel=1e-6)
    by_hand = -(torch.softmax(t / 10, 1) * torch.log_softmax(s / 10, 1)).sum(1).mean()
    assert terms["kd"].item() == pytest.approx(200.0 * by_hand.item(), rel=1e-5)


def test_only_the_student_learns_and_the_teacher_stays_frozen():
    teacher, student = Recorder(0), Recorder(1)
    cqd = CQD({"teacher": teacher, "student": student})
    assert set(cqd.param_groups()) == {"student"}
    cqd.train()
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    sum(cqd.training_step(batch()).values()).backward()
    assert teacher.fc.weight.grad is None and student.fc.weight.grad is not None
    assert student.fc.weight.grad.abs().sum() > 0


def test_eval_teacher_reports_no_adaptation_on_the_same_degraded_inputs():
    teacher, student = Recorder(0), Recorder(1)
    b = batch()
    assert set(CQD({"teacher": teacher, "student": student}).eval_outputs(b)) == {"student"}
    outputs = CQD({"teacher": teacher, "student": student}, eval_teacher=True).eval_outputs(b)
    assert set(outputs) == {"student", "teacher"}
    assert torch.equal(teacher.last, b["input"])  # the teacher evaluated on B: "train A, test B"


def test_engine_cached_teacher_outputs_replace_the_teacher_forward():
    teacher, student = Recorder(0), Recorder(1)
    cqd = CQD({"teacher": teacher, "student": student}, temperature=4.0, weight=2.0)
    b = batch()
    with torch.no_grad():
        t = teacher(b["input_clean"])
    teacher.last = None
    cached = cqd.training_step({**b, "cached": {"teacher": t}})
    assert teacher.last is None  # no teacher forward
    assert torch.allclose(cached["kd"], cqd.training_step(b)["kd"])
    with pytest.raises(DataError, match=r"input_clean.*cub200_paired"):
        cqd.training_step({"input": b["input"], "target": b["target"]})
    assert CQD.cacheable_inputs == {"teacher": "input_clean"}


class PairSet(torch.utils.data.Dataset):
    """16 random clean/degraded pairs with labels and indices."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(3)
        self.clean = torch.rand(16, 3, 8, 8, generator=g)
        self.labels = torch.randint(0, 4, (16,), generator=g)

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict:
        return {"input": self.clean[i] * 0.5, "input_clean": self.clean[i], "target": self.labels[i], "index": i}


def test_cqd_with_zero_weight_trains_exactly_like_fine_tuning():
    from distill.distillers.supervised import Supervised
    from distill.engine import Trainer
    from distill.recipe.config import OptimConfig, TrainConfig

    def train(distiller: nn.Module) -> dict[str, torch.Tensor]:
        config = TrainConfig(iterations=6, batch_size=4, device="cpu", progress=False)
        Trainer(distiller, PairSet(), None, optim={"student": OptimConfig(lr=0.5)}, config=config).fit()
        return distiller.models["student"].state_dict()

    plain = train(Supervised({"student": Recorder(1)}, loss="cross_entropy"))
    zero = train(CQD({"teacher": Recorder(0), "student": Recorder(1)}, weight=0.0))
    distilled = train(CQD({"teacher": Recorder(0), "student": Recorder(1)}, weight=1.0))
    assert all(torch.equal(plain[k], zero[k]) for k in plain)  # the same batches, steps and student: bit-identical
    assert not torch.equal(plain["fc.weight"], distilled["fc.weight"])  # and the soft targets do change training


def test_teacher_and_student_may_be_different_architectures():
    teacher = vgg16(num_classes=5, width=1 / 16, fc_dim=32, pool=1, batch_norm=True)
    student = vgg_m(num_classes=5, width=0.1, fc_dim=16, pool=1)
    cqd = CQD({"teacher": teacher, "student": student})
    b = {"input": torch.rand(2, 3, 64, 64), "input_clean": torch.rand(2, 3, 64, 64), "target": torch.tensor([0, 4])}
    terms = cqd.training_step(b)
    assert all(torch.isfinite(v) for v in terms.values())
    assert sum(p.numel() for p in teacher.parameters()) != sum(p.numel() for p in student.parameters())


def test_classifiers_take_raw_images_and_load_local_weights(tmp_path):
    from distill._compat import import_torchvision

    tv = import_torchvision().models
    with torch.device("meta"):  # torchvision's keys and shapes, so its files load as they are (no init cost here)
        for ours, theirs in ((resnet_classifier(18, 1000), tv.resnet18()), (vgg16(1000), tv.vgg16())):
            assert {k: v.shape for k, v in ours.state_dict().items()} == {
                k: v.shape for k, v in theirs.state_dict().items()
            }
    theirs = tv.resnet18(weights=None)
    torch.save(theirs.state_dict(), tmp_path / "r18.pth")
    model = resnet_classifier(depth=18, num_classes=7, pretrained=str(tmp_path / "r18.pth"), reset_head=True)
    assert torch.equal(model.conv1.weight, theirs.conv1.weight) and model.fc.out_features == 7
    with pytest.raises(CheckpointError, match="reset_head: true"):
        resnet_classifier(depth=18, num_classes=7, pretrained=str(tmp_path / "r18.pth"))
    with pytest.raises(CheckpointError, match="run that recipe first"):
        vgg_m(pretrained=str(tmp_path / "runs" / "teacher" / "student.pt"))
    # ImageNet normalisation happens inside: a [0, 1] image and its normalised copy give different logits
    model.eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(model(x), model.logits((x - model.mean) / model.std))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(torch.rand(3, 32, 32))


TINY = [
    "data.synthetic.args.n_classes=4",
    "data.synthetic.args.n_train=4",
    "data.synthetic.args.n_test=2",
    "data.synthetic.args.size=[64, 64]",
    "train.epochs=2",
    "train.eval_every=2",
    "train.batch_size=8",
    "train.progress=false",
    "output.tensorboard=off",
]


def cli_sets(*sets: str) -> list[str]:
    return [arg for s in sets for arg in ("--set", s)]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cqd_e2e")
    model = "models.student.args={num_classes: 4, width: 0.1, fc_dim: 16, pool: 1, batch_norm: true}"
    data = (f"data.root={tmp / 'cub'}", f"data.synthetic.root={tmp / 'cub'}")
    code = main(["run", str(RECIPES / "cqd_quickstart_teacher.yaml"), "--out", str(tmp / "teacher"),
                 *cli_sets(*data, model, *TINY)])  # fmt: skip
    assert code == 0
    return tmp


def test_quickstart_recipes_chain_teacher_then_cqd_with_a_cached_teacher(teacher_run, capsys):
    tmp = teacher_run
    results = json.loads((tmp / "teacher" / "results.json").read_text())["results"]
    assert set(results) == {"test", "test_low_resolution"}  # oracle (A -> A) and no adaptation (A -> B)
    arch = "{num_classes: 4, width: 0.1, fc_dim: 16, pool: 1, batch_norm: true"
    sets = [
        f"data.root={tmp / 'cub'}",
        f"models.teacher.args={arch}, pretrained: {tmp / 'teacher' / 'student.pt'}}}",
        f"models.student.args={arch}, pretrained: {tmp / 'teacher' / 'student.pt'}}}",  # A-initialised CQD
        *TINY,
    ]
    capsys.readouterr()
    assert main(["run", str(RECIPES / "quickstart_cqd.yaml"), "--out", str(tmp / "cqd"), *cli_sets(*sets)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "top1" in out
    # the no-adaptation baseline (the clean-image teacher on the degraded test images) beside the student, same images
    cqd = json.loads((tmp / "cqd" / "results.json").read_text())["results"]["test"]
    assert set(cqd) == {"student", "teacher"} and cqd["student"]["n"] == cqd["teacher"]["n"] == 8
    cache = list((tmp / "cqd" / "teacher_cache").glob("teacher-*.pt"))
    assert len(cache) == 1
    stored = torch.load(cache[0], weights_only=True)
    assert stored["outputs"].shape == (16, 4) and "box crop" in stored["identity"]["view"]
    exported = torch.load(tmp / "cqd" / "student.pt", weights_only=True)
    assert exported["model"]["name"] == "vgg_m" and exported["role"] == "student"
    assert not any(k.startswith("teacher") for k in exported["state_dict"])
    # the deployed student classifies image files: path, label, probability
    images = sorted((tmp / "cub" / "images").rglob("*.jpg"))[:3]
    csv_path = tmp / "pred.csv"
    assert main(["predict", str(tmp / "cqd" / "student.pt"), *map(str, images), "--out", str(csv_path)]) == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "path,label,probability" and len(lines) == 4
    assert all(0 <= int(row.split(",")[1]) < 4 and 0.25 <= float(row.split(",")[2]) <= 1 for row in lines[1:])
