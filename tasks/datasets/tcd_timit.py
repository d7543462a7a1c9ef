"""TCD-TIMIT (Harte & Gillen 2015), the audio-visual TIMIT of Trinity College Dublin, in the layout of issue 5.

    <root>/volunteers/<ID>/straightcam/<sentence>.mp4              e.g. volunteers/01M/straightcam/sa1.mp4
    <root>/lipspeakers/<ID>/straightcam/<sentence>.mp4             e.g. lipspeakers/Lipspkr1/straightcam/sx12.mp4
    (the official download has a `Clips/` level: `volunteers/01M/Clips/straightcam/sa1.mp4`; both are read)
    next to each video, its transcript:
        <sentence>.transcript.txt   the sentence as plain text (the layout of the shared samples,
                                    ../shared/data/samples/tcd_timit/<ID>/straightcam/)
     or <sentence>.txt              TIMIT's "start_sample end_sample text" on one line

Volunteer IDs are a number and a sex letter ("01M", "43F"); sentences are TIMIT's ("sa1", "si1445", "sx12"). The
video (1920×1080 @ 29.97 fps in the official release) is resampled to 25 fps by the decoder (tasks/media.py) like
any other source. clip_id is `<group>/<ID>/<sentence>`. The speaker is the volunteer ID as is ("01M"); lipspeakers
get the prefix "lipspeaker-" ("lipspeaker-Lipspkr1") so that they never collide with a volunteer. Words come from
the transcript, untimed (`words_timed` False): TIMIT .wrd timings are not read.

Split (DESIGN "Preprocessing", Vougioukas et al. 2019): volunteers numbered 8, 9, 15, 18, 25, 28, 33, 41, 55, 56
(by the number of the ID, whatever its sex letter) are test; other volunteers go to val by a hash of the ID with
probability 15/85, else train. The three lipspeakers are trained on (DESIGN names no split for them).

A missing, empty or unreadable transcript gives a ClipSource with `label_error` set: the build quarantines the
clip with that reason instead of failing.
"""
from __future__ import annotations

import re
from pathlib import Path

from tasks.datasets.base import ClipSource, DatasetProfile, Word, speaker_split

DATASET = "tcd_timit"
GROUPS = ("volunteers", "lipspeakers")
CAMERA = "straightcam"
CLIPS = "Clips"  # the official download's level between the speaker and the camera
TEST_NUMBERS = frozenset({8, 9, 15, 18, 25, 28, 33, 41, 55, 56})
VAL_FRACTION_OF_REST = 15 / 85
LIPSPEAKER_PREFIX = "lipspeaker-"

_VOLUNTEER = re.compile(r"^(\d+)[MF]?$", re.IGNORECASE)
_TIMIT_LINE = re.compile(r"^\s*\d+\s+\d+\s+(.*)$")


class LabelError(ValueError):
    """A TCD-TIMIT transcript that is missing or cannot be read."""


def split_of(group: str, speaker_id: str) -> str:
    """The split of a speaker: DESIGN's test volunteers by number, lipspeakers train, the rest by hash."""
    if group == "lipspeakers":
        return "train"
    m = _VOLUNTEER.match(speaker_id)
    test = frozenset({speaker_id}) if m and int(m.group(1)) in TEST_NUMBERS else frozenset()
    return speaker_split(speaker_id, test, VAL_FRACTION_OF_REST)


def read_transcript(video: Path) -> str:
    """The sentence spoken in `video`, from `<sentence>.transcript.txt` (plain text) or `<sentence>.txt`
    ("start end text", TIMIT's format) beside it. Raises LabelError naming the problem."""
    candidates = [video.with_name(f"{video.stem}.transcript.txt"), video.with_suffix(".txt")]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise LabelError(f"no transcript ({candidates[0].name} or {candidates[1].name}) beside the video")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"transcript {path.name} unreadable ({exc.__class__.__name__})") from None
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if not lines:
        raise LabelError(f"transcript {path.name} is empty")
    m = _TIMIT_LINE.match(lines[0])
    text = (m.group(1) if m else " ".join(lines)).strip()
    if not text:
        raise LabelError(f"transcript {path.name} holds no words")
    return text


def camera_dir(person: Path) -> Path | None:
    """A speaker's straight-camera folder: `<ID>/straightcam/`, or `<ID>/Clips/straightcam/` as the official
    download has it; None when the speaker has neither."""
    for folder in (person / CAMERA, person / CLIPS / CAMERA):
        if folder.is_dir():
            return folder
    return None


def discover(raw_root: Path | str) -> list[ClipSource]:
    """Every `<root>/{volunteers,lipspeakers}/<ID>/[Clips/]straightcam/*.mp4` (case-insensitive suffix) as a
    ClipSource, sorted by clip_id. Transcript problems do not raise: the clip carries `label_error`."""
    root = Path(raw_root)
    if not any((root / g).is_dir() for g in GROUPS):
        raise FileNotFoundError(f"TCD-TIMIT raw root {root} has neither volunteers/ nor lipspeakers/")
    clips = []
    for group in GROUPS:
        if not (root / group).is_dir():
            continue
        for person in sorted(p for p in (root / group).iterdir() if camera_dir(p)):
            speaker = person.name if group == "volunteers" else LIPSPEAKER_PREFIX + person.name
            split = split_of(group, person.name)
            camera = camera_dir(person)
            for video in sorted(p for p in camera.iterdir() if p.suffix.lower() == ".mp4" and p.is_file()):
                text, words, error = "", (), None
                try:
                    text = read_transcript(video)
                    words = tuple(Word(w) for w in text.split())
                except LabelError as exc:
                    error = f"label error in {video.relative_to(root).as_posix()}: {exc}"
                clips.append(
                    ClipSource(
                        clip_id=f"{group}/{person.name}/{video.stem}",
                        dataset=DATASET,
                        speaker=speaker,
                        split=split,
                        path=video,
                        source_path=video.relative_to(root).as_posix(),
                        text=text,
                        words=words,
                        words_timed=False,
                        label_error=error,
                    )
                )
    return sorted(clips, key=lambda c: c.clip_id)


def label_files(raw_root: Path | str) -> list[Path]:
    """Every transcript file under the camera folders: part of the store version, since labels are data."""
    root = Path(raw_root)
    found = [p for g in GROUPS for pattern in (f"{g}/*/{CAMERA}/*.txt", f"{g}/*/{CLIPS}/{CAMERA}/*.txt")
             for p in root.glob(pattern)]
    return sorted(p for p in found if p.is_file())


PROFILE = DatasetProfile(
    name=DATASET,
    reference="Harte & Gillen 2015, TCD-TIMIT: An Audio-Visual Corpus of Continuous Speech, IEEE Trans. "
              "Multimedia 17(5)",
    ranges={"fps_source": (29.9, 30.05), "duration_s": (0.5, 15.0), "n_words": (1, 40)},
)
