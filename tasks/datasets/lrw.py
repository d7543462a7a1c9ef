"""LRW, Lip Reading in the Wild (Chung & Zisserman 2016), in its official layout.

    <root>/lipread_mp4/<WORD>/<split>/<WORD>_<NNNNN>.mp4   video 256×256 @ 25 fps, 29 frames (1.16 s), audio
    <root>/lipread_mp4/<WORD>/<split>/<WORD>_<NNNNN>.txt   "Text: ABOUT", "Conf: …", "Duration: 0.32 seconds", …

<split> is train | val | test: LRW's official split, taken from the folder as is (DESIGN "Preprocessing"). The
numbers restart in every split (train/ABOUT_00001 and test/ABOUT_00001 are different clips), so the clip_id is
"<split>/<WORD>_<NNNNN>", e.g. "test/ABOUT_00001".

Speakers: LRW publishes no speaker identities (BBC broadcasts, one speaker can be in several splits), so
speaker-disjointness cannot apply. Each clip is recorded as its own speaker (`speaker` = clip_id): the store's
"one split per speaker" check is then trivially true and says nothing about LRW.

Label: the text is the word (the folder name, e.g. "ABOUT"); manifest extra `word` holds it too. The word is
centred in the 29-frame clip and lasts the `Duration:` line's seconds: n = floor(duration × 25 + 0.5) frames
(half up), clamped to 1…29; start_frame = floor(14.5 − n/2) (the clip's centre is 14.5 with frame i spanning
[i, i+1); for an even n the extra half frame falls after the centre), end_frame = start_frame + n (exclusive).
`words_timed` is True. A missing or unreadable `.txt`, a `Text:` line that is not the folder's word, or a file
name outside the grammar gives a ClipSource with `label_error` set: the build quarantines it with that reason.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from tasks.datasets.base import ClipSource, DatasetProfile, Word

DATASET = "lrw"
VIDEO_DIR = "lipread_mp4"
SPLITS = ("train", "val", "test")
CLIP_FRAMES, FPS = 29, 25
CENTRE = CLIP_FRAMES / 2  # 14.5

_DURATION = re.compile(r"^\s*Duration:\s*([0-9]*\.?[0-9]+)\s*seconds?\s*$", re.IGNORECASE | re.MULTILINE)
_TEXT = re.compile(r"^\s*Text:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


class LabelError(ValueError):
    """An LRW label (.txt metadata or file name) that cannot be read."""


def word_span(duration_s: float) -> tuple[int, int]:
    """(start_frame, end_frame exclusive) of a word lasting `duration_s` centred in the 29-frame clip."""
    n = min(CLIP_FRAMES, max(1, math.floor(duration_s * FPS + 0.5)))
    start = math.floor(CENTRE - n / 2)
    return start, start + n


def read_txt(path: Path, word: str) -> float:
    """The `Duration:` seconds of an LRW .txt, checking its `Text:` line (when present) is `word`.
    Raises LabelError naming what is wrong."""
    if not path.is_file():
        raise LabelError(f"{path.name} not found (the word's duration comes from it)")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LabelError(f"{path.name} unreadable: {exc}") from None
    m = _TEXT.search(text)
    if m and m.group(1).upper() != word.upper():
        raise LabelError(f"{path.name}: Text {m.group(1)!r} is not the folder's word {word!r}")
    m = _DURATION.search(text)
    if not m:
        raise LabelError(f"{path.name} has no 'Duration: <seconds> seconds' line")
    duration = float(m.group(1))
    if not 0 < duration <= CLIP_FRAMES / FPS + 1e-6:
        raise LabelError(f"{path.name}: Duration {duration} s is outside (0, {CLIP_FRAMES / FPS}] s")
    return duration


def discover(raw_root: Path | str) -> list[ClipSource]:
    """Every `<root>/lipread_mp4/<WORD>/<split>/*.mp4` (split in SPLITS) as a ClipSource, sorted by clip_id.
    Label problems do not raise: the clip carries `label_error`."""
    root = Path(raw_root)
    base = root / VIDEO_DIR
    if not base.is_dir():
        raise FileNotFoundError(f"LRW raw root {root} has no {VIDEO_DIR}/ folder")
    clips = []
    for word_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        word = word_dir.name
        for split in SPLITS:
            split_dir = word_dir / split
            if not split_dir.is_dir():
                continue
            for video in sorted(p for p in split_dir.iterdir() if p.suffix.lower() == ".mp4" and p.is_file()):
                name = video.stem
                clip_id = f"{split}/{name}"
                words, error = (), None
                try:
                    if not re.fullmatch(rf"{re.escape(word)}_\d{{5}}", name):
                        raise LabelError(f"file name {video.name!r} is not {word}_<NNNNN>.mp4")
                    start, end = word_span(read_txt(video.with_suffix(".txt"), word))
                    words = (Word(word, start, end),)
                except LabelError as exc:
                    error = f"label error in {video.relative_to(root).as_posix()}: {exc}"
                clips.append(
                    ClipSource(
                        clip_id=clip_id,
                        dataset=DATASET,
                        speaker=clip_id,
                        split=split,
                        path=video,
                        source_path=video.relative_to(root).as_posix(),
                        text=word,
                        words=words,
                        words_timed=True,
                        label_error=error,
                        extras={"word": word},
                    )
                )
    return sorted(clips, key=lambda c: c.clip_id)


def label_files(raw_root: Path | str) -> list[Path]:
    """Every `.txt` beside the videos: the word spans come from them, so they are part of the store version."""
    base = Path(raw_root) / VIDEO_DIR
    return sorted(base.glob("*/*/*.txt")) if base.is_dir() else []


PROFILE = DatasetProfile(
    name=DATASET,
    reference="Chung & Zisserman 2016, Lip Reading in the Wild, ACCV",
    ranges={"fps_source": (24.9, 25.1), "duration_s": (1.1, 1.25), "n_frames": (CLIP_FRAMES, CLIP_FRAMES),
            "n_words": (1, 1)},
    speaker_ids=False,
)
