"""The main job end to end, as a user runs it: `talkface benchmark` on the bundled clips, checked in MLflow."""
from __future__ import annotations

import re
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from storage import tracking
from tests.conftest import talkface


def test_benchmark_builds_trains_scores_and_logs_to_mlflow(tmp_path):
    data_root = tmp_path / "data root"
    result = talkface("benchmark", "--data-root", data_root, "--steps", "40", "--size", "small")
    assert result.returncode == 0, result.stderr[-4000:]
    run_id = re.search(r"MLflow run: ([0-9a-f]{32})", result.stdout).group(1)
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout and "127.0.0.1" in result.stdout

    client = MlflowClient(tracking.tracking_uri(data_root))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "atnet" and run.data.params["steps"] == "40"
    assert run.data.params["store_version"] == Path(run.data.params["store"]).name
    losses = client.get_metric_history(run_id, "train/loss")
    assert [m.step for m in losses] == list(range(1, 41))
    assert min(m.value for m in losses[-10:]) < losses[0].value  # it learns
    lmd = run.data.metrics["test/grid/lmd_mouth"]
    assert 0 < lmd < 10 and run.data.metrics["test/grid/n_clips"] == 1  # s2 is the bundled test speaker
    artifacts = {a.path for a in client.list_artifacts(run_id, "checkpoints")}
    assert artifacts == {"checkpoints/atnet-step000040.pt"}
    local = Path(client.download_artifacts(run_id, "checkpoints/atnet-step000040.pt", str(tmp_path)))
    ckpt = torch.load(local, weights_only=True)
    assert ckpt["step"] == 40 and "model" in ckpt
