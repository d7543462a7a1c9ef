"""Frames per second of a callable: median of timed calls after warm-up."""
import time

import pytest

from tasks.metrics.speed import frames_per_second


def test_median_time_after_warm_up():
    calls = []

    def generate():  # 10 frames in 20 ms, but the first call is slow (e.g. kernel compilation)
        time.sleep(0.5 if not calls else 0.02)
        calls.append(1)

    fps = frames_per_second(generate, n_frames=10, repeats=3, warmup=1)
    assert len(calls) == 4
    assert 200 < fps <= 500  # 10 frames / 0.02 s at best; the 0.5 s warm-up call is not timed


def test_synchronize_is_called_before_each_clock_read():
    syncs = []
    frames_per_second(lambda: None, n_frames=1, repeats=4, warmup=2, synchronize=lambda: syncs.append(1))
    assert len(syncs) == 1 + 4


def test_rejects_bad_counts():
    for kwargs in ({"n_frames": 0}, {"n_frames": 1, "repeats": 0}, {"n_frames": 1, "warmup": -1}):
        with pytest.raises(ValueError):
            frames_per_second(lambda: None, **kwargs)
