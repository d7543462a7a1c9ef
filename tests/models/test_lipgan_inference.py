"""The lip GAN's generator for inference (`models.lipgan.inference`) and `tasks.generate` with it, on real inputs: the
chained 16-frame windows cover any audio length with no frame missing, the model directory a training run exports
loads back, and a photo plus a recording give the whole face talking at 25 fps with the mouth pasted where the
landmarks are."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.lipgan.data import mel_statistics, mel_window, normalise_mel
from models.lipgan.generator import GeneratorConfig, LipGANGenerator
from models.lipgan.inference import LipGANTalker, window_starts
from models.registry import get_system
from storage import audio as audio_features
from storage.crops import MOUTH
from storage.dataset import ClipReader, ok_clips
from tasks import media
from tasks.face import FaceTracker
from tasks.generate import generate, n_video_frames, paste_back, prepare_photo
from tasks.model_dir import export_model, load_generator
from tests.conftest import train_small


@pytest.fixture(scope="module")
def stats(grid_store):
    return mel_statistics(grid_store, "train", 32)


@pytest.fixture(scope="module")
def talker(stats) -> LipGANTalker:
    torch.manual_seed(0)
    return LipGANTalker(LipGANGenerator(GeneratorConfig.preset("small")).eval(), stats, T=8, batch=2)


@pytest.fixture(scope="module")
def clip(grid_store):
    reader = ClipReader(grid_store)
    row = next(ok_clips(grid_store, "test").itertuples(index=False))
    return reader.crops(row, "mouth"), reader.audio(row)


@pytest.fixture(scope="module")
def model_dir(grid_store, tmp_path_factory) -> Path:
    """A lip GAN model directory exported from 1-step runs of its three stages (the GAN on the other two)."""
    out = tmp_path_factory.mktemp("lipgan")
    flownet = train_small(grid_store, out, "lipgan", "flownet", steps=1, batch_size=2).last_checkpoint
    perceptual = train_small(grid_store, out, "lipgan", "perceptual", steps=1, batch_size=2).last_checkpoint
    gan = train_small(grid_store, out, "lipgan", "lipgan", steps=1, batch_size=2,
                      inputs={"flownet": flownet, "perceptual": perceptual}).last_checkpoint
    return export_model(get_system("lipgan"), {"flownet": flownet, "perceptual": perceptual, "lipgan": gan},
                        out / "model")


@pytest.mark.parametrize("n,T,want", [(1, 16, [0]), (16, 16, [0]), (17, 16, [0, 1]), (40, 16, [0, 16, 24]),
                                      (48, 16, [0, 16, 32]), (75, 8, [0, 8, 16, 24, 32, 40, 48, 56, 64, 67])])
def test_windows_cover_every_frame_and_stay_inside_the_audio(n, T, want):
    starts = window_starts(n, T)
    assert starts == want
    covered = np.zeros(max(n, T), bool)
    for s in starts:
        covered[s : s + T] = True
    assert covered[:n].all() and (n < T or starts[-1] + T == n)
    with pytest.raises(ValueError):
        window_starts(0, T)


@pytest.mark.parametrize("n", [3, 8, 19, 75])
def test_any_length_gives_one_mouth_per_frame(talker, clip, n):
    mouths, audio = clip
    out = talker(mouths[0], None, audio, n)
    assert out.dtype == np.uint8 and out.shape == (n, 64, 64, 3)  # the store's 64×64, from a 32-px model


def test_chained_windows_are_the_generator_on_each_window(talker, clip, stats):
    mouths, audio = clip
    n, T = 19, talker.T  # windows start at 0, 8 and 11
    out = talker(mouths[0], None, audio, n)
    mel = normalise_mel(audio_features.log_mel(audio, n_mels=32), stats)
    identity = torch.from_numpy(cv2.resize(mouths[0], (32, 32), interpolation=cv2.INTER_AREA))
    identity = identity.permute(2, 0, 1).float().div(127.5).sub(1)[None]
    with torch.inference_mode():
        for start, frames in ((0, slice(0, 8)), (11, slice(11, 19))):  # frames 8-10 are the second window's
            sound = torch.from_numpy(mel_window(mel, start, T))[None, None]
            video = talker.generator(identity, sound)[0][0]  # (3, T, 32, 32)
            pixels = video.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
            want = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_CUBIC) for f in pixels])
            np.testing.assert_array_equal(out[frames], want[-(frames.stop - frames.start):])
    assert not np.array_equal(out[:8], talker(mouths[40], None, audio, 8))  # the identity image matters
    assert not talker.generator.training


def test_the_exported_model_loads_with_its_statistics(model_dir, grid_store, clip):
    loaded = load_generator(model_dir, "cpu")
    assert isinstance(loaded, LipGANTalker) and loaded.crop == MOUTH and loaded.T == 8
    want = mel_statistics(grid_store, "train", 32)  # the train split's, carried by the model
    np.testing.assert_allclose(loaded.mel_stats["mean"], want["mean"], rtol=1e-6)
    np.testing.assert_allclose(loaded.mel_stats["std"], want["std"], rtol=1e-6)
    assert {p.name for p in model_dir.iterdir()} == {"lipgan.pt", "model.json"}  # frozen training nets left out
    mouths, audio = clip
    assert loaded(mouths[0], None, audio, 20).shape == (20, 64, 64, 3)


def test_the_mouth_pasted_back_is_where_the_landmarks_are(photo_and_speech):
    photo_path, _ = photo_and_speech
    photo = prepare_photo(photo_path, MOUTH)
    assert photo.crop.shape == (64, 64, 3)
    back = paste_back(photo.rgb, photo.crop[None], photo.transform)[0]  # the real crop as the "generated" one
    mouth = cv2.transform(photo.landmarks[None, 48:68].astype(np.float64),
                          cv2.invertAffineTransform(photo.transform))[0]  # photo pixels
    (x0, y0), (x1, y1) = mouth.min(0).astype(int), mouth.max(0).astype(int)
    error = np.abs(back.astype(int) - photo.rgb.astype(int))
    assert error[y0:y1, x0:x1].mean() < 3  # within JPEG-level error where the lips are
    assert error.mean() < 1  # and nothing moved elsewhere
    tracker = FaceTracker()
    found = tracker.predict(cv2.cvtColor(back, cv2.COLOR_RGB2GRAY), tracker.detect(
        cv2.cvtColor(back, cv2.COLOR_RGB2GRAY)))[48:68]
    assert np.abs(found - mouth).mean() < 1.0  # dlib finds the lips where they were


def test_generate_a_whole_face_from_a_photo_and_a_recording(model_dir, photo_and_speech, tmp_path):
    photo_path, speech = photo_and_speech
    talker = load_generator(model_dir, "cpu")
    out = tmp_path / "talking.mp4"
    result = generate(photo_path, speech, out, talker)
    wave = media.decode_audio(speech)
    n = n_video_frames(len(wave))
    assert n == 58 and result["frames"] == n and result["size"] == (360, 288)  # the photo's own size
    video = media.decode(out)
    assert video.fps_source == 25 and video.frames.shape == (n, 288, 360, 3)
    assert abs(len(video.frames) / 25 - len(wave) / 16000) < 1 / 25  # as long as the recording, within a frame
    photo = prepare_photo(photo_path, MOUTH)
    corners = cv2.transform(np.array([[[0, 0], [63, 0], [63, 63], [0, 63]]], np.float64),
                            cv2.invertAffineTransform(photo.transform))[0]
    (x0, y0), (x1, y1) = corners.min(0).astype(int), corners.max(0).astype(int)
    change = np.abs(video.frames[20].astype(int) - photo.rgb.astype(int)).mean(2)
    outside = np.ones_like(change, bool)
    outside[max(y0 - 4, 0) : y1 + 4, max(x0 - 4, 0) : x1 + 4] = False
    assert change[outside].mean() < 3 < change[y0:y1, x0:x1].mean()  # only the mouth is generated
    cropped = generate(photo_path, speech, tmp_path / "mouth.mp4", talker, crop_only=True)
    assert cropped["size"] == (64, 64) and cropped["frames"] == n
