"""The lip reader's text side (`models.lipreader.text`): the 28-class CTC alphabet, encoding, greedy CTC decoding on
hand-made log-probabilities, and snapping misspelled hypotheses to the GRID grammar (LipNet, Assael et al. 2016;
shared/specs/vougioukas2019-sda.md §8)."""
from __future__ import annotations

import pytest
import torch

from models.lipreader.text import (ALPHABET, BLANK, GRID_GRAMMAR, GRID_VOCABULARY, NUM_CLASSES, character_error_rate,
                                   decode, edit_distance, encode, greedy_decode, snap_to_grammar)

SENTENCES = ["bin blue at f two now", "lay white in k eight now", "set blue in a one again",
             "place red with z zero please"]


def test_the_alphabet_is_blank_space_then_a_to_z():
    assert NUM_CLASSES == 28 and BLANK == 0 and ALPHABET[0] == " "
    assert encode("a b").tolist() == [2, 1, 3] and encode("z").tolist() == [27]


@pytest.mark.parametrize("text", SENTENCES)
def test_encode_decode_round_trip(text):
    codes = encode(text)
    assert codes.dtype == torch.int64 and codes.shape == (len(text),)
    assert 1 <= int(codes.min()) <= int(codes.max()) <= 27
    assert decode(codes) == text


def test_encode_normalises_case_and_spaces_and_refuses_other_characters():
    assert decode(encode("  Bin  BLUE ")) == "bin blue"
    with pytest.raises(ValueError, match=r"\['\.', '2'\]"):
        encode("bin blue at f 2.")


def one_hot_log_probs(path: list[int]) -> torch.Tensor:
    """(T, 28) log-probabilities whose argmax at frame t is path[t]."""
    lp = torch.full((len(path), NUM_CLASSES), -5.0)
    lp[torch.arange(len(path)), torch.tensor(path)] = -0.01
    return lp


def ids(text: str) -> list[int]:
    """Class indices of a string where '_' is the blank."""
    return [BLANK if c == "_" else ALPHABET.index(c) + 1 for c in text]


def test_greedy_decoding_collapses_repeats_and_drops_blanks():
    # repeats merge, a blank between two equal labels keeps both ("aa"), runs of spaces become one, ends are stripped
    assert greedy_decode(one_hot_log_probs(ids("_bb_inn__  a_a_"))) == ["bin aa"]
    assert greedy_decode(one_hot_log_probs(ids(" _a _ _b  "))) == ["a b"]
    assert greedy_decode(one_hot_log_probs(ids("____"))) == [""]


def test_greedy_decoding_of_a_batch_honours_lengths():
    a, b = ids("_ll_aay__"), ids("sset_____")
    batch = torch.stack([one_hot_log_probs(a), one_hot_log_probs(b)], dim=1)  # (T, B, C)
    assert greedy_decode(batch) == ["lay", "set"]
    assert greedy_decode(batch, lengths=torch.tensor([6, 2])) == ["la", "s"]
    with pytest.raises(ValueError, match="28"):
        greedy_decode(torch.zeros(5, 2, 27))


def test_the_grid_grammar_has_six_slots_and_51_words():
    assert [len(s) for s in GRID_GRAMMAR] == [4, 4, 4, 25, 10, 4] and len(GRID_VOCABULARY) == 51
    assert "w" not in GRID_GRAMMAR[3] and GRID_GRAMMAR[4][0] == "zero"


@pytest.mark.parametrize("hypothesis,snapped", [
    ("bin blue at f two now", "bin blue at f two now"),  # already grammatical: unchanged
    ("bim bleu ad f tw nw", "bin blue at f two now"),  # one typo per word
    ("plase grean wiht z zerro pleese", "place green with z zero please"),
    ("layblue at x four now", "lay blue at x four now"),  # a missed space: one word for two slots
    ("bin bl ue at f two now", "bin blue at f two now"),  # a spurious space: two words for one slot
    ("bin blue f two now", "bin blue f two now"),  # a missed word leaves its slot empty, nothing shifts
    ("bin blue at at f two now", "bin blue at f two now"),  # an extra word is dropped
    ("", ""),
])
def test_snapping_to_the_grammar(hypothesis, snapped):
    assert snap_to_grammar(hypothesis) == snapped


def test_snapped_words_are_grammar_words_in_slot_order():
    for text in ("x", "qqq zzz kk", "again now bin", "a b c d e f g h i"):
        words = snap_to_grammar(text).split()
        assert len(words) <= 6 and set(words) <= GRID_VOCABULARY
        slots = [next(i for i, s in enumerate(GRID_GRAMMAR) if w in s) for w in words]
        assert slots == sorted(set(slots)), (text, words)


def test_edit_distance_and_character_error_rate():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3
    assert character_error_rate(["bin blue", "la"], ["bin blue", "lay"]) == pytest.approx(1 / 11)
