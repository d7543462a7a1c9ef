"""Eye aspect ratio and blinks: exact counts on a hand-built EAR series, then the rate and duration on real GRID
clips (speaker s1 blinks often: about 0.8 blinks/s over the 105 clips of the full sample)."""
import numpy as np
import pytest

from tasks.metrics.blinks import blink_statistics, detect_blinks, eye_aspect_ratio


def test_ear_of_a_hand_made_eye(grid_clips):
    landmarks = grid_clips["s1/bbaf2n"].landmarks[:1].astype(np.float64).copy()
    # p1..p6 of both eyes: width 4, two vertical pairs 2 apart -> EAR = (2 + 2) / (2 * 4) = 0.5
    eye = np.array([[0, 0], [1, -1], [3, -1], [4, 0], [3, 1], [1, 1]], float)
    landmarks[0, 36:42], landmarks[0, 42:48] = eye + [40, 50], eye + [80, 50]
    assert eye_aspect_ratio(landmarks)[0] == pytest.approx(0.5)
    landmarks[0, 42:48, 1] = 50 + eye[:, 1] / 2  # second eye half as open: EAR 0.25, mean 0.375
    assert eye_aspect_ratio(landmarks)[0] == pytest.approx(0.375)


def test_ear_ignores_a_similarity_transform(grid_clips):
    landmarks = grid_clips["s1/bbaf2n"].landmarks.astype(np.float64)
    angle = np.deg2rad(20)
    rotation = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = landmarks @ rotation.T + [12.0, -30.0]
    np.testing.assert_allclose(eye_aspect_ratio(moved), eye_aspect_ratio(landmarks), rtol=1e-9)
    with pytest.raises(ValueError):
        eye_aspect_ratio(landmarks[:, :48])


def test_blinks_of_a_hand_built_series():
    open_ = [0.3] * 10
    ear = np.array(
        open_ + [0.25, 0.1, 0.1, 0.1, 0.25]  # blink: depth 0.2, below 0.2 for 3 frames (10..14 -> 11, 12, 13)
        + open_ + [0.2, 0.12, 0.08, 0.12, 0.15, 0.2]  # blink: depth 0.22, below 0.19 for 4 frames
        + open_ + [0.15]  # one frame only: a landmark glitch, not a blink
        + open_ + [0.28, 0.27, 0.28]  # 0.03 deep: jitter, not a blink (needs 0.25 * median 0.3 = 0.075)
        + open_
    )
    blinks = detect_blinks(ear)
    assert [(b.start, b.end, b.frames) for b in blinks] == [(11, 14, 3), (26, 30, 4)]
    assert [b.depth for b in blinks] == pytest.approx([0.2, 0.22])
    stats = blink_statistics(ear, fps=25)
    assert stats.n_blinks == 2 and stats.seconds == len(ear) / 25
    assert stats.blinks_per_second == pytest.approx(2 / (len(ear) / 25))
    assert stats.median_duration_s == pytest.approx((3 + 4) / 2 / 25)
    # a stricter depth keeps only the deeper blink; two clips pool their blinks and seconds
    assert len(detect_blinks(ear, min_drop=0.7)) == 1
    pooled = blink_statistics([ear, np.full(50, 0.3)])
    assert pooled.n_blinks == 2 and pooled.seconds == (len(ear) + 50) / 25
    none = blink_statistics(np.full(50, 0.3))
    assert none.n_blinks == 0 and np.isnan(none.median_duration_s)


def test_rejects_missing_values():
    with pytest.raises(ValueError):
        detect_blinks(np.array([0.3, np.nan, 0.3, 0.3]))
    with pytest.raises(ValueError):
        blink_statistics(np.full(10, 0.3), fps=0)


def test_real_grid_clips_blink_plausibly(grid_clips):
    ears = {name: eye_aspect_ratio(clip.landmarks) for name, clip in grid_clips.items()}
    s1 = [ear for name, ear in ears.items() if name.startswith("s1/")]
    assert len(s1) == 10 and all(0.15 < np.median(ear) < 0.45 for ear in ears.values())  # open eyes
    stats = blink_statistics(s1)
    # humans blink about 0.2-0.5 times a second at rest, more when talking; s1 is a frequent blinker
    assert 0.4 < stats.blinks_per_second < 1.3
    assert 0.08 <= stats.median_duration_s <= 0.3  # 2-7 frames below half depth at 25 fps
    assert sum(len(detect_blinks(ear)) > 0 for ear in s1) >= 8  # nearly every 3 s clip has a blink
