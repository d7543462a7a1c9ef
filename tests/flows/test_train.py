"""`talkface train --system atvgnet` and `talkface generate`, as a user runs them: both stages trained from the real
sample store with checkpoints, sample images and losses in MLflow, the cascade registered as `atvgnet@champion`,
resumed from its MLflow run at the step it stopped, then turned into an mp4 from a photo and a recording."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import ffmpeg
import pytest
from mlflow.tracking import MlflowClient

from storage import tracking
from tasks import media
from tests.conftest import SAMPLES, talkface

SMALL = ("--system", "atvgnet", "--preset", "small", "--set", "atnet.steps=10", "--set", "vgnet.batch_size=2",
         "--set", "atnet.checkpoint_every=3", "--set", "vgnet.checkpoint_every=3", "--set", "vgnet.sample_every=3")


def run_ffmpeg(stream) -> None:
    stream.global_args("-hide_banner", "-nostdin", "-loglevel", "error").run(
        cmd=media.ffmpeg_exe(), overwrite_output=True, capture_stdout=True, capture_stderr=True)


@pytest.fixture(scope="module")
def trained(grid_store, tmp_path_factory) -> dict:
    """A 6-step VG-net run (AT-net 10 steps), then the same run resumed from its MLflow run id up to 9 steps, its
    local checkpoint folder removed first so that the resume must fetch the checkpoints from MLflow."""
    data_root = tmp_path_factory.mktemp("train data")
    first = talkface("train", "--store", grid_store, "--data-root", data_root, *SMALL, "--set", "vgnet.steps=6")
    assert first.returncode == 0, first.stderr[-4000:]
    run_id = re.search(r"MLflow run: ([0-9a-f]{32})", first.stdout).group(1)
    client = MlflowClient(tracking.tracking_uri(data_root))
    before = {m.step: m.value for m in client.get_metric_history(run_id, "train/vgnet/g/total")}
    shutil.rmtree(data_root / "runs" / run_id / "checkpoints")  # as on another machine: only MLflow has them
    resumed = talkface("train", "--store", grid_store, "--data-root", data_root, *SMALL, "--set", "vgnet.steps=9",
                       "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return {"data_root": data_root, "run_id": run_id, "client": client, "before": before, "first": first.stdout,
            "resumed": resumed.stdout}


def test_atvgnet_training_logs_both_stages_to_mlflow(trained):
    client, run_id = trained["client"], trained["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["system"] == "atvgnet" and run.data.params["vgnet.generator.use_dma"] == "True"
    assert run.data.params["vgnet.steps"] == "6" and run.data.tags["resume.vgnet.steps"] == "9"
    assert [m.step for m in client.get_metric_history(run_id, "train/atnet/loss")] == list(range(1, 11))  # AT-net once
    for term in ("g/total", "g/pixel", "g/gan", "g/landmark", "d/total"):
        assert [m.step for m in client.get_metric_history(run_id, f"train/vgnet/{term}")] == list(range(1, 10))
    checkpoints = {Path(a.path).name for a in client.list_artifacts(run_id, "checkpoints")}
    assert {"atnet-step000010.pt", "vgnet-step000006.pt", "vgnet-step000009.pt"} <= checkpoints
    images = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    for key in ("frames", "attention"):  # MLflow stores image key k at step s as images/k~+step+s+...
        logged = sorted(int(re.search(r"\+step\+(\d+)\+", p)[1]) for p in images if f"samples~{key}+" in p)
        assert logged == [3, 6, 9], images


def test_resume_from_the_run_continues_at_its_step(trained):
    client, run_id, before = trained["client"], trained["run_id"], trained["before"]
    after = {m.step: m.value for m in client.get_metric_history(run_id, "train/vgnet/g/total")}
    assert sorted(before) == list(range(1, 7)) and sorted(after) == list(range(1, 10))
    assert all(after[s] == before[s] for s in before)  # the first session's history is kept as it was
    assert "vgnet-step000009.pt" in trained["resumed"]
    fetched = sorted(p.name for p in (trained["data_root"] / "runs" / run_id / "checkpoints").glob("*.pt"))
    # only the latest checkpoint of each stage came back from MLflow; the rest was written by the resumed run
    assert fetched == ["atnet-step000010.pt", "vgnet-step000006.pt", "vgnet-step000009.pt"]


def test_the_cascade_is_registered_with_an_alias(trained):
    client = MlflowClient(tracking.tracking_uri(trained["data_root"]), registry_uri=tracking.tracking_uri(trained["data_root"]))
    version = client.get_model_version_by_alias("atvgnet", "champion")
    assert version.run_id == trained["run_id"] and str(version.version) == "2"  # the resumed run registered again
    assert "models:/atvgnet@champion (version 2)" in trained["resumed"]
    local = Path(client.download_artifacts(trained["run_id"], "model", str(trained["data_root"] / "check")))
    card = json.loads((local / "model.json").read_text())
    assert card["system"]["name"] == "atvgnet" and card["mlflow_run_id"] == trained["run_id"]
    assert card["files"]["vgnet.pt"]["steps"] == 9 and card["files"]["atnet.pt"]["steps"] == 10


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("generate inputs")
    files = {"face": d / "photo.jpg", "speech": d / "speech 44k stereo.wav", "noface": d / "testsrc.png"}
    run_ffmpeg(ffmpeg.input(str(SAMPLES / "s1" / "bbaf2n.mpg"), ss=1).output(str(files["face"]), vframes=1))
    run_ffmpeg(ffmpeg.input(str(SAMPLES / "s1" / "lwik8n.mpg")).audio
               .output(str(files["speech"]), ar=44100, ac=2, t=2.3, acodec="pcm_s16le"))
    run_ffmpeg(ffmpeg.input("testsrc=size=360x288:rate=25", f="lavfi").output(str(files["noface"]), vframes=1))
    return files


def test_generate_from_the_registered_model(trained, inputs, tmp_path):
    out = tmp_path / "talking face.mp4"
    result = talkface("generate", "--image", inputs["face"], "--audio", inputs["speech"], "--out", out,
                      "--data-root", trained["data_root"])  # default model: models:/atvgnet@champion
    assert result.returncode == 0, result.stderr[-4000:]
    assert "58 frames, 360x288, 2.32 s at 25 fps" in result.stdout  # ceil(2.3 s * 25 fps), the photo's size
    video = media.decode(out)  # plays: ffmpeg decodes both streams
    assert video.fps_source == 25 and video.frames.shape == (58, 288, 360, 3)
    assert abs(len(video.frames) / 25 - 2.3) < 1 / 25  # within one frame of the recording
    assert abs(len(video.audio) / 16000 - 2.3) < 1 / 25  # the recording's audio is muxed in
    cropped = talkface("generate", "--image", inputs["face"], "--audio", inputs["speech"], "--out", tmp_path / "c.mp4",
                       "--system", "atvgnet", "--crop-only", "--data-root", trained["data_root"])
    assert cropped.returncode == 0 and "58 frames, 128x128" in cropped.stdout, cropped.stderr[-2000:]


def test_generate_says_what_is_wrong(trained, inputs, tmp_path):
    out = tmp_path / "out.mp4"
    cases = {
        ("--image", inputs["noface"], "--audio", inputs["speech"]): "no face found",
        ("--image", inputs["face"], "--audio", inputs["face"]): "audio",
        ("--image", inputs["face"], "--audio", inputs["speech"], "--model", "models:/atvgnet@nope"): "alias nope",
        ("--image", inputs["face"], "--audio", inputs["speech"], "--model", str(tmp_path)): "not a talkface model directory",
    }
    for args, message in cases.items():
        result = talkface("generate", *args, "--out", out, "--data-root", trained["data_root"])
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr[-2000:])
        assert not out.exists()
    missing_store = talkface("generate", "--image", inputs["face"], "--audio", inputs["speech"], "--out", out,
                             "--data-root", tmp_path / "nowhere")
    assert missing_store.returncode == 2 and "no MLflow store" in missing_store.stderr



def test_syncnet_training_and_av_sync_scoring(grid_store, trained, inputs, tmp_path):
    """`talkface train --system syncnet` trains the sync expert from the store and logs it; `talkface evaluate`
    with it as --sync-model scores AV offset and confidence of the registered cascade's videos."""
    data_root = trained["data_root"]
    result = talkface("train", "--store", grid_store, "--data-root", data_root, "--system", "syncnet", "--preset", "small",
                      "--steps", "12", "--set", "syncnet.batch_size=8", "--set", "syncnet.checkpoint_every=6")
    assert result.returncode == 0, result.stderr[-4000:]
    run_id = re.search(r"MLflow run: ([0-9a-f]{32})", result.stdout).group(1)
    checkpoint = Path(re.search(r"syncnet checkpoint: (.+syncnet-step000012\.pt)", result.stdout).group(1))
    client = trained["client"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["system"] == "syncnet"
    assert [m.step for m in client.get_metric_history(run_id, "train/syncnet/loss")] == list(range(1, 13))
    assert {Path(a.path).name for a in client.list_artifacts(run_id, "checkpoints")} == {
        "syncnet-step000006.pt", "syncnet-step000012.pt"}

    scored = talkface("evaluate", "--store", grid_store, "--data-root", data_root, "--sync-model", checkpoint)
    assert scored.returncode == 0, scored.stderr[-4000:]
    offset = float(re.search(r"test/av_offset: (\S+)", scored.stdout).group(1))
    confidence = float(re.search(r"test/av_confidence: (\S+)", scored.stdout).group(1))
    assert -15 <= offset <= 15 and offset == int(offset) and confidence >= 0
    # the sync expert is registered too, but it renders nothing
    refused = talkface("generate", "--image", inputs["face"], "--audio", inputs["speech"], "--out", tmp_path / "s.mp4",
                       "--system", "syncnet", "--data-root", data_root)
    assert refused.returncode == 2 and "holds a syncnet model, which renders no video" in refused.stderr
