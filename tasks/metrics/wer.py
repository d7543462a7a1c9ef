"""Word error rate of lip-read transcripts against the references, with `jiwer` (shared/specs/vougioukas2019-sda.md
§8: a LipNet reader, corpus-level WER; 21.76 % on GRID's ground-truth test videos in Vougioukas et al. 2019 Tab. 5,
23.1 % on their generated ones).

WER = (S + D + I) / N: substitutions, deletions and insertions of the word-level alignment of each hypothesis with
its reference, summed over the corpus, over the total reference words N (jiwer's corpus WER of lists). It is a
fraction (0 = perfect; it exceeds 1 when hypotheses insert many words). Strings are split on whitespace and compared
as given (case-sensitive; GRID transcripts and the lip reader's output are lower-case). Pure: jiwer only.
"""
from __future__ import annotations

from typing import Sequence

import jiwer


def _check(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    references, hypotheses = [str(r) for r in references], [str(h) for h in hypotheses]
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need as many hypotheses as references, at least one: got {len(hypotheses)} hypotheses "
                         f"for {len(references)} references")
    return references, hypotheses


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus-level WER (fraction) of hypotheses[i] against references[i]. Raises ValueError when the lists differ in
    length or are empty, or when the references hold no word (WER is undefined)."""
    references, hypotheses = _check(references, hypotheses)
    if not any(r.split() for r in references):
        raise ValueError("the references hold no word: WER is undefined")
    return float(jiwer.process_words(references, hypotheses).wer)


def wer_per_utterance(references: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
    """The WER of each pair on its own (fractions); ValueError as `wer`, or when one reference is empty. Their mean
    is not the corpus WER (which weights each utterance by its reference words)."""
    references, hypotheses = _check(references, hypotheses)
    if any(not r.split() for r in references):
        raise ValueError("a reference holds no word: its WER is undefined")
    return [float(jiwer.process_words(r, h).wer) for r, h in zip(references, hypotheses)]


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus-level character error rate (fraction; spaces count as characters), jiwer's. ValueError as `wer`."""
    references, hypotheses = _check(references, hypotheses)
    if not any(r for r in references):
        raise ValueError("the references are empty: CER is undefined")
    return float(jiwer.cer(references, hypotheses))
