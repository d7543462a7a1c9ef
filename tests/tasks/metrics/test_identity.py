"""ACD with dlib's face descriptor on real GRID face crops: the same speaker is close, another speaker far, frames
without a face are counted and skipped."""
import numpy as np
import pytest

from tasks.metrics.identity import acd, descriptor_distance, face_descriptors


@pytest.fixture(scope="module")
def s1(faces):
    return faces[0], faces[10:60:12]  # still, 5 "generated" frames of the same clip


def test_same_speaker_is_close_and_another_far(s1, grid_clips):
    still, same = s1
    other = grid_clips["s2/swwp2s"].face[10:60:12]
    near, far = acd(still, same), acd(still, other)
    assert near.per_frame.shape == (5,) and near.n_missing == 0 and far.n_missing == 0
    assert near.mean < 0.4 < 0.6 < far.mean  # dlib's same-person threshold is 0.6 (Euclidean)
    assert near.mean == pytest.approx(near.per_frame.mean())
    near_cos, far_cos = acd(still, same, metric="cosine"), acd(still, other, metric="cosine")
    assert 0 <= near_cos.mean < far_cos.mean <= 2


def test_frames_without_a_face_are_counted(s1):
    still, same = s1
    generated = np.concatenate([same[:2], np.zeros((2, 128, 128, 3), np.uint8)])
    result = acd(still, generated)
    assert result.n_missing == 2
    assert np.isnan(result.per_frame[2:]).all() and np.isfinite(result.per_frame[:2]).all()
    assert result.mean == pytest.approx(result.per_frame[:2].mean())
    none = acd(still, np.zeros((2, 128, 128, 3), np.uint8))
    assert none.n_missing == 2 and np.isnan(none.mean)
    with pytest.raises(ValueError, match="still"):
        acd(np.zeros((128, 128, 3), np.uint8), same)


def test_given_landmarks_skip_detection(grid_clips):
    clip = grid_clips["s1/bbaf2n"]
    detected = face_descriptors(clip.face[:2])
    given = face_descriptors(clip.face[:2], clip.landmarks[:2])
    assert given.shape == (2, 128)
    assert (descriptor_distance(detected, given) < 0.1).all()  # the same face, landmarks a pixel apart


def test_descriptor_distance_by_hand():
    a, b = np.zeros(128), np.zeros(128)
    a[0], b[0], b[1] = 3.0, 3.0, 4.0
    assert descriptor_distance(a, b) == pytest.approx(4.0)
    assert descriptor_distance(a, b, "cosine") == pytest.approx(1 - 3 / 5)
    with pytest.raises(ValueError):
        descriptor_distance(a, b, "manhattan")
