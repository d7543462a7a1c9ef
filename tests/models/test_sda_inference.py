"""The Vougioukas et al. 2019 generator for inference (`models.sda.inference`) and `tasks.generate` with it, on real
inputs: any audio length in one sequence, the chunked decoder equal to the training forward pass, the seeded noise
reproducible and really varying the video, the exported model directory loading back, and a photo plus a recording
giving the face talking, pasted back or as the 128×96 crop."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.registry import get_system
from models.sda.generator import SDAGenerator, SDAGeneratorConfig, audio_windows
from models.sda.inference import SDATalker
from storage.crops import FACE_SDA
from storage.dataset import ClipReader, ok_clips
from tasks import media
from tasks.generate import generate, n_video_frames
from tasks.model_dir import export_model, load_generator
from tests.conftest import train_small


@pytest.fixture(scope="module")
def talker() -> SDATalker:
    torch.manual_seed(0)
    return SDATalker(SDAGenerator(SDAGeneratorConfig.preset("small")).eval(), seed=3, batch=4)


@pytest.fixture(scope="module")
def clip(grid_store):
    reader = ClipReader(grid_store)
    row = next(ok_clips(grid_store, "test").itertuples(index=False))
    return reader.crops(row, "face_sda"), reader.audio(row)


@pytest.mark.parametrize("n", [1, 7, 75])
def test_any_length_is_one_sequence_equal_to_the_training_forward_pass(talker, clip, n):
    faces, audio = clip
    out = talker(faces[0], None, audio, n)
    assert out.shape == (n, 128, 96, 3) and out.dtype == np.uint8
    g = talker.generator
    identity = torch.from_numpy(faces[0]).permute(2, 0, 1).float().div(127.5).sub(1)[None]
    with torch.no_grad():
        want = g(identity, torch.from_numpy(audio_windows(audio, n))[None], noise=talker.noise(n))[0]
    want = want.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(out.astype(int) - want.astype(int)).max() <= 1  # 4-frame decoder chunks, the same frames


def test_the_seed_reproduces_the_video_and_the_noise_varies_it(talker, clip):
    faces, audio = clip
    first = talker(faces[0], None, audio, 30)
    np.testing.assert_array_equal(first, talker(faces[0], None, audio, 30))
    g, other = talker.generator, SDATalker(talker.generator, seed=4)
    assert not torch.equal(talker.noise(30), other.noise(30))
    identity = torch.from_numpy(faces[0]).permute(2, 0, 1).float().div(127.5).sub(1)[None]
    sound = torch.from_numpy(audio_windows(audio, 30))[None]
    with torch.no_grad():  # float frames: an untrained decoder in eval mode renders within a grey level of 128
        a, b = (t._render(identity, sound, t.noise(30)) for t in (talker, other))
    assert not torch.equal(a, b)  # another seed, other frames (their size: test_sda_generator's noise test)
    assert not np.array_equal(first, talker(faces[10], None, audio, 30))  # the identity image matters
    assert not talker.generator.training


def test_bad_inputs_are_refused(talker, clip):
    faces, audio = clip
    with pytest.raises(ValueError, match=r"uint8 \(128, 96, 3\)"):
        talker(faces[0][:64], None, audio, 5)
    with pytest.raises(ValueError, match="n_frames"):
        talker(faces[0], None, audio, 0)
    with pytest.raises(ValueError, match="renders"):
        SDATalker(SDAGenerator(SDAGeneratorConfig(image_size=(64, 48), ngf=8)))


@pytest.fixture(scope="module")
def model_dir(grid_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sda")
    ckpt = train_small(grid_store, out, "sda", "sda", steps=1, batch_size=2, max_frames=8).last_checkpoint
    return export_model(get_system("sda"), {"sda": ckpt}, out / "model")


def test_generate_pastes_the_face_back_or_writes_the_crop(model_dir, photo_and_speech, tmp_path):
    loaded = load_generator(model_dir, "cpu")
    assert isinstance(loaded, SDATalker) and loaded.crop == FACE_SDA
    assert {p.name for p in model_dir.iterdir()} == {"sda.pt", "model.json"}  # no discriminators
    photo, speech = photo_and_speech
    n = n_video_frames(len(media.decode_audio(speech)))
    pasted = generate(photo, speech, tmp_path / "talking.mp4", loaded)
    assert pasted["frames"] == n == 58 and pasted["size"] == (360, 288)  # the photo's own size
    video = media.decode(tmp_path / "talking.mp4")
    assert video.fps_source == 25 and video.frames.shape == (n, 288, 360, 3)
    cropped = generate(photo, speech, tmp_path / "face.mp4", loaded, crop_only=True)
    assert cropped["size"] == (96, 128) and cropped["frames"] == n  # (W, H) of the aligned 128×96 crop
