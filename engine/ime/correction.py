"""Correcting committed text: homophone slips (公圆 for 公园) found by converting the text's own pinyin again.

A homophone slip keeps the pinyin: the text's reading is what the user meant to type, so the model, converting
that reading again with the text around it as context, proposes what it would have typed. Where the
re-conversion differs from the text, the difference is only a *suggestion*: the model is right on ~93% of the
characters of unseen text, so on correct text it would also "correct" names, rare words and free word choices.
An edit is therefore proposed only when it is clearly better under the same scorer: the log-probability of the
text with that one span replaced (model + corpus character LM + user cache, + the word LM, exactly how the
converter ranks its candidates) must beat the text's own by more than ``MARGIN`` nats.

How, step by step (``span_edits``):

1. **Reading** (``readings``): pypinyin's toneless reading with phrase context (ü as v), read per run of 汉字,
   as ``trainer/corpus.py`` annotated the corpus the model learned from. Traditional text is converted to
   simplified first (opencc t2s) and the proposal mapped back (s2t), when opencc is there.
2. **Pieces**: only characters the model can write and whose syllable it reads are considered; everything
   else (punctuation, Latin, digits, spaces, rare characters) is kept as it is and splits the text, so a long
   selection is worked on clause by clause (runs longer than ``PIECE`` characters are cut in even pieces, as
   ``engine.ime.converter.chunk_spans`` cuts long input).
3. **Context**: each piece is converted and scored inside a window that reaches up to ``CONTEXT`` characters
   further on each side *within the same clause*: the rest of the clause around a selection (``before`` /
   ``after``: the text just outside it) and the neighbouring piece of a long run. Edits are only made inside
   the piece. Context stops at punctuation because the model was trained on clauses.
4. **Candidates**: the converter's whole-line search (``convert_syllables``, its two-pass search with the LMs;
   typing's decode cache is bypassed for the call) gives its ``TOP`` best texts for the window; every
   character where one of them differs from the text in the piece is a candidate edit, and so is every run
   of neighbouring differing characters (a word).
5. **Decision**, greedily per piece: every remaining edit is scored on the text as the earlier steps left it
   (one batched scoring call per step), the one with the most gain per changed character is taken, edits
   overlapping it are dropped, until none gains anything. An edit's ``strength`` is its gain per changed
   character, capped by the strengths of the steps before it (so a margin keeps a prefix of the steps);
   ``propose`` keeps the edits stronger than the margin. Per changed character, because the model, re-reading
   correct text, would happily rewrite a whole clause its own way (一窝能生四至六只 → 以我能生死之流之 gains
   17 nats in all but under 3 per character), while a real slip gains 10–30 nats in one character; greedy
   steps, because the first slip fixed changes what the second one should be.

``MARGIN`` was chosen with ``benchmarks/correction.py`` on the tuning half of dev.tsv (see there and its JSON).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from engine.ime.converter import chunk_spans
from engine.runtime.model_spec import input_tokens

MARGIN = 10.5  # nats per changed character an edit must gain; chosen on the tuning half of dev (benchmarks/correction.py)
TOP = 5  # the re-conversion's best texts whose differences are considered
CONTEXT = 8  # characters of the clause on each side of a piece that the model reads with it
PIECE = 48  # at most this many characters are corrected at once (+ 2 × CONTEXT fits the model's 64)

_TOKEN_INDEX = {t: i for i, t in enumerate(input_tokens())}  # the model's input tokens (syllables first)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True)
class Edit:
    """``text[start:end]`` (positions in the text given to ``propose``) replaced by ``replacement``."""
    start: int
    end: int
    original: str
    replacement: str
    gain: float  # nats: log-probability of the text with this edit minus without (after the earlier edits)
    strength: float = 0.0  # gain per changed character, and never more than an earlier edit's in its piece

    @property
    def changed(self) -> list[int]:
        """The positions whose character changes (a joined edit keeps some in between)."""
        return [self.start + i for i, (a, b) in enumerate(zip(self.original, self.replacement)) if a != b]


@dataclass(frozen=True)
class Correction:
    original: str
    text: str  # the corrected text, same length as ``original``
    edits: tuple[Edit, ...] = field(default=())

    @property
    def changed(self) -> list[int]:
        """Positions (in ``original`` and ``text``) of the characters that change, for highlighting."""
        return sorted(p for e in self.edits for p in e.changed)


def readings(text: str) -> list[str | None]:
    """One model syllable per character (None: not a 汉字 the model reads — kept as it is)."""
    from pypinyin import lazy_pinyin

    out: list[str | None] = [None] * len(text)
    for m in _HAN.finditer(text):
        syls = lazy_pinyin(m.group(), v_to_u=False, errors=lambda chars: [None] * len(chars))
        if len(syls) != len(m.group()):  # never seen; a safe fallback: read character by character
            syls = [lazy_pinyin(ch, v_to_u=False)[0] for ch in m.group()]
        for i, s in enumerate(syls):
            out[m.start() + i] = s if s in _TOKEN_INDEX else None
    return out


def _runs(text: str, syls: list[str | None], chars: dict) -> list[tuple[int, int]]:
    """Maximal runs of characters the model can read and write."""
    runs, start = [], None
    for i, ch in enumerate(text + "\0"):
        ok = i < len(text) and syls[i] is not None and ch in chars
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append((start, i))
            start = None
    return runs


def full_scores(converter, syllables: list[str], texts: list[str]) -> list[float]:
    """How the converter ranks ``texts`` for ``syllables``: the model's log-probability with its LM fusion
    (``score_texts``) plus the word LM's share when it has one, with whole-line ranking's setting
    (``Converter.word_share``)."""
    ids = [_TOKEN_INDEX[s] for s in syllables]
    scores = converter.score_texts(ids, texts)
    if converter.word_lm is not None and texts:
        extra = converter.word_share(texts)
        scores = [s + float(e) for s, e in zip(scores, extra)]
    return scores


def _candidate_spans(original: str, candidate: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    """Where ``candidate`` differs from ``original`` in [lo, hi): each changed character alone and each run
    of neighbouring changed characters (a word), as (start, end, replacement)."""
    diff = [i for i in range(lo, hi) if candidate[i] != original[i]]
    spans = [(i, i + 1, candidate[i]) for i in diff]
    start = None
    for a, b in zip(diff, diff[1:] + [None]):
        start = a if start is None else start
        if b != a + 1:
            if a + 1 - start > 1:
                spans.append((start, a + 1, candidate[start:a + 1]))
            start = None
    return spans


def _piece_edits(converter, text: str, syls: list[str], w0: int, w1: int, p0: int, p1: int,
                 top: int) -> list[Edit]:
    """Edits inside the piece [p0, p1) of ``text``, converted and scored in the window [w0, w1): greedily,
    each step the edit with the most gain per changed character over the text as the steps before left it."""
    window, wsyls = text[w0:w1], syls[w0:w1]
    found = [c.text for c in converter.convert_syllables(wsyls, top=top)]
    spans = sorted({span for cand in found if len(cand) == len(window)
                    for span in _candidate_spans(window, cand, p0 - w0, p1 - w0)})
    steps: list[Edit] = []
    current, strength = window, float("inf")
    while spans:
        variants = [current[:s] + r + current[e:] for s, e, r in spans]
        base, *scores = full_scores(converter, wsyls, [current, *variants])
        per_char = [(score - base) / sum(a != b for a, b in zip(current[s:e], r))
                    for (s, e, r), score in zip(spans, scores)]
        k = max(range(len(spans)), key=per_char.__getitem__)
        if per_char[k] <= 0:
            break
        (s, e, r), strength = spans[k], min(strength, per_char[k])
        steps.append(Edit(w0 + s, w0 + e, current[s:e], r, scores[k] - base, strength))
        current = variants[k]
        spans = [sp for sp in spans if sp[1] <= s or sp[0] >= e]
    return steps


def span_edits(converter, text: str, before: str = "", after: str = "", top: int = TOP) -> list[Edit]:
    """Every edit of ``text`` (simplified Chinese) the greedy steps take while they gain anything, with its
    ``strength``: ``propose`` keeps those stronger than the margin; the benchmark sweeps margins over them."""
    lead = _clause_edge(before, end=True)
    tail = _clause_edge(after, end=False)
    full = lead + text + tail
    syls = readings(full)
    a, b = len(lead), len(lead) + len(text)
    edits: list[Edit] = []
    if converter.settings.reuse is not None:  # the whole-line search; typing's decode cache is neither used nor filled
        converter = converter.with_settings(reuse=None)
    for r0, r1 in _runs(full, syls, converter.char_index):
        lo, hi = max(r0, a), min(r1, b)
        if lo >= hi:
            continue
        for s, e in chunk_spans(hi - lo, PIECE):
            p0, p1 = lo + s, lo + e
            w0, w1 = max(r0, p0 - CONTEXT), min(r1, p1 + CONTEXT)
            edits += _piece_edits(converter, full, syls, w0, w1, p0, p1, top)
    return [Edit(ed.start - a, ed.end - a, ed.original, ed.replacement, ed.gain, ed.strength) for ed in edits]


def _clause_edge(context: str, end: bool) -> str:
    """The part of ``context`` in the same clause as the selection: its trailing (``end``) or leading run of
    汉字, at most ``CONTEXT`` characters (punctuation, Latin or a line break end a clause)."""
    if end:
        m = re.search(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]*$", context)
        return m.group()[-CONTEXT:] if m else ""
    m = _HAN.match(context)
    return m.group()[:CONTEXT] if m else ""


def apply(text: str, edits) -> str:
    out = list(text)
    for ed in edits:
        out[ed.start:ed.end] = ed.replacement
    return "".join(out)


def propose(converter, text: str, before: str = "", after: str = "", margin: float = MARGIN,
            top: int = TOP) -> Correction | None:
    """The corrected ``text`` and its edits, or None when no edit gains more than ``margin`` nats.
    ``before``/``after``: the document's text just outside the selection (context for its first and last
    clause). Traditional characters are read as simplified and the edits written back as traditional."""
    t2s, s2t = _opencc()
    simple = t2s(text) if t2s else text
    if len(simple) != len(text):
        simple = text  # a phrase conversion changed the length: read it as it is
    traditional = simple != text
    if traditional:
        before, after = t2s(before), t2s(after)
    edits = [ed for ed in span_edits(converter, simple, before, after, top) if ed.strength > margin]
    if not edits:
        return None
    edits.sort(key=lambda ed: ed.start)
    if traditional:
        edits = [_to_traditional(ed, text, s2t) for ed in edits]
    return Correction(text, apply(text, edits), tuple(edits))


def _to_traditional(ed: Edit, text: str, s2t) -> Edit:
    """An edit found on the simplified reading, written in traditional characters where the text had them
    (unchanged characters stay exactly as the user wrote them)."""
    written = s2t(ed.replacement)
    if len(written) != len(ed.replacement):
        written = ed.replacement
    orig = text[ed.start:ed.end]
    keep = "".join(o if simple == r else w for o, simple, r, w in
                   zip(orig, ed.original, ed.replacement, written))
    return Edit(ed.start, ed.end, orig, keep, ed.gain, ed.strength)


@lru_cache(maxsize=1)
def _opencc():
    """(t2s, s2t) converters, or (None, None) when opencc is not installed."""
    try:
        import opencc
    except ImportError:
        return None, None
    return opencc.OpenCC("t2s").convert, opencc.OpenCC("s2t").convert
