"""Lexicon translator: the candidates the lexicon alone can propose for a parsed input.

The "translate" stage of the pipeline (parse → segment → translate → rank/filter): for the best few
segmentations of the keys it proposes whole-input words, then words and single characters covering a prefix of
the input (so the user can commit part of it and keep typing), ranked by corpus frequency. The model-based
ranker is a later stage that re-scores and adds sentence candidates; this stage is what the lexicon knows.
"""

from __future__ import annotations

import math
from dataclasses import replace

from engine.candidate import Candidate
from engine.lexicon import Lexicon
from engine.pinyin import INITIAL, NO_FUZZY, FuzzyOptions, ParseResult, parse


def translate(keys: str | ParseResult, lexicon: Lexicon, fuzzy: FuzzyOptions = NO_FUZZY,
              segmentations: int = 4, limit: int = 60, prefix_words: int = 9) -> list[Candidate]:
    """``prefix_words``: words listed per prefix length (5 left 布置 off the list for ``buzhilezuoye``)."""
    result = keys if isinstance(keys, ParseResult) else parse(keys, fuzzy)
    if not result.ok:
        return []
    segs = list(result.segmentations(segmentations))
    if segs and not segs[0].has_typo:  # an exact reading is the most plausible: typo readings stay out
        segs = [s for s in segs if not s.has_typo]
    out: list[tuple[str, int, tuple[str, ...], float, str]] = []  # Candidate fields; objects for the best only
    seen: set[tuple[str, int]] = set()

    def add(text: str, consumed: int, syls: tuple[str, ...], score: float, source: str) -> None:
        if (text, consumed) not in seen:
            seen.add((text, consumed))
            out.append((text, consumed, syls, score, source))

    best_cost = segs[0].cost if segs else 0.0
    # 1) words spelling the whole input, for each of the top segmentations (cheaper segmentation first).
    for seg in segs:
        penalty = seg.cost - best_cost
        for e in lexicon.words_matching([t.syllables for t in seg.tokens], limit=10):
            add(e.text, seg.tokens[-1].end, e.syllables, _score(e.count, len(e.text)) - penalty, "word")
    # 2) words covering the first tokens (longest first), 3) single characters for the first token. Both depend
    # on the first few tokens alone, which stay the same while the rest of a long input is typed: they are
    # built once per beginning and kept by the lexicon.
    for seg in segs[:2]:
        penalty = seg.cost - best_cost
        heads = seg.tokens[: min(len(seg.tokens) - 1, 7)]
        for text, consumed, syls, score in lexicon.remember(("prefix-words", heads, prefix_words),
                                                             lambda: _prefix_words(heads, lexicon, prefix_words)):
            add(text, consumed, syls, score - penalty, "prefix-word")
    for seg in segs[:2]:
        first = seg.tokens[0]
        whole = len(seg.tokens) == 1  # one syllable typed: its characters are whole-input candidates
        penalty = seg.cost - best_cost
        chars = lexicon.remember(("first-chars", first, limit), lambda: _first_chars(first, lexicon, limit))
        if not whole and chars and len(out) >= limit and min(c[3] for c in out) > chars[0][2] - 200:
            continue  # (long input) every word listed outranks every character: none would make the list
        for ch, syls, score in chars:
            add(ch, first.end, syls, score - (penalty if whole else 200), "word" if whole else "char")
    out.sort(key=lambda c: -c[3])
    return [Candidate(*c) for c in out[:limit]]


def _prefix_words(heads, lexicon: Lexicon, per_length: int) -> list[tuple[str, int, tuple[str, ...], float]]:
    """Words spelling the first n of ``heads`` (n from all of them down to 2), ``per_length`` a length."""
    out = []
    for n in range(len(heads), 1, -1):
        for e in lexicon.words_matching([t.syllables for t in heads[:n]], limit=per_length):
            out.append((e.text, heads[n - 1].end, e.syllables, _score(e.count, n) - 100))
    return out


def _first_chars(first, lexicon: Lexicon, limit: int) -> list[tuple[str, tuple[str, ...], float]]:
    """Characters for the first token, each with the reading it is typed with there."""
    out = []
    for ch, n in lexicon.chars_for(first.syllables, limit=limit):
        syl = next((s for s in lexicon.readings.get(ch, ()) if s in first.syllables), first.syllables[0])
        out.append((ch, (syl,), _score(n, 1)))
    return out


def _score(count: int, length: int) -> float:
    return math.log1p(count) + 0.5 * length



class ModelTranslator:
    """Whole-input sentences ranked by the model first, then the lexicon's prefix words and characters.

    ``converter`` is an ``engine.ime.converter.Converter``; for the keys typed it decodes the parser's best
    segmentations (abbreviations and an unfinished last syllable included) and its top ``sentences`` results
    lead the list; the lexicon translator's candidates follow, without repeating a sentence.

    When the input is abbreviated (an initial typed alone, ``srf``), the model alone is a weak judge: so few
    keys say little, and it saw abbreviations in a minority of its training. There each sentence's score gets
    ``abbreviation_prior`` × log(1 + how often the lexicon saw it as a word with that reading), so that 输入法
    beats a model guess like 虽人法 for ``srf`` (the converter should propose the lexicon's words for such
    input: ``proposals_for="initials"``). Tuned on words of dev.tsv typed as initials: prior 6 with 16
    proposals, top-1 21% → 29%, top-3 30% → 45%. When only the last syllable is unfinished the model is
    trusted more (``unfinished_prior``). Full pinyin is ranked by the model alone."""

    def __init__(self, converter, lexicon: Lexicon, sentences: int = 3, fuzzy: FuzzyOptions = NO_FUZZY,
                 abbreviation_prior: float = 6.0, unfinished_prior: float = 0.5, window: int = 24):
        self.converter, self.lexicon, self.sentences, self.fuzzy = converter, lexicon, sentences, fuzzy
        self.abbreviation_prior, self.unfinished_prior, self.window = abbreviation_prior, unfinished_prior, window

    def with_converter(self, converter) -> "ModelTranslator":
        """This translator over another converter (the same model with other LMs, say)."""
        return ModelTranslator(converter, self.lexicon, self.sentences, self.fuzzy, self.abbreviation_prior,
                               self.unfinished_prior, self.window)

    def __call__(self, keys: str | ParseResult) -> list[Candidate]:
        result = keys if isinstance(keys, ParseResult) else parse(keys, self.fuzzy)
        keys = result.keys
        if not result.ok:
            return []
        best = result.best()
        end, head = len(keys), result
        if best is not None and len(best.tokens) > self.window:
            # Long input: sentences cover the first ``window`` syllables only (a prefix pick commits them and
            # the rest keeps composing). Typing further does not change that head, so it costs nothing more.
            end = best.tokens[self.window - 1].end
            head = parse(keys[:end], result.fuzzy)
            best = head.best()
        sentences = self.converter.convert_raw(head, top=max(16, self.sentences))
        prior = 0.0
        if best is not None and not best.is_complete:
            prior = self.abbreviation_prior if any(t.kind == INITIAL for t in best.tokens) else self.unfinished_prior
        if prior:
            counts = {e.text: e.count for e in self.lexicon.words_matching([t.syllables for t in best.tokens],
                                                                           limit=None)}
            sentences = sorted((replace(c, score=c.score + prior * math.log1p(counts.get(c.text, 0)))
                                for c in sentences), key=lambda c: -c.score)
        segs = {str(s): s for s in head.segmentations(max(4, self.converter.settings.segmentations))}
        out = [replace(c, consumed=end, syllables=self._reading(c.text, segs.get(c.segmentation)))
               for c in sentences[: self.sentences]]
        seen = {(c.text, c.consumed) for c in out}
        rest = [c for c in translate(result, self.lexicon) if (c.text, c.consumed) not in seen]
        return out + self._heads_first(rest, sentences, segs)

    @staticmethod
    def _heads_first(rest: list[Candidate], sentences, segs) -> list[Candidate]:
        """Prefix words and characters that begin one of the model's n-best sentences move ahead of the
        others of their kind, in the order of those sentences: for ``buzhilezuoye`` the model's third sentence
        is 布置了作业, so 布置 leads the prefix words although the lexicon counts 不知 and 不值 more often."""
        heads: dict[tuple[str, int], int] = {}
        for rank, c in enumerate(sentences):
            seg = segs.get(c.segmentation)
            if seg is None or len(seg.tokens) != len(c.text):
                continue
            for n in range(1, len(c.text)):
                heads.setdefault((c.text[:n], seg.tokens[n - 1].end), rank)
        if not heads:
            return rest
        kind = {"prefix-word": 1, "char": 2}

        def order(item):
            i, c = item
            group = kind.get(c.source, 0)
            return (group, heads.get((c.text, c.consumed), len(sentences)) if group else 0, i)

        return [c for _, c in sorted(enumerate(rest), key=order)]

    def _reading(self, text: str, seg) -> tuple[str, ...]:
        """The full pinyin of a sentence (what the user meant, also for abbreviated keys), for learning."""
        if seg is not None and len(seg.tokens) == len(text):
            out = []
            for ch, tok in zip(text, seg.tokens):
                reading = next((r for r in self.lexicon.readings.get(ch, ()) if r in tok.syllables), None)
                out.append(reading or tok.syllables[0])
            return tuple(out)
        return tuple(self.lexicon.readings.get(ch, ("?",))[0] for ch in text)
