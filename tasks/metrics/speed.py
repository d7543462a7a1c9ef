"""Inference speed in frames per second (ATVGnet reports 34.5 FPS on a GTX 1080 Ti, Chen et al. CVPR 2019;
real time is 25–30 FPS)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def frames_per_second(fn: Callable[[], object], n_frames: int, repeats: int = 5, warmup: int = 1,
                      synchronize: Callable[[], object] | None = None) -> float:
    """Throughput of `fn`, a call without arguments that produces `n_frames` frames: n_frames / the median wall time
    (time.perf_counter) of `repeats` timed calls, after `warmup` untimed calls (first-call costs: allocation, kernel
    compilation, caches). On a GPU pass `synchronize` (e.g. torch.cuda.synchronize), called before each clock read
    so that queued work is counted. Returns frames per second, float.

    Raises ValueError when n_frames < 1, repeats < 1 or warmup < 0.
    """
    if n_frames < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need n_frames >= 1, repeats >= 1, warmup >= 0; got {n_frames}, {repeats}, {warmup}")
    sync = synchronize or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return n_frames / statistics.median(seconds)
