"""The main job end to end, as a user runs it: `talkface benchmark` on the bundled clips (ATVGnet, the lip GAN,
Vougioukas et al. 2019 and Zheng et al. 2020, WER by the shared lip reader, tiny CPU training; then `talkface
generate --system lipgan`, `--system sda` and `--system zheng` from what it registered), checked in MLflow: one
parent run with the training and evaluation nested under it, the store as its input dataset, every metric,
side-by-side sample videos, the comparison with the published numbers. (The "atnet" variant runs through the served
one-click deployment in test_serve.py.)"""
from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import pytest
import torch
from mlflow.tracking import MlflowClient

from storage import tracking
from tasks import media
from tests.authors_trees import sda_mean_face, write_atvgnet_release, write_sda_release
from tests.conftest import ROOT, talkface


def test_benchmark_builds_trains_scores_and_logs_to_mlflow(tmp_path):
    data_root = tmp_path / "data root"
    # the authors' releases first (files shaped as theirs, random weights): --with-authors scores them beside
    atnet, vgnet = write_atvgnet_release(tmp_path / "release")
    dat = write_sda_release(tmp_path / "release" / "grid.dat", sda_mean_face())
    for system, *files in (("atvgnet", atnet, vgnet), ("sda", dat)):
        imported = talkface("import-weights", "--system", system, *(a for f in files for a in ("--file", f)),
                            "--data-root", data_root)
        assert imported.returncode == 0, imported.stderr[-3000:]
    result = talkface("benchmark", "--data-root", data_root, "--systems", "atvgnet,lipgan,sda,zheng", "--with-authors",
                      "--dataset", "grid",
                      "--preset", "small", "--set", "atvgnet.atnet.steps=40", "--set", "atvgnet.vgnet.steps=6",
                      "--set", "atvgnet.vgnet.batch_size=2", "--set", "lipgan.flownet.steps=3",
                      "--set", "lipgan.perceptual.steps=3", "--set", "lipgan.lipgan.steps=4",
                      "--set", "lipgan.lipgan.batch_size=2", "--set", "sda.sda.steps=3", "--set",
                      "sda.sda.max_frames=16", "--set", "zheng.word.steps=5", "--set", "zheng.mi.steps=5",
                      "--set", "zheng.a2l.steps=3", "--set", "zheng.l2f.steps=3", "--set", "zheng.l2f.batch_size=2",
                      "--sync-steps", "10", "--reader-steps", "10")
    assert result.returncode == 0, result.stderr[-4000:]
    run_id = re.search(r"MLflow run: ([0-9a-f]{32})", result.stdout).group(1)
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout and "127.0.0.1" in result.stdout
    assert "| LMD (mouth) |" in result.stdout and "| PSNR (dB) |" in result.stdout
    assert "ATVGnet (Chen et al. 2019)" in result.stdout

    client = MlflowClient(tracking.tracking_uri(data_root))
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["systems"] == "['atvgnet', 'lipgan', 'sda', 'zheng']"
    assert "atvgnet.atnet.steps" in parent.data.params["overrides"]
    store_version = parent.data.params["store_version"]
    [dataset] = parent.inputs.dataset_inputs
    assert dataset.dataset.name == f"grid-{store_version}" and dataset.dataset.digest == store_version
    m = {k.removeprefix("test/grid/atvgnet/"): v for k, v in parent.data.metrics.items()}
    assert m["n_clips"] == 1 and m["n_frames"] == 75  # s2/swwp2s is the bundled test speaker's clip
    assert 0 < m["lmd"] < 20 and 5 < m["psnr"] < 60 and 0 < m["ssim"] <= 1 and 0 <= m["cpbd"] <= 1
    assert m["psnr_paper"] != m["psnr"] and m["lmd_sum"] > m["lmd"] and m["fps"] > 0 and "acd" in m
    assert 0 <= m["blinks_per_s_real"] < 3  # measured on the real frames of the same clip
    comparison = Path(client.download_artifacts(run_id, "leaderboard.md", str(tmp_path))).read_text()
    assert "| 32.15 |" in comparison  # ATVGnet's published PSNR beside it (the LMD row: below, with the lip GAN's)

    def children(parent_id: str) -> dict:
        return {r.data.tags["mlflow.runName"]: r for r in client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")}

    nested = children(run_id)  # a run per system, the shared SyncNet and lip reader, the authors' evaluations
    assert set(nested) == {"atvgnet", "lipgan", "sda", "zheng", "syncnet-grid", "lipreader-grid", "evaluate-grid"}
    for label, key in (("atvgnet@authors", "atvgnet-authors"), ("sda@authors-grid", "sda-authors-grid")):
        assert f" {label} (this run) |" in comparison  # a leaderboard column of its own
        assert 0 < parent.data.metrics[f"test/grid/{key}/ssim"] <= 1 and f"**{label}**: model" in result.stdout
    assert [m.step for m in client.get_metric_history(nested["lipreader-grid"].info.run_id,
                                                      "train/lipreader/loss")] == list(range(1, 11))
    for system in ("atvgnet", "lipgan", "sda", "zheng"):  # WER of every system and of the real video, one reader
        scores = {k.removeprefix(f"test/grid/{system}/"): v for k, v in parent.data.metrics.items()
                  if f"/{system}/" in k}
        assert {"wer", "wer_snapped", "wer_real", "wer_snapped_real"} <= set(scores), system
        assert all(0 <= scores[k] for k in ("wer", "wer_real")), system
        assert f"WER by the lip reader: {100 * scores['wer']:.1f} % greedy" in result.stdout
    assert [m.step for m in client.get_metric_history(nested["syncnet-grid"].info.run_id, "train/syncnet/loss")] == \
        list(range(1, 11))
    assert -15 <= m["av_offset"] <= 15 and m["av_confidence"] >= 0
    system = nested["atvgnet"]
    assert system.data.metrics["test/grid/lmd"] == m["lmd"]
    under = children(system.info.run_id)  # the system's training and evaluation
    assert set(under) == {"atvgnet-grid", "evaluate-grid"}
    trained, scored = under["atvgnet-grid"], under["evaluate-grid"]
    assert trained.info.status == scored.info.status == nested["syncnet-grid"].info.status == "FINISHED"
    assert trained.data.params["store_version"] == store_version
    losses = client.get_metric_history(trained.info.run_id, "train/atnet/loss")
    assert [m.step for m in losses] == list(range(1, 41))
    assert min(m.value for m in losses[-10:]) < losses[0].value  # it learns
    assert scored.data.metrics["test/grid/lmd"] == m["lmd"]
    assert scored.data.tags["model_uri"] == "models:/atvgnet/2"  # version 1: the authors' weights
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
    assert ckpt["step"] == 40 and set(ckpt["modules"]) == {"atnet"}

    # the lip GAN beside it: its three stages in order, scored on its mouths, beside the paper's own tables
    lip = {k.removeprefix("test/grid/lipgan/"): v for k, v in parent.data.metrics.items() if "/lipgan/" in k}
    assert lip["n_frames"] == 75 and 0 < lip["lmd"] < 20 and 5 < lip["psnr"] < 60 and 0 <= lip["cpbd"] <= 1
    assert "acd" not in lip and "blinks_per_s" not in lip and -15 <= lip["av_offset"] <= 15
    [lmd_row] = [line for line in comparison.splitlines() if line.startswith("| LMD (mouth) |")][:1]
    assert lmd_row.startswith(f"| LMD (mouth) | {m['lmd']:.3f} | {lip['lmd']:.3f} | ") and "| 1.29 | 1.18 |" in lmd_row
    assert "Chen et al. 2018, Tab. 2 (GRID ablations)" in comparison
    assert "| (f) non-derivative correlation |" in comparison
    lip_runs = children(nested["lipgan"].info.run_id)
    assert set(lip_runs) == {"lipgan-grid", "evaluate-grid"}
    lip_trained = lip_runs["lipgan-grid"]
    assert {a.path for a in client.list_artifacts(lip_trained.info.run_id, "checkpoints")} == {
        "checkpoints/flownet-step000003.pt", "checkpoints/perceptual-step000003.pt", "checkpoints/lipgan-step000004.pt"}
    assert [m.step for m in client.get_metric_history(lip_trained.info.run_id, "train/lipgan/g/total")] == [1, 2, 3, 4]
    [video] = [a.path for a in client.list_artifacts(lip_runs["evaluate-grid"].info.run_id, "samples")]
    decoded = media.decode(Path(client.download_artifacts(lip_runs["evaluate-grid"].info.run_id, video, str(tmp_path))))
    assert decoded.frames.shape == (75, 128, 256, 3)  # face views: generated | real mouths in the still face

    sda = {k.removeprefix("test/grid/sda/"): v for k, v in parent.data.metrics.items() if "/sda/" in k}
    assert sda["n_frames"] == 75 and 5 < sda["psnr"] < 60 and "acd" in sda and "blinks_per_s" in sda
    assert "| WER (%) |" in comparison

    # Zheng et al. 2020: four stages in order, the detector's held-out accuracy, A2L's LMD beside AT-net's
    zheng = {k.removeprefix("test/grid/zheng/"): v for k, v in parent.data.metrics.items() if "/zheng/" in k}
    assert zheng["n_frames"] == 75 and 0 < zheng["lmd_a2l"] < 20 and 5 < zheng["psnr"] < 60 and "acd" in zheng
    # three L2F steps render no face dlib finds: the frames are counted as missing, the LMD is NaN, not a number
    assert zheng["lmd_missing"] == 75 if math.isnan(zheng["lmd"]) else 0 < zheng["lmd"] < 20
    assert 0 < m["lmd_a2l"] < 20 and zheng["n_clips_frontal"] + zheng["n_clips_profile"] <= 1
    zheng_trained = children(nested["zheng"].info.run_id)["zheng-grid"]
    assert {a.path for a in client.list_artifacts(zheng_trained.info.run_id, "checkpoints")} == {
        "checkpoints/word-step000005.pt", "checkpoints/mi-step000005.pt", "checkpoints/a2l-step000003.pt",
        "checkpoints/l2f-step000003.pt"}
    assert 0 <= zheng_trained.data.metrics["eval/word/test/accuracy"] <= 1
    assert "Zheng et al. 2020, Tab. III (GRID, trained on LRW)" in comparison
    assert "| LMD of the predicted landmarks (A2L, AT-net) |" in comparison

    photo = tmp_path / "photo.png"
    frame = media.decode(ROOT / "samples" / "grid" / "s1" / "bbaf2n.mpg").frames[10]
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "lipgan.mp4"
    generated = talkface("generate", "--image", photo, "--audio", ROOT / "samples" / "grid" / "s1" / "lwik8n.mpg",
                         "--out", out, "--system", "lipgan", "--data-root", data_root)
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert "75 frames, 360x288, 3.00 s at 25 fps" in generated.stdout  # the whole photo, the mouth pasted in
    video = media.decode(out)
    assert video.fps_source == 25 and video.frames.shape == (75, 288, 360, 3)
    assert abs(len(video.audio) / 16000 - 3.0) < 1 / 25
    out = tmp_path / "sda.mp4"
    generated = talkface("generate", "--image", photo, "--audio", ROOT / "samples" / "grid" / "s1" / "lwik8n.mpg",
                         "--out", out, "--system", "sda", "--data-root", data_root)
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert "75 frames, 360x288, 3.00 s at 25 fps" in generated.stdout  # the 128×96 face pasted into the photo
    out = tmp_path / "zheng.mp4"
    generated = talkface("generate", "--image", photo, "--audio", ROOT / "samples" / "grid" / "s1" / "lwik8n.mpg",
                         "--out", out, "--system", "zheng", "--data-root", data_root)
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert "75 frames, 360x288, 3.00 s at 25 fps" in generated.stdout
    assert media.decode(out).frames.shape == (75, 288, 360, 3)


def test_a_dataset_whose_test_split_is_empty_stops_before_training(tmp_path):
    """CREMA-D's four shared sample clips hold no test-split actor: the benchmark says so and trains nothing."""
    raw = ROOT.parent / "shared" / "data" / "samples" / "crema_d"
    if not raw.is_dir():
        pytest.skip("no shared CREMA-D samples in this clone")
    data_root = tmp_path / "data"
    result = talkface("benchmark", "--data-root", data_root, "--dataset", "crema_d", "--raw-root", raw,
                      "--preset", "small", "--steps", "1", "--sync-steps", "0")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "no ok clip in the test split (crema_d: its test speakers: 1015, 1020" in result.stderr
    assert not (data_root / "runs").exists()  # nothing trained


def test_bad_benchmark_requests_exit_2(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    for args, message in ((("--systems", "syncnet"), "'atvgnet'"),
                          (("--dataset", "crema_d"), "needs --raw-root"),
                          (("--set", "atvgnet.vgnet.use_dma=false"), "VGNetTrainConfig has no field 'use_dma'")):
        result = CliRunner().invoke(app, ["benchmark", "--data-root", str(tmp_path / "data"), *args])
        assert result.exit_code == 2 and message in result.stderr, (args, result.output[-2000:])
    assert not (tmp_path / "data").exists()
