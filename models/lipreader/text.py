"""GRID text for the lip reader (LipNet, Assael et al. 2016; shared/specs/vougioukas2019-sda.md §8): the CTC
alphabet, target encoding, greedy CTC decoding and the GRID grammar a hypothesis can be snapped to. Pure (torch only).

Alphabet, 28 classes, index order:

    0 = CTC blank   1 = " " (space)   2 = "a"   3 = "b"   ...   27 = "z"

Two decodings of the network's per-frame log-probabilities, reported separately:
  "greedy"          `greedy_decode`: argmax per frame, repeats collapsed, blanks dropped, runs of spaces collapsed,
                    ends stripped (best-path decoding; LipNet itself used a beam search with a character
                    language model, not implemented here).
  "greedy+grammar"  `snap_to_grammar` of the greedy string ("snapped"): each word replaced by the nearest word (edit
                    distance) of the GRID slot it is aligned to [D].
"""
from __future__ import annotations

import string
from functools import lru_cache

import torch

BLANK = 0
ALPHABET = " " + string.ascii_lowercase  # class i + 1 is ALPHABET[i]; class 0 is the CTC blank
NUM_CLASSES = len(ALPHABET) + 1  # 28
_INDEX = {c: i + 1 for i, c in enumerate(ALPHABET)}

GRID_GRAMMAR: tuple[tuple[str, ...], ...] = (
    ("bin", "lay", "place", "set"),  # command
    ("blue", "green", "red", "white"),  # colour
    ("at", "by", "in", "with"),  # preposition
    tuple(c for c in string.ascii_lowercase if c != "w"),  # letter (a-z except w)
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),  # digit
    ("again", "now", "please", "soon"),  # adverb
)
GRID_SLOTS = ("command", "colour", "preposition", "letter", "digit", "adverb")
GRID_VOCABULARY = frozenset(w for slot in GRID_GRAMMAR for w in slot)  # 51 words


def normalize(text: str) -> str:
    """Lower-cased, runs of whitespace collapsed to one space, ends stripped."""
    return " ".join(text.lower().split())


def encode(text: str) -> torch.Tensor:
    """The class indices of `normalize(text)`: int64 (L,), values 1..27 (no blank). Raises ValueError naming the
    characters outside space and a-z (e.g. digits or punctuation: GRID transcripts spell digits as words)."""
    text = normalize(text)
    bad = sorted({c for c in text if c not in _INDEX})
    if bad:
        raise ValueError(f"{text!r}: characters {bad} are outside the lip reader's alphabet (space, a-z)")
    return torch.tensor([_INDEX[c] for c in text], dtype=torch.int64)


def decode(indices) -> str:
    """The string of class indices (a sequence or 1-D tensor), blanks skipped; no CTC collapsing (see
    `greedy_decode`)."""
    return "".join(ALPHABET[int(i) - 1] for i in indices if int(i) != BLANK)


def greedy_decode(log_probs: torch.Tensor, lengths=None) -> list[str]:
    """Best-path CTC decoding: per frame argmax, consecutive repeats collapsed, blanks dropped, spaces collapsed and
    stripped.

    log_probs: (T, C) for one clip or (T, B, C) for a batch (the network's output layout), C = 28; any scores whose
        argmax is the class (log-probabilities or logits). lengths: valid frames per clip (B,) (ints or a tensor);
        None: all T frames. Returns one string per clip (a list of one for (T, C)).
    """
    if log_probs.dim() == 2:
        log_probs = log_probs[:, None]
    if log_probs.dim() != 3 or log_probs.shape[-1] != NUM_CLASSES:
        raise ValueError(f"log_probs must be (T, C) or (T, B, C) with C = {NUM_CLASSES}, got {tuple(log_probs.shape)}")
    T, B, _ = log_probs.shape
    best = log_probs.argmax(-1).T.cpu()  # (B, T)
    lengths = [T] * B if lengths is None else [int(n) for n in lengths]
    out = []
    for b in range(B):
        path = best[b, : lengths[b]]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]  # collapse repeats (a blank between two equal labels keeps both)
        out.append(normalize(decode(path[keep])))
    return out


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (unit insertions, deletions and substitutions)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def character_error_rate(hypotheses: list[str], references: list[str]) -> float:
    """Corpus CER: the summed character edit distances over the summed reference lengths (0.0 when the references
    are all empty). A pure-python check for training logs; evaluation scores with `tasks.metrics.wer` (jiwer)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    chars = sum(len(r) for r in references)
    return sum(edit_distance(h, r) for h, r in zip(hypotheses, references)) / chars if chars else 0.0


@lru_cache(maxsize=4096)
def _nearest(word: str, slot: int) -> tuple[str, int]:
    """(the slot's word nearest to `word`, its edit distance); ties go to the first in the slot's listed order."""
    return min(((v, edit_distance(word, v)) for v in GRID_GRAMMAR[slot]), key=lambda vd: vd[1])


def _split(word: str, slot: int) -> tuple[str, str, int]:
    """A word read for two consecutive slots (a missed space, e.g. "layblue"): (slot's word, next slot's word, cost),
    the split point of least summed edit distance."""
    best = None
    for k in range(1, len(word)):
        (a, da), (b, db) = _nearest(word[:k], slot), _nearest(word[k:], slot + 1)
        if best is None or da + db < best[2]:
            best = (a, b, da + db)
    return best


def snap_to_grammar(text: str) -> str:
    """The "greedy+grammar" decoding [D]: `text`'s words aligned in order to the six GRID slots (command, colour,
    preposition, letter, digit, adverb) and each replaced by its slot's nearest word (edit distance; ties to the
    first in `GRID_GRAMMAR`'s order).

    The alignment is the monotone one of least total character cost (a dynamic programme over words × slots):
      take   one word for one slot: its edit distance d to the slot's nearest word;
      split  one word for two consecutive slots (a missed space, "layblue"): 1 + the best split's summed distances;
      join   two words for one slot (a spurious space, "bl ue"): 1 + the joined word's distance;
      drop   a word for no slot: its length (the word is left out);
      empty  a slot with no word: its shortest word's length (the slot stays empty: no word is invented).
    Between alignments of equal cost, the one with fewer inexact words (d > 0) wins; remaining ties go to the first
    found (deterministic). So a six-word hypothesis normally maps word i to slot i, a spurious word is dropped, and a
    missing word leaves its slot empty instead of shifting the later words into the wrong slots. The result has at
    most six words, in slot order ("" for an empty hypothesis).
    """
    words = normalize(text).split()
    n, S = len(words), len(GRID_GRAMMAR)
    slot_gap = [min(len(v) for v in vocab) for vocab in GRID_GRAMMAR]
    INF = (float("inf"), 0)
    # cost[i][s]: least (characters, inexact words) of words[:i] against slots[:s]; back: (previous i, s, emitted)
    cost = [[INF] * (S + 1) for _ in range(n + 1)]
    back: list[list[tuple | None]] = [[None] * (S + 1) for _ in range(n + 1)]
    cost[0][0] = (0, 0)
    for i in range(n + 1):
        for s in range(S + 1):
            (c, k) = cost[i][s]
            if c == INF[0]:
                continue
            moves = []
            if i < n and s < S:
                word, d = _nearest(words[i], s)
                moves.append((i + 1, s + 1, (c + d, k + (d > 0)), (word,)))
            if i < n and s + 1 < S and len(words[i]) > 1:
                a, b, d = _split(words[i], s)
                moves.append((i + 1, s + 2, (c + d + 1, k + 1 + (d > 0)), (a, b)))
            if i + 1 < n and s < S:
                word, d = _nearest(words[i] + words[i + 1], s)
                moves.append((i + 2, s + 1, (c + d + 1, k + 1 + (d > 0)), (word,)))
            if i < n:
                moves.append((i + 1, s, (c + len(words[i]), k), ()))
            if s < S:
                moves.append((i, s + 1, (c + slot_gap[s], k), ()))
            for i2, s2, c2, emitted in moves:
                if c2 < cost[i2][s2]:
                    cost[i2][s2], back[i2][s2] = c2, (i, s, emitted)
    out, i, s = [], n, S
    while (i, s) != (0, 0):
        i, s, emitted = back[i][s]
        out[:0] = emitted
    return " ".join(out)
