"""Word error rate with jiwer (`tasks.metrics.wer`; shared/specs/vougioukas2019-sda.md §8): corpus-level over GRID
sentences, checked against counts made by hand."""
from __future__ import annotations

import pytest

from tasks.metrics.wer import cer, wer, wer_per_utterance

REFS = ["bin blue at f two now", "lay white in k eight now"]  # 12 words


def test_identical_transcripts_score_zero():
    assert wer(REFS, REFS) == 0.0 and cer(REFS, REFS) == 0.0 and wer_per_utterance(REFS, REFS) == [0.0, 0.0]


def test_corpus_wer_agrees_with_a_hand_count():
    hyps = ["bin blue at f three now",  # one substitution (two -> three)
            "lay white in k now"]  # one deletion (eight)
    assert wer(REFS, hyps) == pytest.approx(2 / 12)
    assert wer_per_utterance(REFS, hyps) == pytest.approx([1 / 6, 1 / 6])
    # an insertion counts too, and the corpus rate weights utterances by their reference words
    assert wer(["bin blue", "lay white in k eight now"], ["bin blue again", "lay white in k eight now"]) == \
        pytest.approx(1 / 8)
    assert wer(REFS, ["", ""]) == 1.0  # nothing read: every word deleted


def test_cer_counts_characters_spaces_included():
    assert cer(["bin blue"], ["bin blu"]) == pytest.approx(1 / 8)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="as many hypotheses"):
        wer(REFS, REFS[:1])
    with pytest.raises(ValueError, match="as many hypotheses"):
        wer([], [])
    with pytest.raises(ValueError, match="no word"):
        wer(["", " "], ["a", "b"])
    with pytest.raises(ValueError, match="no word"):
        wer_per_utterance(["a", ""], ["a", "b"])
