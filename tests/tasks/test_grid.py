"""GRID adapter on the bundled real clips and alignment files."""
from __future__ import annotations

import pytest

from tasks.datasets import discover, grid
from tests.conftest import SAMPLES


def test_parse_align_reads_words_and_frame_spans():
    words = grid.parse_align((SAMPLES / "alignments" / "s1" / "bbaf2n.align").read_text())
    assert [w.word for w in words] == ["bin", "blue", "at", "f", "two", "now"]
    # 1000 units per 25 fps frame; the file starts with "0 23750 sil" then "23750 29500 bin"
    assert (words[0].start_frame, words[0].end_frame) == (23, 30)
    assert all(w.start_frame < w.end_frame <= 75 for w in words)


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 23750 sil\n23750 bin\n", "line 2"),
        ("0 23750 sil\nabc 29500 bin\n", "not integers"),
        ("0 23750 sil\n29500 23750 bin\n", "before start"),
        ("0 74500 sil\n", "no words"),
    ],
)
def test_malformed_align_raises_a_clear_error(text, message):
    with pytest.raises(grid.LabelError, match=message):
        grid.parse_align(text)


def test_words_from_the_file_name_code():
    assert " ".join(w.word for w in grid.words_from_code("lbax4n")) == "lay blue at x four now"
    assert " ".join(w.word for w in grid.words_from_code("sbia1a")) == "set blue in a one again"
    with pytest.raises(grid.LabelError):
        grid.words_from_code("qqqqqq")


def test_discover_the_bundled_layout():
    clips = discover("grid", SAMPLES)
    assert [c.clip_id for c in clips] == sorted(c.clip_id for c in clips)
    by_id = {c.clip_id: c for c in clips}
    assert by_id["s1/bbaf2n"].words_timed and by_id["s1/bbaf2n"].split == "train"
    assert by_id["s2/swwp2s"].split == "test"  # s2 is a Vougioukas et al. test speaker
    untimed = by_id["unknown/lbax4n"]
    assert not untimed.words_timed and untimed.text == "lay blue at x four now"
    assert all(w.start_frame is None for w in untimed.words)
    assert {c.source_path for c in clips} >= {"s1/bbaf2n.mpg", "unknown/lbax4n.mpg"}


def test_split_is_speaker_disjoint_and_matches_the_paper_proportions():
    speakers = [f"s{n}" for n in range(1, 35) if n != 21]  # GRID has no s21 video
    splits = {s: grid.speaker_split(s, grid.TEST_SPEAKERS, grid.VAL_FRACTION_OF_REST) for s in speakers}
    assert {s for s, v in splits.items() if v == "test"} == set(grid.TEST_SPEAKERS)
    n_val = sum(v == "val" for v in splits.values())
    assert 4 <= n_val <= 9  # about 20 % of 33 speakers
    assert splits == {s: grid.speaker_split(s, grid.TEST_SPEAKERS, grid.VAL_FRACTION_OF_REST) for s in speakers}
