"""What personalization trains and checks on: the user's own lines, a held-out slice of them, and general text.

* The user's lines: the commits in the store (oldest first, the newest ``limit``), each as 汉字 with one
  toneless syllable per character. A commit keeps the pinyin the user picked it with when that spells it
  syllable by syllable; otherwise (punctuation, mixed text, letters typed with Enter) its clauses of 汉字 are
  read with pypinyin in phrase context, as the corpus is. Or a ``汉字<TAB>pinyin`` file.
* The held-out slice: every ``every``-th line (spread over time, never trained on): the model has to beat the
  current one there to be accepted.
* General text shipped in ``assets/personalize/`` (built by ``python -m assets.build_personalize``):
  ``replay.tsv``, mixed into training so the model keeps what it knew, and ``general.tsv``, on which it may
  lose at most a point of sentence accuracy.
"""

from __future__ import annotations

from pathlib import Path

from engine import store
from engine.lexicon import ASSETS_DIR
from engine.pinyin import SYLLABLE_SET

PERSONALIZE_DIR = ASSETS_DIR / "personalize"
REPLAY_FILE = PERSONALIZE_DIR / "replay.tsv"
GENERAL_FILE = PERSONALIZE_DIR / "general.tsv"
MAX_CHARS = 48  # longer clauses are cut into pieces this long for training

Line = tuple[str, list[str]]  # 汉字, one syllable per character


def _chunks(text: str, syllables: list[str]) -> list[Line]:
    return [(text[i:i + MAX_CHARS], syllables[i:i + MAX_CHARS]) for i in range(0, len(text), MAX_CHARS)]


def commit_lines(text: str, pinyin: str) -> list[Line]:
    """One commit as training lines (see the module docstring); [] when it holds no readable 汉字."""
    from trainer.corpus import HAN_RUN, annotate, clauses, normalise

    syllables = (pinyin or "").split()
    if (len(syllables) == len(text) and HAN_RUN.fullmatch(text)
            and all(s in SYLLABLE_SET for s in syllables)):
        return _chunks(text, syllables)
    out = []
    for clause in clauses(normalise(text), min_chars=2):
        readings = annotate(clause)
        if readings is not None:
            out += _chunks(clause, readings)
    return out


def lines_from_store(db, limit: int = 5000) -> tuple[list[Line], int]:
    """The user's lines from the newest ``limit`` commits, oldest first, and the newest commit's id."""
    rows = store.newest_commits(db, limit)
    lines = [line for r in reversed(rows) for line in commit_lines(r["text"], r["pinyin"] or "")]
    return lines, (rows[0]["id"] if rows else 0)


def read_lines(path: Path | str) -> list[Line]:
    """A ``汉字<TAB>pinyin`` file as lines; a line whose pinyin does not spell its text syllable by syllable is
    an error that names the line."""
    from trainer.evaluate import read_tsv

    out = []
    for n, (text, pinyin) in enumerate(read_tsv(path), 1):
        syllables = pinyin.split()
        if len(syllables) != len(text) or not all(s in SYLLABLE_SET for s in syllables):
            raise ValueError(f"{path}: line {n} ({text}): give one toneless syllable per character, "
                             f"e.g. '你好<TAB>ni hao'")
        out += _chunks(text, syllables)
    return out


def split_held_out(lines: list[Line], every: int = 10, minimum: int = 20) -> tuple[list[Line], list[Line]]:
    """(train, held out): every ``every``-th line is held out, and at least ``minimum`` lines."""
    every = max(2, min(every, len(lines) // max(1, minimum)))
    held = lines[every - 1::every]
    train = [line for i, line in enumerate(lines) if i % every != every - 1]
    return train, held
