"""The lip reader's stage on the one training loop (`models.lipreader.stages`), on the real sample store (CPU): CTC
lowers the loss, and the "small" reader trained 300 steps (~35 s) reads the 13 training sentences far better than
chance.

Chance, defined honestly: (1) for the snapped ("greedy+grammar") decoding, the best constant guess — the most
frequent training word of each GRID slot, said for every clip (WER 0.56 on these clips; a random grammar sentence
scores ~0.81): it knows the sentences' statistics but not the video; (2) for the raw greedy decoding, the character
error rate of the same network untrained. Measured at 300 steps: snapped WER 0.00, greedy CER 0.01 (200 steps: 0.24,
0.20). The training run is shared with tests/models/test_lipreader_reader.py (`trained_lipreader`)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from models.lipreader import LipReader, LipReaderStage
from storage.dataset import ClipReader, ok_clips
from tasks.metrics.wer import cer, wer
from tasks.training import Devices, train_stage

STEPS = 300


def trained_lipreader(store: Path, tmp_path_factory) -> tuple[Path, list[float]]:
    """(checkpoint, per-step losses) of the small preset trained STEPS steps on the store's train split; trained once
    per test session (files under the session's temporary root, so every test module reuses them)."""
    out = tmp_path_factory.getbasetemp() / "lipreader-small"
    ckpt, log = out / f"lipreader-step{STEPS:06d}.pt", out / "losses.json"
    if not (ckpt.is_file() and log.is_file()):
        stage = LipReaderStage()
        cfg = stage.Config.preset("small", steps=STEPS, checkpoint_every=0, sample_every=0)
        result = train_stage("lipreader", stage, cfg, store, out, Devices(accelerator="cpu"))
        assert result.last_checkpoint == ckpt
        log.write_text(json.dumps([v["loss"] for _, v in result.losses]))
    return ckpt, json.loads(log.read_text())


@pytest.fixture(scope="module")
def trained(grid_store, tmp_path_factory):
    return trained_lipreader(grid_store, tmp_path_factory)


def test_ctc_training_lowers_the_loss(trained):
    _, loss = trained
    loss = np.array(loss)
    assert len(loss) == STEPS and np.isfinite(loss).all()
    assert loss[-20:].mean() < 0.2 * loss[:20].mean(), loss[::20].round(3)


def test_the_checkpoint_holds_the_network_and_the_mouth_box(trained, grid_store):
    ckpt = torch.load(trained[0], map_location="cpu", weights_only=True)
    assert (ckpt["system"], ckpt["stage"], ckpt["step"]) == ("lipreader", "lipreader", STEPS)
    assert set(ckpt["modules"]) == {"lipnet"} and ckpt["config"]["model"]["size"] == [16, 32]
    stage = LipReaderStage()
    box = stage.dataset(grid_store, "train", stage.Config.preset("small")).box
    assert ckpt["extra"] == {"mouth_box": list(box), "face_size": [128, 128]}


def majority_sentence(texts: list[str]) -> str:
    """Each slot's most frequent word over the sentences (ties: the first seen)."""
    return " ".join(Counter(words).most_common(1)[0][0] for words in zip(*(t.split() for t in texts)))


def test_the_trained_reader_reads_its_training_sentences_far_better_than_chance(trained, grid_store):
    rows = ok_clips(grid_store, "train")
    refs = list(rows["text"])
    clips = [ClipReader(grid_store).faces(row) for row in rows.itertuples()]
    reader = LipReader.load(trained[0])
    read = reader.read_batch(clips)

    constant = majority_sentence(refs)  # "bin blue at s two now" here
    chance_wer = wer(refs, [constant] * len(refs))
    assert chance_wer > 0.5
    snapped_wer = wer(refs, [t.snapped for t in read])
    assert snapped_wer < 0.5 * chance_wer, [t.snapped for t in read]

    stage = LipReaderStage()
    torch.manual_seed(0)
    untrained = LipReader(stage.modules(stage.Config.preset("small"))["lipnet"], reader.box)
    chance_cer = cer(refs, [t.greedy for t in untrained.read_batch(clips)])
    greedy_cer = cer(refs, [t.greedy for t in read])
    assert greedy_cer < 0.5 * min(chance_cer, 1.0), (greedy_cer, chance_cer)
    print(f"lip reader, {len(refs)} training clips: snapped WER {snapped_wer:.3f} (constant guess {chance_wer:.3f}), "
          f"greedy WER {wer(refs, [t.greedy for t in read]):.3f}, greedy CER {greedy_cer:.3f} "
          f"(untrained {chance_cer:.3f})")


def test_the_sample_image_shows_what_the_network_sees(grid_store):
    from torch.utils.data import default_collate

    from models.system import StepOutput

    stage = LipReaderStage()
    data = stage.dataset(grid_store, "train", stage.Config.preset("small"))
    images = stage.samples(default_collate([data[0], data[1]]), StepOutput({}))
    assert images["mouth"].shape == (16, 8 * 32, 3) and images["mouth"].dtype == np.uint8  # 8 grey 16×32 frames
