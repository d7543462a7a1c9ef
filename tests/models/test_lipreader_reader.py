"""The lip reader for inference (`models.lipreader.reader`): loaded weights-only from the stage's training checkpoint
or its model-directory file, reading real 128×128 face frames with the checkpoint's mouth box, one clip or a batch of
clips of different lengths alike; a wrong checkpoint is refused with ValueError. Uses the small reader trained once
per session by tests/models/test_lipreader_stages.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models import lipreader
from models.lipreader import GRID_VOCABULARY, LipReader, Transcript
from storage.dataset import ClipReader, ok_clips
from tasks import model_dir
from tasks.metrics.wer import wer
from tests.models.test_lipreader_stages import trained_lipreader  # the shared training run


@pytest.fixture(scope="module")
def checkpoint(grid_store, tmp_path_factory) -> Path:
    return trained_lipreader(grid_store, tmp_path_factory)[0]


@pytest.fixture(scope="module")
def faces(grid_store) -> dict[str, np.ndarray]:
    """{clip_id: uint8 (75, 128, 128, 3)} of every ok clip (train and test)."""
    reader = ClipReader(grid_store)
    rows = pd.concat([ok_clips(grid_store, "train"), ok_clips(grid_store, "test")])
    return {row.clip_id: reader.faces(row) for row in rows.itertuples()}


def test_reads_real_faces_into_strings(checkpoint, faces):
    reader = LipReader.load(checkpoint, device="cpu")
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert list(reader.box) == ckpt["extra"]["mouth_box"] and not reader.model.training
    t = reader.read(faces["s1/bbaf2n"])  # a training clip: read (nearly) right
    assert isinstance(t, Transcript) and isinstance(t.greedy, str) and isinstance(t.snapped, str)
    assert wer(["bin blue at f two now"], [t.snapped]) <= 1 / 6, t
    unseen = reader.read(faces["s2/swwp2s"])  # another speaker: whatever it reads is a string of the alphabet
    assert set(unseen.greedy) <= set(" abcdefghijklmnopqrstuvwxyz")
    assert len(unseen.snapped.split()) <= 6 and set(unseen.snapped.split()) <= GRID_VOCABULARY


def test_a_batch_of_clips_of_different_lengths_reads_as_each_clip_alone(checkpoint, faces):
    reader = LipReader.load(checkpoint)
    reader.batch = 2  # two forward passes for three clips
    clips = [faces["s1/bbaf2n"], faces["s1/lgas4p"][:50], faces["s2/swwp2s"][:30]]
    assert reader.read_batch(clips) == [reader.read(c) for c in clips]
    log_probs, lengths = reader.log_probs(clips)
    assert log_probs.shape == (75, 3, 28) and lengths.tolist() == [75, 50, 30]


def test_the_model_directory_file_loads_the_same_reader(checkpoint, faces, tmp_path):
    out = model_dir.export_model(lipreader.SYSTEM, {"lipreader": checkpoint}, tmp_path / "model")
    for path in (out, out / "lipreader.pt"):
        assert LipReader.load(path).read(faces["s1/bgaa9a"]) == LipReader.load(checkpoint).read(faces["s1/bgaa9a"])


def test_a_wrong_checkpoint_or_input_raises(checkpoint, faces, tmp_path):
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    other = tmp_path / "syncnet-step000002.pt"
    torch.save({**ckpt, "system": "syncnet", "stage": "syncnet"}, other)
    with pytest.raises(ValueError, match="holds syncnet/syncnet weights, not lipreader/lipreader"):
        LipReader.load(other)
    boxless = tmp_path / "boxless.pt"
    torch.save({**ckpt, "extra": {}}, boxless)
    with pytest.raises(ValueError, match="mouth box"):
        LipReader.load(boxless)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable weights-only torch file"):
        LipReader.load(junk)
    with pytest.raises(FileNotFoundError):
        LipReader.load(tmp_path / "missing.pt")
    reader = LipReader.load(checkpoint)
    with pytest.raises(ValueError, match=r"uint8 \(N >= 1, 128, 128, 3\)"):
        reader.read(faces["s1/bbaf2n"][:, :96])  # a face_sda-sized crop, not the face crop
    with pytest.raises(ValueError, match="uint8"):
        reader.read(faces["s1/bbaf2n"].astype(np.float32))
