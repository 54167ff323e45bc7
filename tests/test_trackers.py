"""output.trackers: W&B (offline) and MLflow (a store in the run folder) get what metrics.jsonl gets, read back with
their own clients; a killed and resumed run keeps one tracker run; a failing tracker is one line and the run goes on.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from distill.engine import trackers as trk
from distill.engine.run_log import RunLogger, read_metrics, record_scalars
from distill.errors import DistillError, RecipeError
from distill.recipe.config import OutputConfig

HAVE_WANDB = importlib.util.find_spec("wandb") is not None
HAVE_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_both = pytest.mark.skipif(
    not (HAVE_WANDB and HAVE_MLFLOW), reason="the wandb and mlflow extras are not installed (pip install -e .[test])"
)


@pytest.fixture
def wandb_home(tmp_path, monkeypatch):
    """W&B's own folders (settings, cache, artifact staging) inside the test's tmp_path, and no network."""
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    for var in ("WANDB_MODE", "WANDB_API_KEY", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "wandb_home"


# ------------------------------------------------------------------------------------------ reading W&B's log file
def wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline run's ``run-<id>.wandb`` file (W&B's LevelDB-style log: a 7-byte header,
    then 32 KiB blocks of chunks, each ``crc32 | length | type`` and a piece of a ``wandb_internal_pb2.Record``)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, block, records, pieces = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        pieces += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL, LAST
            record = pb.Record()
            record.ParseFromString(pieces)
            records.append(record)
            pieces = b""
    return records


def wandb_history(records: list[Any]) -> list[dict[str, float]]:
    rows = []
    for rec in records:
        if rec.WhichOneof("record_type") == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
    return rows


# --------------------------------------------------------------------------------------------------- fast checks
def test_trackers_key_is_checked_with_the_choices():
    from distill.recipe.check import load_recipe
    from tests.test_mrkd_e2e import RECIPE

    def load(*sets: str) -> Any:
        return load_recipe(RECIPE, list(sets))[0]

    with pytest.raises(RecipeError, match=r"output.trackers\[0\].*Did you mean 'wandb'.*tensorboard, wandb, mlflow"):
        load("output.trackers=[wandbb]")
    with pytest.raises(RecipeError, match="mlflow listed twice"):
        load("output.trackers=[mlflow, mlflow]")
    with pytest.raises(RecipeError, match="disagree"):
        load("output.trackers=[tensorboard]", "output.tensorboard=false")
    recipe = load("output.trackers=[tensorboard, wandb]", "output.wandb.mode=online")
    assert trk.tensorboard_setting(recipe.output) is True and recipe.output.wandb.mode == "online"
    assert trk.tensorboard_setting(OutputConfig(tensorboard=False)) is False  # no trackers key: as before
    assert trk.tensorboard_setting(OutputConfig(trackers=["mlflow"])) is False


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(DistillError) as err:
        trk.check_trackers(OutputConfig(trackers=["tensorboard", "wandb"]))
    assert "pip install 'distill[wandb]'" in str(err.value) and "\n" not in str(err.value)
    trk.check_trackers(OutputConfig(trackers=["wandb"]), installed=False)  # recipe validation: no install check
    # ranks > 0 of torchrun open their logger without a folder: no tracker, nothing imported
    assert not trk.open_trackers(OutputConfig(trackers=["wandb", "mlflow"]), None, {}, resume=False)


class Flaky:
    """A tracker that fails on its second record."""

    name = "flaky"

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.closed = False

    def log(self, scalars, step):  # type: ignore[no-untyped-def]
        if self.seen:
            raise ConnectionError("server went away\nsecond line")
        self.seen.append(step)

    def log_artifact(self, path):  # type: ignore[no-untyped-def]
        raise AssertionError("a failed tracker gets nothing more")

    def close(self) -> None:
        self.closed = True


def test_a_tracker_failing_mid_run_is_one_warning_and_the_local_log_stays_complete(tmp_path, capsys):
    flaky = Flaky()
    logger = RunLogger(tmp_path, tensorboard=False, trackers=trk.Trackers([flaky]))
    records = [
        {"kind": "train", "step": s, "epoch": 0, "loss": {"kd": 1.0 / s}, "lr": {"student": 0.1}} for s in (1, 2, 3)
    ]
    for record in records:
        logger.log(record)
    (tmp_path / "student.pt").write_bytes(b"x")
    logger.log_outputs()
    logger.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distill: warning: flaky tracker failed while logging (ConnectionError")
    assert "metrics.jsonl is complete" in err[0] and flaky.seen == [1] and not flaky.closed
    assert read_metrics(tmp_path / "metrics.jsonl") == records
    assert record_scalars(records[0]) == {"train/loss/kd": 1.0, "train/lr/student": 0.1}


class Recorder:
    name = "recorder"

    def __init__(self, replays: bool) -> None:
        self.replays_on_resume = replays
        self.steps: list[int] = []

    def log(self, scalars, step):  # type: ignore[no-untyped-def]
        self.steps.append(step)

    def log_artifact(self, path):  # type: ignore[no-untyped-def]
        pass

    def close(self) -> None:
        pass


def test_a_resume_sends_the_kept_records_again_to_trackers_that_buffer(tmp_path):
    lines = [{"kind": "train", "step": s, "epoch": 0, "loss": {"kd": float(s)}} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"kind": "tr')
    buffered, committed = Recorder(replays=True), Recorder(replays=False)
    logger = RunLogger(tmp_path, tensorboard=False, trackers=trk.Trackers([buffered, committed]))
    logger.truncate_after(3)  # resumed from the checkpoint at step 3
    assert buffered.steps == [1, 2, 3] and committed.steps == []
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    logger.truncate_after(0)  # a fresh start sends nothing
    assert buffered.steps == [1, 2, 3]


# ---------------------------------------------------------------------------------- the real trackers, offline
RECIPE = {"name": "toy", "train": {"seed": 3}, "models": {"student": {"name": "m", "args": {"w": 4}}}}
RECORDS = [
    {"kind": "train", "step": 5, "epoch": 0, "loss": {"kd": 0.5, "task": 0.25}, "lr": {"student": 0.01}},
    {"kind": "eval", "step": 5, "epoch": 0, "split": "test",
     "results": {"student": {"overall": {"srcc": 0.75}, "groups": {"01": {"srcc": 0.5}}, "n": 9}}},
]  # fmt: skip


def log_a_run(out: Path, tracker: str) -> dict[str, Any]:
    """Open one tracker for a run folder, log RECORDS and the run's files as the trainer does; its trackers.json."""
    out.mkdir()
    trackers = trk.open_trackers(OutputConfig(trackers=[tracker]), out, RECIPE, resume=False)
    assert [t.name for t in trackers.trackers] == [tracker]
    logger = RunLogger(out, tensorboard=False, trackers=trackers)
    for record in RECORDS:
        logger.log(record)
    (out / "student.pt").write_bytes(b"weights")
    (out / "results.json").write_text("{}")
    logger.log_outputs()
    logger.close()
    return json.loads((out / trk.IDS_FILE).read_text())[tracker]


@pytest.mark.skipif(not HAVE_MLFLOW, reason="the mlflow extra is not installed (pip install -e .[mlflow])")
def test_mlflow_store_in_the_run_folder_holds_records_config_and_files(tmp_path, wandb_home):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    ids = log_a_run(out, "mlflow")
    assert ids["tracking_uri"] == f"sqlite:///{out.resolve() / 'mlflow.db'}"  # MLflow's own client reads it back
    client = MlflowClient(tracking_uri=ids["tracking_uri"])
    run = client.get_run(ids["id"])
    assert run.info.status == "FINISHED" and run.data.params["train.seed"] == "3"
    assert run.data.params["models.student.args.w"] == "4"
    assert run.data.metrics == {tag: v for r in RECORDS for tag, v in record_scalars(r).items()}
    group = client.get_metric_history(run.info.run_id, "eval/test/results/student/groups/01/srcc")
    assert [(m.step, m.value) for m in group] == [(5, 0.5)]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["results.json", "student.pt"]
    assert str(out.resolve()) in run.info.artifact_uri  # the files stay in the run folder


@pytest.mark.skipif(not HAVE_WANDB, reason="the wandb extra is not installed (pip install -e .[wandb])")
def test_wandb_offline_run_holds_records_config_and_files(tmp_path, wandb_home):
    out = tmp_path / "run"
    ids = log_a_run(out, "wandb")
    import wandb

    wandb.teardown()  # wait for W&B's service process to write out the run's log before reading it
    assert ids["mode"] == "offline"  # nothing uploaded: the run lives under <run>/wandb until `wandb sync`
    (folder,) = (out / "wandb").glob(f"offline-run-*-{ids['id']}")
    records = wandb_records(folder / f"run-{ids['id']}.wandb")
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["train"] == {"seed": 3} and config["name"] == "toy" and run.run_id == ids["id"]
    rows = [{k: v for k, v in row.items() if not k.startswith("_")} for row in wandb_history(records)]
    assert rows == [{"step": 5, **record_scalars(r)} for r in RECORDS]
    artifacts = [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]
    assert sorted(c.path for a in artifacts for c in a.manifest.contents) == ["results.json", "student.pt"]
    assert not list(wandb_home.rglob("student.pt"))  # referenced in place, not copied into W&B's staging cache


@needs_both
@pytest.mark.slow
def test_killed_and_resumed_run_keeps_one_tracker_run(tmp_path, wandb_home, one_thread):
    """SIGKILL at step 11 (checkpoint at 10), then --resume: one W&B run id, one MLflow run, every step logged."""
    from mlflow.tracking import MlflowClient

    from tests.test_crash_resume import run_killable
    from tests.test_distributed import register_toys, toy_recipe

    register_toys()
    path = toy_recipe(tmp_path / "toy.yaml", "mrkd", group_by="distortion")
    recipe = yaml.safe_load(path.read_text())
    recipe["output"] = {"trackers": ["wandb", "mlflow"]}
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "run"
    proc = run_killable(path, out, "step:11")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    first = json.loads((out / trk.IDS_FILE).read_text())
    proc = run_killable(path, out, None, resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning" not in proc.stderr
    ids = json.loads((out / trk.IDS_FILE).read_text())
    assert ids == first

    log = read_metrics(out / "metrics.jsonl")
    train_steps = sorted(r["step"] for r in log if r["kind"] == "train")
    client = MlflowClient(tracking_uri=ids["mlflow"]["tracking_uri"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_id for r in runs] == [ids["mlflow"]["id"]] and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(ids["mlflow"]["id"], "train/loss/total")
    # the killed attempt logged step 11 after its last checkpoint (10); the resume redid it: the only repeat, same
    # value (MLflow commits every call, so nothing is re-sent to it)
    assert sorted(m.step for m in history) == sorted([*train_steps, 11])
    by_step = {r["step"]: r["loss"]["total"] for r in log if r["kind"] == "train"}
    assert all(m.value == pytest.approx(by_step[m.step]) for m in history)
    names = {a.path for a in client.list_artifacts(ids["mlflow"]["id"])}
    assert {"student.pt", "results.json", "recipe.yaml", "report.html"} <= names

    folders = sorted((out / "wandb").glob("offline-run-*"))
    assert len(folders) >= 2 and all(f.name.endswith(ids["wandb"]["id"]) for f in folders)  # one id, every attempt
    steps = set()
    for folder in folders:
        records = wandb_records(folder / f"run-{ids['wandb']['id']}.wandb")
        run_ids = {r.run.run_id for r in records if r.WhichOneof("record_type") == "run"}
        # a SIGKILLed attempt may lose W&B's buffered records (its run record included): no other id, though, and
        # the resumed attempt (the last folder) carries the same id
        assert run_ids <= {ids["wandb"]["id"]}
        assert folder != folders[-1] or run_ids == {ids["wandb"]["id"]}
        steps |= {row["step"] for row in wandb_history(records) if "train/loss/total" in row}
    assert sorted(steps) == train_steps  # the killed attempt's unwritten records were sent again on resume
