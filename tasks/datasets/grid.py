"""GRID audiovisual corpus (Cooke et al. 2006) in its official layout.

    <root>/<speaker>/<clip>.mpg                   video, 25 fps, 3 s, 360×288, stereo 44.1 kHz audio
    <root>/alignments/<speaker>/<clip>.align      word alignments: "start end word" per line,
                                                  1000 units per 25 fps video frame; sil/sp are silence

The six-letter clip name encodes the sentence (command colour preposition letter digit adverb), e.g. bbaf2n =
"bin blue at f two now"; where an .align file is missing the words come from that code, without timings
(`words_timed` False in the manifest). Split (Vougioukas et al. 2019): test speakers s2, s4, s11, s13, s15, s18,
s19, s25, s31, s33; of the others about 2/7 go to val by a hash of the speaker name (50/20/30 overall).
"""
from __future__ import annotations

from pathlib import Path

from tasks.datasets.base import ClipSource, DatasetProfile, Word, speaker_split

DATASET = "grid"
TEST_SPEAKERS = frozenset(f"s{n}" for n in (2, 4, 11, 13, 15, 18, 19, 25, 31, 33))
VAL_FRACTION_OF_REST = 2 / 7  # 20 % of all speakers out of the 70 % that are not test
UNITS_PER_FRAME = 1000
SILENCE = frozenset({"sil", "sp"})

COMMAND = {"b": "bin", "l": "lay", "p": "place", "s": "set"}
COLOUR = {"b": "blue", "g": "green", "r": "red", "w": "white"}
PREPOSITION = {"a": "at", "b": "by", "i": "in", "w": "with"}
DIGIT = {"z": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
         "8": "eight", "9": "nine"}
ADVERB = {"a": "again", "n": "now", "p": "please", "s": "soon"}


class LabelError(ValueError):
    """A GRID label (an .align file or a clip-name code) that cannot be read."""


def words_from_code(name: str) -> tuple[Word, ...]:
    """The six words a GRID clip name encodes, untimed. Raises LabelError for a name outside the grammar."""
    if len(name) != 6:
        raise LabelError(f"clip name {name!r} is not a 6-letter GRID code")
    tables = (COMMAND, COLOUR, PREPOSITION, None, DIGIT, ADVERB)
    words = []
    for ch, table in zip(name.lower(), tables):
        if table is None:
            if not ch.isalpha():
                raise LabelError(f"clip name {name!r}: letter slot holds {ch!r}")
            words.append(ch)
        elif ch in table:
            words.append(table[ch])
        else:
            raise LabelError(f"clip name {name!r}: {ch!r} is not a GRID code letter")
    return tuple(Word(w) for w in words)


def parse_align(text: str) -> tuple[Word, ...]:
    """Words (silence dropped) with 25 fps frame spans from an .align file's text.

    Raises LabelError naming the first bad line: not three fields, non-integer times, end before start, or no
    words at all.
    """
    words = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3:
            raise LabelError(f"malformed .align line {lineno}: {line.strip()[:60]!r} (want 'start end word')")
        try:
            start, end = int(fields[0]), int(fields[1])
        except ValueError:
            raise LabelError(f"malformed .align line {lineno}: {line.strip()[:60]!r} (times are not integers)") from None
        if end < start or start < 0:
            raise LabelError(f"malformed .align line {lineno}: end {end} before start {start}")
        if fields[2] not in SILENCE:
            words.append(Word(fields[2], start // UNITS_PER_FRAME, -(-end // UNITS_PER_FRAME)))
    if not words:
        raise LabelError(".align file holds no words")
    return tuple(words)


def discover(raw_root: Path | str) -> list[ClipSource]:
    """Every `<root>/<speaker>/*.mpg` (case-insensitive suffix) as a ClipSource, sorted by clip_id.

    Label problems do not raise: the clip carries `label_error` and is quarantined by the build.
    """
    root = Path(raw_root)
    if not root.is_dir():
        raise FileNotFoundError(f"GRID raw root {root} is not a directory")
    clips = []
    for video in sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".mpg" and p.parent.name != "alignments"):
        speaker, name = video.parent.name, video.stem
        align = root / "alignments" / speaker / f"{name}.align"
        words, timed, error = (), False, None
        try:
            if align.exists():
                words, timed = parse_align(align.read_text(encoding="utf-8", errors="replace")), True
            else:
                words = words_from_code(name)
        except LabelError as exc:
            error = f"label error in {align.name if align.exists() else name}: {exc}"
        clips.append(
            ClipSource(
                clip_id=f"{speaker}/{name}",
                dataset=DATASET,
                speaker=speaker,
                split=speaker_split(speaker, TEST_SPEAKERS, VAL_FRACTION_OF_REST),
                path=video,
                source_path=video.relative_to(root).as_posix(),
                text=" ".join(w.word for w in words),
                words=words,
                words_timed=timed,
                label_error=error,
            )
        )
    return clips


def label_files(raw_root: Path | str) -> list[Path]:
    """The .align files under the root, sorted: part of the store version, since labels are data."""
    return sorted(Path(raw_root).glob("alignments/*/*.align"))


VOCABULARY = frozenset({*COMMAND.values(), *COLOUR.values(), *PREPOSITION.values(), *DIGIT.values(),
                        *ADVERB.values(), *"abcdefghijklmnopqrstuvxyz"})  # 51 words: GRID has no letter w
PROFILE = DatasetProfile(
    name=DATASET,
    reference="Cooke, Barker, Cunningham & Shao 2006, An audio-visual corpus for speech perception and automatic "
              "speech recognition, JASA 120(5)",
    ranges={"fps_source": (24.9, 25.1), "duration_s": (2.5, 3.5), "n_words": (6, 6)},
    vocabulary=VOCABULARY,
)
