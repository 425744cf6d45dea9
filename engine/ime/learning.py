"""Instant learning: what the user picks changes the next candidate list at once, before any fine-tuning.

Every commit is kept in the user store (history), and each candidate the user picked becomes a learned phrase
(text + its full pinyin, with a count), plus the pairing with the word picked just before it. ``UserRanker``
holds them in memory (loaded once from the store, updated on every commit) and re-ranks a candidate list:

* A correction holds at once: the text last committed for exactly these keys goes first the next time they
  are typed (日本菜 picked once for ``ribencai``), as libime's user history does. A slip undoes itself the
  same way: the next pick for those keys replaces it.
* A learned phrase that spells the whole input is proposed even if the model and the lexicon missed it (a
  name, a coinage). Typed with other keys (an abbreviation, another segmentation) it goes first once picked
  twice or more; picked once it goes second, right after the model's best — one pick there may be a slip.
* The same goes for learned phrases that spell the first syllables (prefix candidates): they lead the
  prefix part of the list.
* A candidate the user has picked right after the previous word counts as picked twice more.
* A pinned phrase (``pinyin-ime phrases edit ID --pin``) always comes first for its pinyin and is never
  reordered by later picks; pausing recording stops all learning and reordering from new picks.

* The user's committed text also feeds a character n-gram cache (``engine.lm.user_lm``) that the pipeline mixes
  into the model's beam search, so words the user writes win inside longer sentences too (``language_model``),
  and adapts the word LM that ranks whole sentences to the user's words, learning the ones they typed
  character by character as words (``word_model``, ``engine.lm.user_word_lm``).

What is not learned (the junk guard): raw letters committed with Enter; text with a character outside the
lexicon; runs of one repeated character (哈哈哈哈 is typed, not chosen); phrases over ``MAX_LEARNED`` characters
(they stay in the history and their picks still teach pairs); anything while recording is paused. Learned
phrases can be listed, edited and deleted with ``engine.store``'s phrase functions; call ``reload()`` after.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace

from engine import store
from engine.lexicon import Lexicon
from engine.pinyin import ParseResult, Segmentation
from engine.candidate import Candidate
from engine.lm.user_lm import UserLM, fill_from_history
from engine.lm.user_word_lm import UserWordLM
from engine.lm.word_lm import WordLM

MAX_LEARNED = 12  # characters in a learned phrase
CONFIRMED = 2  # picks before a learned phrase may take the first place
PINNED = 10**9  # a pinned phrase (store.update_phrase(pinned=True)) is always first for its pinyin


def learnable(text: str, lexicon: Lexicon) -> bool:
    if not text or len(text) > MAX_LEARNED or any(ch not in lexicon.readings for ch in text):
        return False
    return not (len(text) >= 3 and len(set(text)) == 1)


def reading_for(text: str, syllables: tuple[str, ...], lexicon: Lexicon) -> tuple[str, ...] | None:
    """Full pinyin of ``text`` given what was typed for each character (a syllable, or for an abbreviation
    the syllables it could stand for, separated by ``|``): each character's reading that fits."""
    if len(syllables) != len(text):
        return None
    out = []
    for ch, typed in zip(text, syllables):
        options = typed.split("|")
        reading = next((r for r in lexicon.readings.get(ch, ()) if r in options), None)
        if reading is None:
            return None
        out.append(reading)
    return tuple(out)


class UserRanker:
    """The user's learned phrases and pairs, applied to candidate lists (see the module docstring)."""

    def __init__(self, db, lexicon: Lexicon):
        self.db, self.lexicon = db, lexicon
        self.previous = ""  # the last word picked (for pairs); cleared by ``forget_context``
        self._lm: UserLM | None = None
        self._words: UserWordLM | None = None
        self.reload()

    def reload(self) -> None:
        self.phrases: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
        self.by_acronym: dict[str, set[tuple[str, ...]]] = defaultdict(set)  # "zg" → {(zhong, guo), …}
        self.pinned: set[tuple[str, tuple[str, ...]]] = set()
        for p in store.list_phrases(self.db, limit=10**9):
            self._add_phrase(p["text"], tuple(p["pinyin"].split()), p["count"])
            if p["pinned"]:
                self.pinned.add((p["text"], tuple(p["pinyin"].split())))
        self.pairs: dict[tuple[str, str], int] = {(p["prev"], p["text"]): p["count"]
                                                 for p in store.list_pairs(self.db, limit=10**9)}
        learned = {text for texts in self.phrases.values() for text in texts}
        # the last text committed for each key sequence, while it is still a learned phrase
        self.by_keys: dict[str, str] = {k: t for k, t in store.latest_text_by_keys(self.db).items() if t in learned}
        # refilled in place: the converter holding them sees the change
        fill_from_history(self.db, *(cache for cache in (self._lm, self._words) if cache is not None))

    def language_model(self, chars: list[str]) -> UserLM:
        """The n-gram cache of the user's committed text over the model vocabulary ``chars`` (built from the
        store's history on first use, or again when the vocabulary differs), kept up to date by ``learn``."""
        if self._lm is None or self._lm.chars != chars:
            self._lm = UserLM(chars)
            fill_from_history(self.db, self._lm)
        return self._lm

    def word_model(self, base: WordLM) -> UserWordLM:
        """The factory word LM ``base`` adapted to the user's committed text (built from the store's history on
        first use, or again for another ``base``), kept up to date by ``learn``."""
        if self._words is None or self._words.base is not base:
            self._words = UserWordLM(base)
            fill_from_history(self.db, self._words)
        return self._words

    def _add_phrase(self, text: str, pinyin: tuple[str, ...], count: int) -> None:
        self.phrases[pinyin][text] = self.phrases[pinyin].get(text, 0) + count
        self.by_acronym["".join(s[0] for s in pinyin)].add(pinyin)

    def forget_context(self) -> None:
        self.previous = ""

    # -- learning ------------------------------------------------------------------------------------------
    def learn(self, text: str, picks: list[Candidate], keys: str, now: float | None = None) -> None:
        """Record one commit (``picks``: the candidates chosen for it, in order; empty for raw letters)."""
        now = time.time() if now is None else now
        pinyin = " ".join(" ".join(c.syllables) for c in picks) if picks else ""
        units = list(picks)
        if len(picks) > 1:  # the whole commit is a phrase too (何必 + 呢 → 何必呢)
            units.append(Candidate("".join(c.text for c in picks), 0, tuple(s for c in picks for s in c.syllables),
                                   0.0, "joined"))
        phrases = [c for c in units if learnable(c.text, self.lexicon) and len(c.syllables) == len(c.text)]
        pairs, previous = [], self.previous
        for c in picks:
            if previous and learnable(c.text, self.lexicon):
                pairs.append((previous, c.text))
            previous = c.text[-MAX_LEARNED:]
        # one transaction on the typing thread: the commit, its phrases and pairs are kept together or not at all
        with store.transaction(self.db):
            if store.record_commit(self.db, text, pinyin=pinyin, keys=keys, now=now) is None:
                return  # recording is paused: nothing is kept, nothing is learned
            for c in phrases:
                store.learn_phrase(self.db, c.text, " ".join(c.syllables), now=now)
            for prev, word in pairs:
                store.learn_pair(self.db, prev, word, now=now)
        # what is in memory follows what the store now holds
        if self._lm is not None:
            self._lm.add(text)
        if self._words is not None:
            self._words.add(text)
        if not picks:
            self.previous = ""
            return
        for c in phrases:
            self._add_phrase(c.text, c.syllables, 1)
        whole = units[-1]  # the commit as one phrase
        if phrases and phrases[-1] is whole:
            self.by_keys[keys] = whole.text
        else:
            self.by_keys.pop(keys, None)  # what was last committed for these keys is not a phrase
        for pair in pairs:
            self.pairs[pair] = self.pairs.get(pair, 0) + 1
        self.previous = previous

    # -- ranking -------------------------------------------------------------------------------------------
    def count(self, text: str, syllables: tuple[str, ...]) -> int:
        """How strongly the user chose ``text`` for ``syllables``: picks, plus 2 per pick after the current
        previous word; pinned phrases outrank everything."""
        if (text, syllables) in self.pinned:
            return PINNED
        n = self.phrases.get(syllables, {}).get(text, 0)
        if n and self.previous:
            n += 2 * self.pairs.get((self.previous, text), 0)
        return n

    def matches(self, seg: Segmentation, keys: str) -> list[tuple[Candidate, int]]:
        """Learned phrases that spell the first tokens of ``seg`` (all of them, or a prefix)."""
        tokens = seg.tokens
        out = []
        acronyms = [""]  # the phrases' first letters, looked up prefix by prefix: cost grows with what
        for n, tok in enumerate(tokens[:MAX_LEARNED], 1):  # matches, not with how much was learned
            acronyms = [a + c for a in acronyms for c in sorted({s[0] for s in tok.syllables})][:64]
            for acronym in acronyms:
                for pinyin in self.by_acronym.get(acronym, ()):
                    if len(pinyin) != n or any(s not in t.syllables for s, t in zip(pinyin, tokens)):
                        continue
                    for text in self.phrases[pinyin]:
                        out.append((Candidate(text, tok.end, pinyin, 0.0, "learned"), self.count(text, pinyin)))
        return out

    def rerank(self, result: ParseResult, keys: str, candidates: list[Candidate]) -> list[Candidate]:
        if not self.phrases or not result.ok:
            return candidates
        learned: dict[tuple[str, int], tuple[Candidate, int]] = {}
        for seg in result.segmentations(2):
            for cand, n in self.matches(seg, keys):
                key = (cand.text, cand.consumed)
                if n > learned.get(key, (None, 0))[1]:
                    learned[key] = (cand, n)
        if not learned:
            return candidates
        last = learned.get((self.by_keys.get(keys), len(keys)))  # the correction for exactly these keys
        if last is not None and last[1] < PINNED:
            learned[(last[0].text, len(keys))] = (last[0], PINNED - 1)  # after a pin, before all else
        rest = [c for c in candidates if (c.text, c.consumed) not in learned]
        whole = sorted((cn for cn in learned.values() if cn[0].consumed == len(keys)), key=lambda cn: -cn[1])
        part = sorted((cn for cn in learned.values() if cn[0].consumed < len(keys)),
                      key=lambda cn: (-cn[0].consumed, -cn[1]))
        confirmed = [replace(c, source="learned") for c, n in whole if n >= CONFIRMED]
        tentative = [replace(c, source="learned") for c, n in whole if n < CONFIRMED]
        # the model's best stays ahead of phrases picked once, also when it is one of them
        first_whole = [c for c in candidates if c.consumed == len(keys)][:1]
        head, head_keys = [], set()
        for c in confirmed + first_whole + tentative:
            if (c.text, c.consumed) not in head_keys:
                head.append(c)
                head_keys.add((c.text, c.consumed))
        rest = [c for c in rest if (c.text, c.consumed) not in head_keys]
        split = next((i for i, c in enumerate(rest) if c.consumed < len(keys)), len(rest))
        return head + rest[:split] + [replace(c, source="learned") for c, _ in part] + rest[split:]
