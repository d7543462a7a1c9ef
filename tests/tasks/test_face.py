"""dlib face tracking on a real clip: tracking agrees with detecting every frame, at a fraction of the detections."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tasks import media
from tasks.face import FaceTracker, model_path


@pytest.fixture(scope="module")
def frames(sample_clip):
    return media.decode(sample_clip).frames


def test_models_ship_with_the_package():
    assert model_path().stat().st_size > 90_000_000


def test_tracking_matches_per_frame_detection(frames):
    tracker = FaceTracker()
    tracked = tracker.track(frames)
    naive = tracker.track(frames, detect_every_frame=True)
    assert tracked.missing == 0 and naive.detections == len(frames)
    assert tracked.detections <= 3  # a still speaker: detected once, then tracked
    err = np.linalg.norm(tracked.landmarks - naive.landmarks, axis=-1)
    assert np.median(err) < 1.0 and err.max() < 8.0  # pixels in a 360×288 frame


def test_landmarks_lie_on_the_face(frames):
    lm = FaceTracker().track(frames[:5]).landmarks
    # 68-point layout: eyes (36–47) above the nose tip (30), which is above the mouth (48–67) and the chin (8)
    assert (lm[:, 36:48, 1].mean(1) < lm[:, 30, 1]).all() and (lm[:, 30, 1] < lm[:, 48:68, 1].mean(1)).all()
    assert (lm[:, 48:68, 1].mean(1) < lm[:, 8, 1]).all()


def test_no_face_gives_nan_landmarks(tmp_path):
    src = tmp_path / "testsrc.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=0.4:size=360x288:rate=25",
                    "-f", "lavfi", "-i", "sine=duration=0.4", str(src)], check=True)
    track = FaceTracker().track(media.decode(src).frames)
    assert track.missing == len(track.landmarks) == 10 and np.isnan(track.landmarks).all()
