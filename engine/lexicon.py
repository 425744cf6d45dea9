"""Lexicon: which characters and words a syllable sequence can spell, and how often each occurs.

Data (``assets/chars.tsv``, ``assets/words.tsv``; rebuilt by ``python -m assets.build_lexicon``):

* ``chars.tsv``: ``char<TAB>syllable<TAB>count``, one line per reading, every reading pypinyin lists for every
  character in common use; count = occurrences of the character *with that reading* in the training corpus.
* ``words.tsv``: one line per reading, ``acronym<TAB>syllables<TAB>word<TAB>count<TAB>word<TAB>count…``, words
  of 2–8 characters, most frequent first; lines sorted, so a reading or an acronym (``zg``: the first letters of
  the syllables) is found by bisection: loading builds no index, which keeps start-up fast.

The lexicon proposes; the model ranks. Queries take, per position, the set of syllables a typed token may
stand for (a full syllable, an initial typed alone, an unfinished syllable: see ``engine.pinyin.Token``), so
abbreviated input (``zg`` → 中国) goes through the same calls as full pinyin.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
SHIPPED_MODEL_DIR = ASSETS_DIR / "model"  # the factory model: the one place that says where it is
ENV_FACTORY = "PINYIN_IME_FACTORY_MODEL"  # another folder as the factory model (tests, development)


def factory_model_dir() -> Path:
    """The factory model's folder: ``$PINYIN_IME_FACTORY_MODEL`` when set, else the shipped model."""
    return Path(os.environ.get(ENV_FACTORY) or SHIPPED_MODEL_DIR)


class Entry(NamedTuple):
    text: str
    syllables: tuple[str, ...]
    count: int


class Lexicon:
    """``readings`` (what the model may turn a syllable into, what single-character candidates list) holds only
    the readings the annotated corpus uses: pypinyin lists readings that modern text never has (是 ti, 有 wei,
    不 fou: count 0 in ``chars.tsv``), and each one let a wrong character into every position typed with that
    syllable. A character the corpus never uses at all keeps every reading (it would be untypeable otherwise).
    ``all_readings`` keeps every listed one. ``prune_readings=False`` keeps them all in ``readings`` too."""

    def __init__(self, chars: dict[str, list[tuple[str, int]]], word_lines: list[str], prune_readings: bool = True):
        # chars: syllable → [(char, count)], most frequent first. word_lines: the sorted lines of words.tsv.
        self._lines = word_lines
        self._memo: dict = {}  # recent chars_for / words_matching answers, keyed by the question (``remember``)
        self._keys = None  # the readings packed for ``spelled_spans``, made on first use
        pairs: dict[str, list[tuple[int, str]]] = {}
        self.char_count: dict[str, int] = {}
        for syl, entries in chars.items():
            for ch, n in entries:
                pairs.setdefault(ch, []).append((n, syl))
                self.char_count[ch] = self.char_count.get(ch, 0) + n
        # char → its readings, most frequent first.
        self.all_readings: dict[str, tuple[str, ...]] = {
            ch: tuple(s for _, s in sorted(ps, key=lambda p: -p[0])) for ch, ps in pairs.items()}

        def used(ch: str, n: int) -> bool:
            return not prune_readings or n > 0 or self.char_count[ch] == 0

        self._chars = {syl: kept for syl, entries in chars.items() if (kept := [e for e in entries if used(*e)])}
        self.readings: dict[str, tuple[str, ...]] = {
            ch: tuple(s for n, s in sorted(ps, key=lambda p: -p[0]) if used(ch, n)) for ch, ps in pairs.items()}

    # -- loading -------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path | str | None = None, prune_readings: bool = True) -> "Lexicon":
        directory = Path(directory) if directory else ASSETS_DIR
        chars_path, words_path = directory / "chars.tsv", directory / "words.tsv"
        for p in (chars_path, words_path):
            if not p.exists():
                raise FileNotFoundError(f"lexicon file {p} is missing: reinstall, or rebuild it with "
                                        f"`python -m assets.build_lexicon`")
        chars: dict[str, list[tuple[str, int]]] = {}
        for line in chars_path.read_text(encoding="utf-8").splitlines():
            ch, syl, n = line.split("\t")
            chars.setdefault(syl, []).append((ch, int(n)))
        for entries in chars.values():
            entries.sort(key=lambda e: -e[1])
        lines = words_path.read_text(encoding="utf-8").splitlines()
        if any(lines[i] > lines[i + 1] for i in range(0, len(lines) - 1, max(1, len(lines) // 64))):
            lines.sort()  # tolerate a hand-edited, unsorted file
        return cls(chars, lines, prune_readings)

    # -- characters ----------------------------------------------------------------------------------------
    def chars_for(self, syllables: str | Iterable[str], limit: int | None = None) -> list[tuple[str, int]]:
        """Characters any of ``syllables`` can be read as, most frequent first: ``chars_for("zhong")``,
        ``chars_for(token.syllables)`` for an initial or an unfinished syllable."""
        if isinstance(syllables, str):
            out = self._chars.get(syllables, [])
            return list(out[:limit] if limit else out)
        if isinstance(syllables, tuple):
            return list(self.remember((syllables, limit), lambda: self._chars_for(syllables, limit)))
        return self._chars_for(syllables, limit)

    def _chars_for(self, syllables: Iterable[str], limit: int | None) -> list[tuple[str, int]]:
        best: dict[str, int] = {}
        for syl in syllables:
            for ch, n in self._chars.get(syl, ()):
                if n >= best.get(ch, -1):
                    best[ch] = n
        out = sorted(best.items(), key=lambda e: (-e[1], e[0]))
        return out[:limit] if limit else out

    def remember(self, key, compute):
        """The answer to a lookup asked before (typing asks the same questions key after key), or computed now
        and kept; at most ~8,000 answers are kept. The lexicon never changes, so neither do the answers: the
        translator keeps its own per-prefix lists here too (``key`` names the question, its first item the kind)."""
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > 8192:
                self._memo.clear()
            hit = self._memo[key] = compute()
        return hit

    def has_reading(self, ch: str, syllable: str) -> bool:
        return syllable in self.readings.get(ch, ())

    def can_spell(self, text: str, syllables: Sequence[str]) -> bool:
        """Whether every character of ``text`` has the matching syllable as a reading."""
        return len(text) == len(syllables) and all(self.has_reading(c, s) for c, s in zip(text, syllables))

    @property
    def characters(self) -> Collection[str]:
        return self.readings.keys()

    # -- words ---------------------------------------------------------------------------------------------
    def _range(self, prefix: str) -> range:
        lo = bisect_left(self._lines, prefix)
        hi = bisect_left(self._lines, prefix + "\uffff", lo)
        return range(lo, hi)

    @staticmethod
    def _entries(line: str) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
        parts = line.split("\t")
        return tuple(parts[1].split()), [(w, int(n)) for w, n in zip(parts[2::2], parts[3::2])]

    def words(self, syllables: Sequence[str], limit: int | None = None) -> list[tuple[str, int]]:
        """Words read exactly as ``syllables`` (full syllables), most frequent first."""
        if not syllables:
            return []
        key = "".join(s[0] for s in syllables) + "\t" + " ".join(syllables) + "\t"
        for i in self._range(key):
            out = self._entries(self._lines[i])[1]
            return out[:limit] if limit else out
        return []

    def words_matching(self, options: Sequence[Collection[str]], limit: int | None = 50) -> list[Entry]:
        """Words whose i-th syllable is one of ``options[i]``: the query for abbreviated or unfinished input
        (``[{"zhong"}, initials["g"]]``). Most frequent first."""
        if not options:
            return []
        key = (tuple(tuple(o) for o in options), limit)
        return list(self.remember(key, lambda: self._words_matching(options, limit)))

    def _words_matching(self, options: Sequence[Collection[str]], limit: int | None) -> list[Entry]:
        if all(len(o) == 1 for o in options):
            syls = tuple(next(iter(o)) for o in options)
            return [Entry(w, syls, n) for w, n in self.words(syls, limit)]
        found: list[Entry] = []
        for acronym in _product([sorted({s[0] for s in o}) for o in options]):
            for i in self._range(acronym + "\t"):
                syls, entries = self._entries(self._lines[i])
                if all(s in o for s, o in zip(syls, options)):
                    found.extend(Entry(w, syls, n) for w, n in entries)
        found.sort(key=lambda e: (-e.count, e.text))
        return found[:limit] if limit else found

    def spelled_spans(self, syllables: Sequence[str | None], longest: int = 6) -> list[list[int]]:
        """For each start ``i``: the ends ``j`` (``i + 2 <= j <= i + longest``) for which some word reads exactly
        ``syllables[i:j]``, a ``None`` (a position that is not one full syllable) never inside. One vectorised
        test of every span against all the readings (``_reading_keys``), so a caller asks ``words`` only about
        the spans that have words: in running text about one span in four."""
        import numpy as np

        keys = self._reading_keys()
        n = len(syllables)
        ids = np.array([_SYLLABLE_ID.get(s, 0) if s is not None else 0 for s in syllables], dtype=np.int64)
        out: list[list[int]] = [[] for _ in range(n)]
        packed = ids.copy()
        gaps = np.concatenate([[0], np.cumsum(ids == 0)])  # positions that are no syllable, up to each index
        for length in range(2, min(longest, _KEY_SYLLABLES, n) + 1):
            starts = n - length + 1
            packed = packed[:starts] | (ids[length - 1:] << (_KEY_BITS * (length - 1)))
            ok = gaps[length:] == gaps[:starts]  # no gap inside the span
            pos = np.minimum(np.searchsorted(keys, packed), keys.size - 1)
            for i in np.flatnonzero(ok & (keys[pos] == packed)).tolist():
                out[i].append(i + length)
        return out

    def _reading_keys(self):
        """Every word reading of 2 .. ``_KEY_SYLLABLES`` syllables packed into one int64 (syllable ids + 1,
        ``_KEY_BITS`` bits each, the first lowest), sorted; built on first use (about 136,000 readings, a
        megabyte), so loading stays an index-free read of the files."""
        if self._keys is None:
            import numpy as np

            keys = []
            for line in self._lines:
                syllables = line.split("\t", 2)[1].split()
                if not 2 <= len(syllables) <= _KEY_SYLLABLES:
                    continue
                key = 0
                for k, syl in enumerate(syllables):
                    sid = _SYLLABLE_ID.get(syl)
                    if sid is None:
                        break
                    key |= sid << (_KEY_BITS * k)
                else:
                    keys.append(key)
            self._keys = np.unique(np.array(keys, dtype=np.int64))
        return self._keys

    def word_count(self, word: str, syllables: Sequence[str]) -> int:
        return next((n for w, n in self.words(syllables) if w == word), 0)

    def word_lines(self) -> list[str]:
        """The lines of ``words.tsv`` (``acronym<TAB>syllables<TAB>word<TAB>count…``, sorted), for one pass over
        every word (``engine.ime.prediction``'s word index); not to be changed."""
        return self._lines

    def __len__(self) -> int:
        """Number of (word, reading) entries."""
        return sum((line.count("\t") - 1) // 2 for line in self._lines)


def _syllable_ids() -> dict[str, int]:
    from engine.pinyin import SYLLABLES

    return {s: i + 1 for i, s in enumerate(SYLLABLES)}


_SYLLABLE_ID = _syllable_ids()  # syllable → 1 .. len(SYLLABLES): 0 stands for "no syllable" in a packed reading
_KEY_BITS = max(len(_SYLLABLE_ID), 1).bit_length()
_KEY_SYLLABLES = 63 // _KEY_BITS  # readings this long fit one int64


def _product(lists: list[list[str]]) -> Iterable[str]:
    if not lists:
        yield ""
        return
    for head in lists[0]:
        for tail in _product(lists[1:]):
            yield head + tail


@lru_cache(maxsize=4)
def default_lexicon(directory: str | None = None) -> Lexicon:
    """The shipped lexicon, loaded once per process."""
    return Lexicon.load(directory, prune_readings=PRUNE_READINGS)


PRUNE_READINGS = os.environ.get("PINYIN_IME_ALL_READINGS") != "1"  # 1: the readings the corpus never uses too


def lexicon_for(model_dir: Path | str | None) -> Lexicon:
    """The lexicon a model decodes with: one next to it (``chars.tsv`` + ``words.tsv`` in its folder: a model
    whose counts were rebuilt, e.g. without a corpus shard for ``benchmarks/out_of_domain.py``), else the
    shipped one."""
    if model_dir is not None and (Path(model_dir) / "chars.tsv").is_file():
        return default_lexicon(str(Path(model_dir).resolve()))
    return default_lexicon()
