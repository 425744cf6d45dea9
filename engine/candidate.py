"""The one candidate type: what every stage of the pipeline proposes and ranks, and what the user picks.

The converter makes sentence candidates (``source`` "sentence", with the parser ``segmentation`` they were
decoded from); the lexicon translator makes words and characters; the user's learning, prediction and Latin
pass-through make their own kinds. Frozen: a stage that re-scores makes new ones (``dataclasses.replace``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    text: str
    consumed: int  # how many keys (characters of the input string) this candidate converts
    syllables: tuple[str, ...]  # the syllables the text is read with
    score: float  # higher is better, comparable within one candidate list (a sentence's: its log-probability)
    source: str  # "sentence", "word" (whole input), "prefix-word", "char", "learned", "prediction", "latin"
    segmentation: str = ""  # for a sentence: the parser segmentation it was decoded from (``ni'hao``)
