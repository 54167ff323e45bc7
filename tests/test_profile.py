"""``distill profile``: parameter counts, FLOPs and peak memory against hand computations."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from distill.cli import main
from distill.deploy.cost import (
    count_flops,
    count_parameters,
    peak_forward_memory,
    profile_model,
    profile_models,
    profile_table,
    speedup,
    time_interleaved,
)
from tests.test_deploy import run_dir  # noqa: F401  (module-scoped trained quickstart-like run)


def _net() -> nn.Module:
    # conv: 3*8*3*3 + 8 = 224 parameters; linear: 8*5 + 5 = 45 → 269 in all
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)
    )


def test_parameter_count_is_the_hand_count():
    net = _net()
    assert count_parameters(net) == 269
    net[0].requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == 45


def test_flops_count_a_multiply_add_as_two():
    x = torch.rand(2, 3, 10, 10)
    # conv: 2 * B * Cout * H * W * Cin * k * k; linear: 2 * B * in * out (biases, ReLU and pooling not counted)
    expected = 2 * 2 * 8 * 10 * 10 * 3 * 3 * 3 + 2 * 2 * 8 * 5
    assert count_flops(_net(), x) == expected


def test_cpu_peak_memory_counts_live_activations_once():
    net = nn.Sequential(nn.Linear(100, 100, bias=False), nn.Linear(100, 100, bias=False)).eval()
    x = torch.rand(1, 100)
    # resident: 2 weights of 100*100 floats + the input; peak: both activations alive at the second layer's output
    assert peak_forward_memory(net, x) == 4 * (2 * 100 * 100 + 100) + 4 * (100 + 100)


def test_table_reports_ratios_against_the_reference():
    x = torch.rand(1, 3, 16, 16)
    big = nn.Sequential(nn.Conv2d(3, 32, 3), nn.Conv2d(32, 32, 3))
    small = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3))
    profiles = [profile_model(big, x, "teacher", 0, 1), profile_model(small, x, "student", 0, 1)]
    ratio = profiles[0].params / profiles[1].params
    table = profile_table(profiles, "teacher")
    assert f"{ratio:.2f}" in table.splitlines()[-1] and "1 multiply-add = 2 FLOPs" in table


def test_profile_of_a_recipe_counts_the_resnet50_regressor(tmp_path, capsys):
    out = tmp_path / "p.json"
    args = ["profile", "recipes/mrkd_kadid_resnet50.yaml", "--shape", "3,32,32", "--warmup", "0", "--repeats", "1"]
    assert main([*args, "--json", str(out)]) == 0
    profiles = {p["name"]: p for p in json.loads(out.read_text())}
    # torchvision ResNet-50: 25,557,032 parameters with its 1000-way fc (2048*1000 + 1000); ours has a 1-output head
    assert profiles["teacher"]["params"] == profiles["student"]["params"] == 25_557_032 - 2_049_000 + 2_049
    assert "teacher" in capsys.readouterr().out


def test_profile_of_a_trained_student_shows_teacher_and_student(run_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "p.json"
    args = ["profile", str(run_dir / "run" / "student.pt"), "--shape", "3,48,48", "--repeats", "2", "--json", str(out)]
    assert main(args) == 0
    names = [p["name"] for p in json.loads(out.read_text())]
    assert names == ["teacher", "student"]


@pytest.mark.parametrize("shape", ["3,64", "a,b,c", "0,8,8"])
def test_bad_shape_is_a_clear_error(shape, capsys):
    assert main(["profile", "recipes/quickstart.yaml", "--shape", shape]) == 2
    assert "expected C,H,W" in capsys.readouterr().err


class _Recorder(nn.Module):
    """Records the order of its forward passes in a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.name)
        return x


def test_models_are_warmed_up_then_timed_interleaved_in_rotating_order():
    log: list[str] = []
    models = {n: _Recorder(n, log) for n in ("teacher", "student")}
    rounds = []
    times = time_interleaved(models, torch.rand(1, 3), warmup=2, repeats=4, progress=lambda d, t: rounds.append(d))
    assert log[:4] == ["teacher", "teacher", "student", "student"]  # every model's warm-up before any timing
    assert log[4:] == ["teacher", "student", "student", "teacher", "teacher", "student", "student", "teacher"]
    assert {len(v) for v in times.values()} == {4} and rounds == [1, 2, 3, 4]


def test_the_same_model_as_teacher_and_student_is_one_times_faster():
    torch.manual_seed(0)
    net = nn.Sequential(*(nn.Conv2d(16, 16, 3, padding=1) for _ in range(4))).eval()
    x = torch.rand(1, 16, 48, 48)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher, student = profile_models({"teacher": net, "student": net}, x, warmup=3, repeats=30)
    finally:
        torch.set_num_threads(threads)
    ratio, spread = speedup(teacher, student)
    assert 0.85 < ratio < 1.18, (ratio, spread)  # paired rounds: machine load hits both alike
    line = profile_table([teacher, student], "teacher").splitlines()[-1]
    assert f"{ratio:.2f} ±{spread:.2f}" in line and "median of 30 interleaved rounds" in profile_table([teacher])


def test_profile_defaults_to_one_thread_and_says_so(capsys):
    args = ["profile", "recipes/quickstart.yaml", "--shape", "3,32,32", "--warmup", "0", "--repeats", "2"]
    assert main(args) == 0
    assert "1 thread, median of 2 interleaved rounds" in capsys.readouterr().out
    assert main([*args, "--repeats", "0"]) == 2


def test_profiling_on_a_shape_a_model_cannot_take_names_the_model_and_the_option():
    from distill.deploy.cost import profile_models
    from distill.errors import DistillError
    from distill.models.recognition.classification import vgg_m

    net = vgg_m(num_classes=4, width=0.1, fc_dim=16, pool=1)  # 7x7 stride-2 first conv without padding
    match = r"model 'student' does not run on an input of shape \(1, 3, 4, 4\).*--shape"
    with pytest.raises(DistillError, match=match):
        profile_models({"student": net}, torch.rand(1, 3, 4, 4), warmup=0, repeats=1)
