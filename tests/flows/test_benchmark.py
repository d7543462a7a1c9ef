"""The main job end to end, as a user runs it: `talkface benchmark` on the bundled clips (ATVGnet, tiny CPU
training), checked in MLflow: one parent run with the training and evaluation nested under it, the store as its
input dataset, every metric, side-by-side sample videos, the comparison with the published numbers. (The "atnet"
variant runs through the served one-click deployment in test_serve.py.)"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from storage import tracking
from tasks import media
from tests.conftest import talkface


def test_benchmark_builds_trains_scores_and_logs_to_mlflow(tmp_path):
    data_root = tmp_path / "data root"
    result = talkface("benchmark", "--data-root", data_root, "--steps", "40", "--size", "small", "--vgnet-steps", "6",
                      "--vgnet-batch-size", "2", "--sync-steps", "10")
    assert result.returncode == 0, result.stderr[-4000:]
    run_id = re.search(r"MLflow run: ([0-9a-f]{32})", result.stdout).group(1)
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout and "127.0.0.1" in result.stdout
    assert "| LMD (mouth) |" in result.stdout and "| PSNR (dB) |" in result.stdout
    assert "ATVGnet (Chen et al. 2019)" in result.stdout

    client = MlflowClient(tracking.tracking_uri(data_root))
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model"] == "atvgnet" and parent.data.params["steps"] == "40"
    store_version = parent.data.params["store_version"]
    [dataset] = parent.inputs.dataset_inputs
    assert dataset.dataset.name == f"grid-{store_version}" and dataset.dataset.digest == store_version
    m = {k.removeprefix("test/grid/"): v for k, v in parent.data.metrics.items()}
    assert m["n_clips"] == 1 and m["n_frames"] == 75  # s2/swwp2s is the bundled test speaker's clip
    assert 0 < m["lmd"] < 20 and 5 < m["psnr"] < 60 and 0 < m["ssim"] <= 1 and 0 <= m["cpbd"] <= 1
    assert m["psnr_paper"] != m["psnr"] and m["lmd_sum"] > m["lmd"] and m["fps"] > 0 and "acd" in m
    assert 0 <= m["blinks_per_s_real"] < 3  # measured on the real frames of the same clip
    comparison = Path(client.download_artifacts(run_id, "comparison.md", str(tmp_path))).read_text()
    assert f"| LMD (mouth) | {m['lmd']:.3f} | 1.29 |" in comparison and "| 32.15 |" in comparison

    children = {r.data.tags["mlflow.runName"].split("-")[0]: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")}
    assert set(children) == {"atvgnet", "syncnet", "evaluate"}
    assert [m.step for m in client.get_metric_history(children["syncnet"].info.run_id, "train/syncnet/loss")] == \
        list(range(1, 11))
    assert -15 <= m["av_offset"] <= 15 and m["av_confidence"] >= 0
    trained, scored = children["atvgnet"], children["evaluate"]
    assert trained.info.status == scored.info.status == children["syncnet"].info.status == "FINISHED"
    assert trained.data.params["store_version"] == store_version
    losses = client.get_metric_history(trained.info.run_id, "train/loss")
    assert [m.step for m in losses] == list(range(1, 41))
    assert min(m.value for m in losses[-10:]) < losses[0].value  # it learns
    assert scored.data.metrics["test/grid/lmd"] == m["lmd"]
    assert scored.data.tags["model_uri"] == "models:/atvgnet/1"
    assert [d.dataset.digest for d in scored.inputs.dataset_inputs] == [store_version]
    [video] = [a.path for a in client.list_artifacts(scored.info.run_id, "samples")]
    assert video == "samples/s2_swwp2s-generated-vs-real.mp4"
    decoded = media.decode(Path(client.download_artifacts(scored.info.run_id, video, str(tmp_path))))
    assert decoded.frames.shape == (75, 128, 256, 3) and abs(len(decoded.audio) / 16000 - 3.0) < 0.04
    table = {a.path for a in client.list_artifacts(scored.info.run_id, "evaluation")}
    assert {"evaluation/test-grid-per-clip.json", "evaluation/test-grid-per-clip.parquet"} <= table
    artifacts = {a.path for a in client.list_artifacts(trained.info.run_id, "checkpoints")}
    assert artifacts == {"checkpoints/atnet-step000040.pt", "checkpoints/vgnet-step000006.pt"}
    local = Path(client.download_artifacts(trained.info.run_id, "checkpoints/atnet-step000040.pt", str(tmp_path)))
    ckpt = torch.load(local, weights_only=True)
    assert ckpt["step"] == 40 and "model" in ckpt
