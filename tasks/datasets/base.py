"""What every dataset adapter produces: one `ClipSource` per source clip, and the deterministic speaker split."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Word:
    """One spoken word; frames are 25 fps video frames, `end_frame` exclusive; None when untimed."""

    word: str
    start_frame: int | None = None
    end_frame: int | None = None


@dataclass(frozen=True)
class ClipSource:
    """A source clip as the adapter found it, before any decoding.

    `label_error` is set (and the clip is quarantined without decoding) when its label file is unreadable.
    `extras` holds dataset-specific manifest columns (CREMA-D emotion, LRW word, …).
    """

    clip_id: str
    dataset: str
    speaker: str
    split: str
    path: Path  # absolute path of the video file
    source_path: str  # relative to the raw root, POSIX separators
    text: str
    words: tuple[Word, ...]
    words_timed: bool
    label_error: str | None = None
    extras: dict = field(default_factory=dict)


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) from the sha256 of `key` (same on every machine and Python version)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def speaker_split(speaker: str, test_speakers: frozenset[str], val_fraction_of_rest: float) -> str:
    """Deterministic, speaker-disjoint split: listed test speakers → "test"; the others → "val" when
    `hash_fraction(speaker) < val_fraction_of_rest`, else "train". A speaker's clips all share one split."""
    if speaker in test_speakers:
        return "test"
    return "val" if hash_fraction(speaker) < val_fraction_of_rest else "train"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class DatasetProfile:
    """What a dataset's ok clips look like: the dataset checks of its Great Expectations suite (tasks/validate.py,
    suite ``talkface_clips_<name>``) and the expected half of its dataset card (tasks/card.py).

    ranges: column → (min, max), inclusive, over manifest columns or the suite's helper columns: ``fps_source``
        (source frame rate, frames/s), ``duration_s`` (source duration, s), ``n_frames`` (frames at 25 fps),
        ``n_words`` (word labels per clip), ``age`` (years).
    value_sets: manifest extra column → its allowed values; the column must not be null.
    vocabulary: every word label is one of these (None: an open vocabulary, e.g. TIMIT sentences).
    texts: every clip's text is one of these (None: any text).
    speaker_ids: False when the dataset publishes no speaker identities (LRW): the card counts speakers instead of
        listing them, since each clip is its own speaker there.
    reference: the dataset's paper.
    """

    name: str
    reference: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    value_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    vocabulary: frozenset[str] | None = None
    texts: frozenset[str] | None = None
    speaker_ids: bool = True
