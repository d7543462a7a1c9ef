"""Real GRID material for the metric tests, through the project's own preprocessing (`tasks.preprocess`): decoded at
25 fps, landmarks tracked with dlib, 128×128 aligned face crops. No store is built (cheaper than `grid_store`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tasks.preprocess import ClipArrays, PreprocessParams, preprocess_clip

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "grid"


@pytest.fixture(scope="session")
def grid_clips() -> dict[str, ClipArrays]:
    """Every bundled GRID clip of speakers s1 (10 clips) and s2 (1), preprocessed: name -> ClipArrays."""
    params = PreprocessParams()
    return {f"{p.parent.name}/{p.stem}": preprocess_clip(p, params)
            for speaker in ("s1", "s2") for p in sorted((SAMPLES / speaker).glob("*.mpg"))}


@pytest.fixture(scope="session")
def faces(grid_clips):
    """uint8 (75, 128, 128, 3) aligned RGB face crops of s1/bbaf2n, the `sample_clip`."""
    return grid_clips["s1/bbaf2n"].face
