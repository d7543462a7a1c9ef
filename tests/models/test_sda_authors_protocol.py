"""Vougioukas et al.'s released generators through talkface (issue 15; DinoMan/speech-driven-animation sda/sda.py):
the file's mean face re-aligns the store's face_sda still by points 33, 36, 39, 42, 45, the frames return into the
store's crop, the file's name gives the alias, and what is not theirs is refused."""
import numpy as np
import pytest

from models.sda.authors_file import import_released
from models.sda.authors_protocol import AuthorsSDATalker, alignment
from models.sda.generator import SDAGenerator, SDAGeneratorConfig
from storage.crops import FACE_SDA
from storage.dataset import ClipReader, ok_clips
from tasks.evaluation import crop_landmarks
from tests.authors_trees import sda_mean_face, write_sda_release


@pytest.fixture(scope="module")
def clip(grid_store):
    """(still face_sda crop uint8 (128, 96, 3), its landmarks (68, 2) in that crop's pixels, audio int16)."""
    reader = ClipReader(grid_store)
    row = ok_clips(grid_store, "train").iloc[0]
    return reader.crops(row, "face_sda")[0], crop_landmarks(reader, row, FACE_SDA, 7)[0], reader.audio(row)


def talker(face: np.ndarray) -> AuthorsSDATalker:
    import torch

    torch.manual_seed(0)
    return AuthorsSDATalker(SDAGenerator(SDAGeneratorConfig.preset("small")).eval(), face)


def test_talkfaces_own_mean_face_is_the_identity_and_a_shifted_one_shifts(clip):
    _, landmarks, _ = clip
    same = alignment(landmarks, sda_mean_face())
    np.testing.assert_allclose(same[:2, :2], np.eye(2), atol=0.05)  # the store crop already is that alignment
    assert np.abs(same[:2, 2]).max() < 3  # px; the store smooths the points over 7 frames, the still is one
    moved = alignment(landmarks, sda_mean_face(shift=(4.0, -6.0)))
    np.testing.assert_allclose(moved[:2, 2] - same[:2, 2], [4.0, -6.0], atol=1e-6)


def test_the_frames_return_into_the_store_crop_with_the_stills_pixels_around_theirs(clip):
    still, landmarks, audio = clip
    frames = talker(sda_mean_face(scale=2.0))(still, landmarks, audio, 4)  # their face twice as large: half the crop
    assert frames.shape == (4, *FACE_SDA.size, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[:, :10], np.repeat(still[None, :10], 4, 0))  # top rows: outside their crop
    assert np.abs(frames[:, 50:78, 30:66].astype(float) - still[50:78, 30:66]).mean() > 5  # the centre: rendered
    again = talker(sda_mean_face(scale=2.0))(still, landmarks, audio, 4)
    assert np.array_equal(frames, again)  # the noise is seeded: the same video
    with pytest.raises(ValueError, match="aligns the still by its landmarks"):
        talker(sda_mean_face())(still, None, audio, 4)


@pytest.mark.parametrize("name,alias,trained_on", [("grid.dat", "authors-grid", "grid"),
                                                   ("timit.dat", "authors-timit", "tcd_timit"),
                                                   ("mine.dat", "authors", "unknown")])
def test_the_release_is_named_by_its_file(tmp_path, name, alias, trained_on):
    released = import_released([write_sda_release(tmp_path / name, sda_mean_face(), rate=48000)])
    assert (released.alias, released.trained_on) == (alias, trained_on)
    part = released.stages["sda"]
    assert part["config"]["generator"]["audio_rate"] == 48000 and part["config"]["generator"]["noise_std"] == 0.33
    assert part["extra"]["protocol"] == "authors" and part["extra"]["mean_face"].shape == (68, 2)


def test_what_the_release_does_not_hold_is_refused(tmp_path):
    path = write_sda_release(tmp_path / "grid.dat", sda_mean_face())
    with pytest.raises(ValueError, match="basics are ATVGnet's"):
        import_released([path], tmp_path)
    with pytest.raises(ValueError, match="give one .dat file"):
        import_released([path, path])
    flat = write_sda_release(tmp_path / "crema.dat", np.zeros(136), rate=16000)
    with pytest.raises(ValueError, match=r"mean_face has shape \(136,\)"):
        import_released([flat])
