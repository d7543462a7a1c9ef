"""The main job end to end, as a user runs it: `talkface benchmark` on the bundled clips, checked in MLflow: one
parent run with the training and evaluation nested under it, the store as its input dataset, the comparison with
the published numbers."""
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
    assert "| LMD (mouth) |" in result.stdout and "ATVGnet (Chen et al. 2019)" in result.stdout

    client = MlflowClient(tracking.tracking_uri(data_root))
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model"] == "atnet" and parent.data.params["steps"] == "40"
    store_version = parent.data.params["store_version"]
    [dataset] = parent.inputs.dataset_inputs
    assert dataset.dataset.name == f"grid-{store_version}" and dataset.dataset.digest == store_version
    lmd = parent.data.metrics["test/grid/lmd_mouth"]
    assert 0 < lmd < 10 and parent.data.metrics["test/grid/n_clips"] == 1  # s2 is the bundled test speaker
    comparison = Path(client.download_artifacts(run_id, "comparison.md", str(tmp_path)))
    assert f"{lmd:.3f}" in comparison.read_text() and "| 1.29 |" in comparison.read_text()

    children = {r.data.tags["mlflow.runName"].split("-")[0]: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")}
    assert set(children) == {"atnet", "evaluate"}
    trained, scored = children["atnet"], children["evaluate"]
    assert trained.info.status == scored.info.status == "FINISHED"
    assert trained.data.params["store_version"] == store_version
    losses = client.get_metric_history(trained.info.run_id, "train/loss")
    assert [m.step for m in losses] == list(range(1, 41))
    assert min(m.value for m in losses[-10:]) < losses[0].value  # it learns
    assert scored.data.metrics["test/grid/lmd_mouth"] == lmd
    assert [d.dataset.digest for d in scored.inputs.dataset_inputs] == [store_version]
    artifacts = {a.path for a in client.list_artifacts(trained.info.run_id, "checkpoints")}
    assert artifacts == {"checkpoints/atnet-step000040.pt"}
    local = Path(client.download_artifacts(trained.info.run_id, "checkpoints/atnet-step000040.pt", str(tmp_path)))
    ckpt = torch.load(local, weights_only=True)
    assert ckpt["step"] == 40 and "model" in ckpt
