"""`talkface import-weights` as a user meets it (issue 15): files shaped as the authors' releases (their module trees'
key names and shapes, random weights; `tests/authors_trees.py`) import, register in MLflow under the authors'
alias with each file's sha256, and then `generate` and `evaluate` run them by URI on real clips; a file that is not
the release, or one tensor of another shape, is refused naming it, and nothing is registered."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from flows.cli import app
from storage import tracking
from tasks import media
from tasks.model_dir import read_card
from tests.authors_trees import sda_mean_face, write_atvgnet_release, write_sda_release


def talkface(*args):
    """The CLI run in this process (typer's runner: exit status, stdout and stderr as a user sees them)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_authors_atvgnet_imports_registers_generates_and_evaluates(grid_store, photo_and_speech, tmp_path):
    atnet, vgnet = write_atvgnet_release(tmp_path / "release")
    data_root = tmp_path / "data"
    result = talkface("import-weights", "--system", "atvgnet", "--file", vgnet, "--file", atnet,  # either order
                      "--data-root", data_root)
    assert result.exit_code == 0, result.output[-3000:]
    assert "model: models:/atvgnet@authors (version 1; the authors' weights, trained on lrw)" in result.stdout
    assert f"atnet_lstm_18.pth: {atnet.stat().st_size} bytes, sha256 {sha256(atnet)}" in result.stdout

    client = MlflowClient(tracking.tracking_uri(data_root), registry_uri=tracking.tracking_uri(data_root))
    version = client.get_model_version_by_alias("atvgnet", "authors")
    assert version.tags["protocol"] == "authors" and version.tags["trained_on"] == "lrw"
    assert client.get_registered_model("atvgnet").description.startswith("Chen, Maddox, Duan, Xu.")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.params["source.generator_23.pth.sha256"] == sha256(vgnet)
    model_dir = tracking.download_model("models:/atvgnet@authors", data_root, tmp_path / "model")
    card = read_card(model_dir)
    assert card["protocol"] == "authors" and {s["file"] for s in card["sources"]} == {atnet.name, vgnet.name}
    saved = torch.load(model_dir / "vgnet.pt", weights_only=True)
    released = torch.load(vgnet, weights_only=True)
    assert torch.equal(saved["modules"]["generator"]["temporal.conv_h.weight"], released["module.convGRU.weight_hh_l0"])

    photo, speech = photo_and_speech
    out = tmp_path / "authors.mp4"
    result = talkface("generate", "--model", "models:/atvgnet@authors", "--image", photo, "--audio", speech,
                      "--out", out, "--data-root", data_root, "--device", "cpu")
    assert result.exit_code == 0, result.output[-3000:]
    assert media.decode(out).frames.shape == (58, 288, 360, 3)  # 2.3 s at 25 fps, pasted into the photo

    result = talkface("evaluate", "--store", grid_store, "--model", "models:/atvgnet@authors", "--max-clips", "1",
                      "--data-root", data_root)
    assert result.exit_code == 0, result.output[-3000:]
    psnr = float(re.search(r"test/psnr: ([\d.]+)", result.stdout).group(1))
    assert 0 < psnr < 60 and "test/lmd_a2l:" in result.stdout  # AT-net's own landmarks scored too


def test_the_authors_sda_file_imports_as_authors_grid_and_evaluates(grid_store, tmp_path):
    dat = write_sda_release(tmp_path / "grid.dat", sda_mean_face(shift=(0.0, -3.0)))
    data_root = tmp_path / "data"
    result = talkface("import-weights", "--system", "sda", "--file", dat, "--data-root", data_root)
    assert result.exit_code == 0, result.output[-3000:]
    assert "model: models:/sda@authors-grid (version 1; the authors' weights, trained on grid)" in result.stdout
    model_dir = tracking.download_model("models:/sda@authors-grid", data_root, tmp_path / "model")
    saved = torch.load(model_dir / "sda.pt", weights_only=True)  # converted once: a weights-only file
    assert saved["config"]["generator"]["audio_rate"] == 50000 and saved["config"]["generator"]["noise_std"] == 0.33
    assert np.allclose(saved["extra"]["mean_face"].numpy(), sda_mean_face(shift=(0.0, -3.0)))
    result = talkface("evaluate", "--store", grid_store, "--model", "models:/sda@authors-grid", "--max-clips", "1",
                      "--data-root", data_root)
    assert result.exit_code == 0, result.output[-3000:]
    assert "test/ssim:" in result.stdout and "test/cpbd:" in result.stdout


def test_what_is_not_the_release_is_refused_naming_it_and_nothing_is_registered(tmp_path):
    atnet, vgnet = write_atvgnet_release(tmp_path / "release", prefix="")
    data_root = tmp_path / "data"
    result = talkface("import-weights", "--system", "lipgan", "--file", atnet, "--data-root", data_root)
    assert result.exit_code == 2 and "imports the released weights of atvgnet, sda" in result.stderr

    result = talkface("import-weights", "--system", "atvgnet", "--file", atnet, "--file", vgnet, "--alias", "latest",
                      "--data-root", data_root)
    assert result.exit_code == 2 and "MLflow reserves them" in result.stderr

    result = talkface("import-weights", "--system", "atvgnet", "--file", atnet, "--data-root", data_root)
    assert result.exit_code == 2 and "missing vgnet (generator_23.pth)" in result.stderr, result.output[-2000:]

    other = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    result = talkface("import-weights", "--system", "atvgnet", "--file", atnet, "--file", other,
                      "--data-root", data_root)
    assert result.exit_code == 2 and f"{other}: neither the authors' AT-net" in result.stderr

    state = torch.load(vgnet, weights_only=True)
    state["lmark_att.6.0.weight"] = torch.zeros(1, 128, 5, 5)
    torch.save(state, vgnet)
    result = talkface("import-weights", "--system", "atvgnet", "--file", atnet, "--file", vgnet,
                      "--data-root", data_root)
    assert result.exit_code == 2 and "lmark_att.6.0.weight has shape (1, 128, 5, 5)" in result.stderr
    assert tracking.released_versions(MlflowClient(tracking.tracking_uri(data_root)), "atvgnet") == []
