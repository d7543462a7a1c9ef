"""CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al. 2014), in its official layout.

    <root>/VideoFlash/<ActorID>_<Sentence>_<Emotion>_<Intensity>.flv   video 480×360 @ 29.97 fps, mp3 44.1 kHz
    <root>/VideoDemographics.csv                                        "ActorID","Age","Sex","Race","Ethnicity"

e.g. `1001_DFA_ANG_XX.flv`: actor 1001 says "Don't forget a jacket" angrily, intensity unspecified. The video is
resampled to 25 fps by the decoder (tasks/media.py) like any other source. The sentence code gives the text; the
words carry no timings (`words_timed` False). Manifest extras, stored as the official codes of the file name:
`emotion` (EMOTIONS: ANG anger, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad) and `intensity`
(INTENSITIES: LO low, MD medium, HI high, XX unspecified); from the demographics file the actor's `sex`
("Male" | "Female", as written there) and `age` (years).

A file name outside that grammar, or an actor missing from (or unreadable in) the demographics file, gives a
ClipSource with `label_error` set: the build quarantines it with that reason instead of failing.

Split (DESIGN "Preprocessing"): actors 1000+n for n in 15, 20, 21, 30, 33, 52, 62, 81, 82, 89 are test; the
others go to val by a hash of the actor id with probability 15/85, else train: 70/15/15 as intended, 62/19/10 actors
as the hash falls over CREMA-D's 91 (DESIGN fixes 10 test actors, 11 %).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from tasks.datasets.base import ClipSource, DatasetProfile, Word, speaker_split

DATASET = "crema_d"
VIDEO_DIR = "VideoFlash"
DEMOGRAPHICS = "VideoDemographics.csv"
TEST_SPEAKERS = frozenset(str(1000 + n) for n in (15, 20, 21, 30, 33, 52, 62, 81, 82, 89))
VAL_FRACTION_OF_REST = 15 / 85  # 15 % of all actors out of the 85 % that are not test

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


class LabelError(ValueError):
    """A CREMA-D label (file name or demographics row) that cannot be read."""


def parse_name(name: str) -> tuple[str, str, str, str]:
    """(actor, sentence code, emotion code, intensity code) from a clip name such as "1001_DFA_ANG_XX".
    Raises LabelError naming what is wrong."""
    m = _NAME.match(name)
    if not m:
        raise LabelError(f"file name {name!r} is not <ActorID>_<Sentence>_<Emotion>_<Intensity> (e.g. 1001_DFA_ANG_XX)")
    actor, sentence, emotion, intensity = m.groups()
    for code, table, what in ((sentence, SENTENCES, "sentence"), (emotion, EMOTIONS, "emotion"),
                              (intensity, INTENSITIES, "intensity")):
        if code not in table:
            raise LabelError(f"file name {name!r}: {code!r} is not a CREMA-D {what} code ({', '.join(table)})")
    return actor, sentence, emotion, intensity


def read_demographics(path: Path) -> dict[str, dict]:
    """ActorID → {"sex": str, "age": int} from VideoDemographics.csv; rows with an unreadable age or sex map to
    a LabelError instead. Raises LabelError when the file is missing or lacks the ActorID/Age/Sex columns."""
    if not path.is_file():
        raise LabelError(f"{DEMOGRAPHICS} not found in the raw root (actor sex and age come from it)")
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f)
        missing = {"ActorID", "Age", "Sex"} - set(reader.fieldnames or ())
        if missing:
            raise LabelError(f"{DEMOGRAPHICS} lacks column(s) {', '.join(sorted(missing))}")
        actors: dict[str, dict] = {}
        for lineno, row in enumerate(reader, 2):
            actor = (row["ActorID"] or "").strip()
            try:
                age, sex = int((row["Age"] or "").strip()), (row["Sex"] or "").strip()
                if not sex:
                    raise ValueError
                actors[actor] = {"sex": sex, "age": age}
            except ValueError:
                actors[actor] = LabelError(f"{DEMOGRAPHICS} line {lineno}: unreadable age or sex for actor {actor}")
    return actors


def discover(raw_root: Path | str) -> list[ClipSource]:
    """Every `<root>/VideoFlash/*.flv` (case-insensitive suffix) as a ClipSource, sorted by clip_id (the file
    stem, e.g. "1001_DFA_ANG_XX"). Label problems do not raise: the clip carries `label_error`."""
    root = Path(raw_root)
    if not (root / VIDEO_DIR).is_dir():
        raise FileNotFoundError(f"CREMA-D raw root {root} has no {VIDEO_DIR}/ folder")
    try:
        actors, demo_error = read_demographics(root / DEMOGRAPHICS), None
    except LabelError as exc:
        actors, demo_error = {}, str(exc)
    clips = []
    for video in sorted(p for p in (root / VIDEO_DIR).iterdir() if p.suffix.lower() == ".flv" and p.is_file()):
        name = video.stem
        speaker = name.split("_", 1)[0]
        text, words, extras, error = "", (), {}, None
        try:
            speaker, sentence, emotion, intensity = parse_name(name)
            text = SENTENCES[sentence]
            words = tuple(Word(w) for w in text.split())
            extras = {"emotion": emotion, "intensity": intensity}
            if demo_error:
                raise LabelError(demo_error)
            person = actors.get(speaker)
            if person is None:
                raise LabelError(f"actor {speaker} is not in {DEMOGRAPHICS}")
            if isinstance(person, LabelError):
                raise person
            extras.update(person)
        except LabelError as exc:
            error = f"label error in {video.name}: {exc}"
        clips.append(
            ClipSource(
                clip_id=name,
                dataset=DATASET,
                speaker=speaker,
                split=speaker_split(speaker, TEST_SPEAKERS, VAL_FRACTION_OF_REST),
                path=video,
                source_path=video.relative_to(root).as_posix(),
                text=text,
                words=words,
                words_timed=False,
                label_error=error,
                extras=extras,
            )
        )
    return clips


def label_files(raw_root: Path | str) -> list[Path]:
    """The demographics file when present: part of the store version, since labels are data."""
    path = Path(raw_root) / DEMOGRAPHICS
    return [path] if path.is_file() else []


PROFILE = DatasetProfile(
    name=DATASET,
    reference="Cao, Cooper, Keutmann, Gur, Nenkova & Verma 2014, CREMA-D: Crowd-sourced Emotional Multimodal "
              "Actors Dataset, IEEE Trans. Affective Computing 5(4)",
    ranges={"fps_source": (29.9, 30.05), "duration_s": (0.8, 6.0), "n_words": (3, 7), "age": (18, 80)},
    value_sets={"emotion": tuple(EMOTIONS), "intensity": tuple(INTENSITIES), "sex": ("Female", "Male")},
    vocabulary=frozenset(w for text in SENTENCES.values() for w in text.split()),
    texts=frozenset(SENTENCES.values()),
)
