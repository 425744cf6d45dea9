"""Type reference text through a ``Session`` as a user would, so that the pipeline's learning hears real commits.

``Typist(pipe).type(text, syllables)`` presses the keys of one ``汉字<TAB>pinyin`` line (the syllables joined with
``'``, the separator the session reads) into a ``engine.ime.session.Session`` over ``pipe``, then picks the
candidates that spell the line: the whole-line candidate when it is the reference, else the longest candidate
that starts what is still to be converted (on a tie the better-scored), paging down to it and pressing its
digit, until nothing is left; the session then commits the line through ``pipe.commit`` (the store records it,
``engine.ime.learning.UserRanker`` and the user n-gram LM learn from it). A line no candidate fits is cancelled
with escape: nothing is committed, and ``type`` answers False.

The keys arrive as one burst, as the app's worker (``ime_app/composer.py``) handles keys typed faster than it
converts: the composition is translated once, after the last key (translating every key would show the user
nothing more here and cost a conversion per key). The session composes the whole line at once (no commit-ahead
at ``MAX_KEYS``: the apostrophes make the keys a third longer than a user's).

``pinyin-ime convert --learn FILE`` and ``benchmarks/personalize.py`` type with this; ``whole_line(pipe)`` makes a
pipeline read whole lines the way ``pinyin-ime convert`` does.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.candidate import Candidate
from engine.ime.session import Session


def keys_for(syllables: Iterable[str]) -> str:
    """The keys of a segmented line: its syllables joined with the separator ``'``."""
    return "'".join(syllables)


def whole_line(pipe) -> None:
    """Convert whole lines the way ``pinyin-ime convert`` does: no window over long input."""
    translator = pipe.translator
    if hasattr(translator, "window"):
        translator.window = 10**6


def choose(candidates: list[Candidate], keys: str, want: str) -> int | None:
    """The index of the candidate a user picks for ``keys`` when ``want`` is the text still to come: the one
    that converts all the keys into exactly ``want``, else the longest that converts only the first keys into
    the start of ``want`` (the better-scored on a tie, then the first); None when none fits."""
    for i, c in enumerate(candidates):
        if c.consumed == len(keys) and c.text == want:
            return i
    best = None
    for i, c in enumerate(candidates):
        if c.consumed < len(keys) and c.text and want.startswith(c.text):
            if best is None or (len(c.text), c.score) > (len(candidates[best].text), candidates[best].score):
                best = i
    return best


class Typist:
    """A user at the keyboard over ``pipe`` (a ``engine.ime.pipeline.Pipeline``): one session, lines typed in
    order, so what was picked last is the context of the next pick (as ``UserRanker`` pairs words)."""

    def __init__(self, pipe):
        self.pipe = pipe
        self._burst = False  # keys are still arriving: the session need not translate yet
        self.session = Session(self._translate, on_commit=pipe.commit, fuzzy=pipe.fuzzy, max_keys=10**9)

    def _translate(self, keys: str) -> list[Candidate]:
        return [] if self._burst else self.pipe(keys)

    def type(self, text: str, syllables: list[str]) -> bool:
        """Type one line and commit it; False (nothing committed) when no candidate spells it."""
        s = self.session
        keys = keys_for(syllables)
        if not keys or not text:
            return False
        self._burst = True
        try:
            for key in keys[:-1]:
                s.press(key)
        finally:
            self._burst = False
        s.press(keys[-1])  # the composition is translated once, now
        while s.composing:
            index = choose(s.all_candidates, s.keys, text[len(s.converted):])
            if index is None:
                s.press("escape")
                return False
            while s.page < index // s.page_size:
                s.press("pagedown")
            s.press(str(index - s.page * s.page_size + 1))
        return "".join(s.take_committed()) == text

    def type_all(self, lines: Iterable[tuple[str, list[str]]]) -> int:
        """Type every line in order; how many were committed."""
        return sum(self.type(text, syllables) for text, syllables in lines)


def type_line(pipe, text: str, syllables: list[str]) -> bool:
    """Type one line through a fresh session over ``pipe`` (see ``Typist.type``)."""
    return Typist(pipe).type(text, syllables)
