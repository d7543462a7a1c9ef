"""Eye aspect ratio and blinks, both detectors (the project's threshold rule and Vougioukas et al.'s peak detector):
exact blinks on hand-built EAR series, then the rate and duration on real GRID clips. Speaker s1 blinks often: over
the 105 clips of the shared sample the threshold rule finds 0.79 blinks/s, the peak detector 0.54 blinks/s
(benchmarks/blinks_grid.py), against 0.39 blinks/s that Vougioukas et al. measure on GRID's test speakers (Tab. 4)."""
import numpy as np
import pytest

from tasks.metrics import peak_blink_statistics, peak_blinks, threshold_blinks
from tasks.metrics.blinks import PEAK_HEIGHT_PUBLIC_CODE, blink_statistics, detect_blinks, eye_aspect_ratio


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


def test_threshold_detector_keeps_its_old_names():
    assert detect_blinks is threshold_blinks
    ear = np.array([0.3] * 10 + [0.25, 0.1, 0.1, 0.1, 0.25] + [0.3] * 10)
    assert blink_statistics(ear) == blink_statistics(ear, detector="threshold")
    with pytest.raises(ValueError):
        blink_statistics(ear, detector="blinky")


def _open(n: int) -> list[float]:
    """n frames of an open eye with landmark jitter: 0.30, 0.31, 0.30, … (every 0.31 is a local EAR maximum)."""
    return [0.30, 0.31] * (n // 2) + [0.30] * (n % 2)


def test_peak_detector_on_a_hand_built_series():
    # mid-level (min + max) / 2 = (0.10 + 0.31) / 2 = 0.205: open-eye maxima are the 0.31 frames
    ear = np.array(
        _open(10)  # 0..9, frame 9 = 0.31
        + [0.20, 0.10, 0.12, 0.22]  # 10..13: falls 0.11 (9 -> 10) and 0.10 (10 -> 11): one drop at 9 (distance 4)
        + _open(10)  # 14..23: reopened at the maximum 15 -> blink 9..15, 6 frames
        + [0.28, 0.18, 0.10, 0.15, 0.25]  # 24..28: already falling at 24 (drop 0.10 at 24; 0.08 at 25 too close)
        + _open(10)  # 29..38: starts at the maximum 23 before the fall, ends at the maximum 30 -> 7 frames
        + [0.25, 0.31]  # 39, 40: a 0.06 fall (38 -> 39): below 0.072, not a blink
        + _open(10)  # 41..50
        + [0.19, 0.17, 0.19, 0.20, 0.19, 0.10, 0.20]  # 51..57: a double dip without reopening (drops at 50, 55)
        + _open(10)  # 58..67: the first drop finds no maximum before the second and goes; one blink 50..59
    )
    blinks = peak_blinks(ear)
    assert [(b.start, b.end, b.drop) for b in blinks] == [(9, 15, 9), (23, 30, 24), (50, 59, 55)]
    assert [b.frames for b in blinks] == [6, 7, 9]
    assert [b.height for b in blinks] == pytest.approx([0.11, 0.10, 0.09])
    stats = blink_statistics(ear, fps=25, detector="peaks")
    assert stats == peak_blink_statistics(ear)
    assert stats.n_blinks == 3 and stats.seconds == len(ear) / 25
    assert stats.blinks_per_second == pytest.approx(3 / (len(ear) / 25))
    assert stats.median_duration_s == pytest.approx(7 / 25)
    # the public code's smaller height (0.0425) also takes the 0.06 fall at 38 (reopened at the maximum 40)
    assert [(b.start, b.end) for b in peak_blinks(ear, height=PEAK_HEIGHT_PUBLIC_CODE)] == [
        (9, 15), (23, 30), (38, 40), (50, 59)]
    # the threshold detector sees the same three closings, with its shorter width at half depth
    assert len(threshold_blinks(ear)) == 3


def test_peak_detector_edges():
    # a clip that ends with the eyes closed: the last blink runs to the last frame
    ear = np.array(_open(10) + [0.15, 0.10, 0.10])
    assert [(b.start, b.end) for b in peak_blinks(ear)] == [(9, 12)]
    # a fall from the first frame is no drop (find_peaks needs a neighbour on each side); from the second it is
    assert peak_blinks(np.array([0.31, 0.15, 0.12] + _open(10))) == []
    assert [(b.start, b.end) for b in peak_blinks(np.array([0.30, 0.31, 0.15, 0.12] + _open(10)))] == [(1, 5)]
    # no falls, a constant EAR, too short a series: no blinks
    assert peak_blinks(np.array(_open(40))) == [] and peak_blinks(np.full(20, 0.3)) == []
    assert peak_blinks(np.array([0.3, 0.1])) == []
    none = blink_statistics(np.full(50, 0.3), detector="peaks")
    assert none.n_blinks == 0 and np.isnan(none.median_duration_s)
    with pytest.raises(ValueError):
        peak_blinks(np.array([0.3, np.nan, 0.3, 0.3]))
    with pytest.raises(ValueError):
        peak_blinks(np.full((4, 2), 0.3))


def test_real_grid_clips_blink_near_the_papers_rate(grid_clips):
    """The peak detector on the 10 bundled s1 clips (30 s): 19 blinks, 0.63 blinks/s, median 0.32 s, measured with
    this project's dlib tracking. Vougioukas et al. report 0.39 blinks/s and 0.4 s on real GRID test videos (Tab. 4,
    other speakers); s1 blinks more than that, so the band is loose and the duration close."""
    s1 = [eye_aspect_ratio(clip.landmarks) for name, clip in grid_clips.items() if name.startswith("s1/")]
    stats = peak_blink_statistics(s1)
    assert stats.seconds == pytest.approx(30.0)
    assert 0.2 <= stats.blinks_per_second <= 1.0
    assert 0.2 <= stats.median_duration_s <= 0.5  # Tab. 4: 0.2-0.4 s over the four datasets
    assert sum(len(peak_blinks(ear)) > 0 for ear in s1) >= 8
    # fewer than the threshold rule finds: a blink must close fast (0.072 in one frame)
    assert stats.n_blinks <= blink_statistics(s1).n_blinks
