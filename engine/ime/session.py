"""Composition session: the GUI-free state machine between keystrokes and committed text.

Keys in (``press("n")``, ``press("space")`` …), state out (``preedit``/``display``, ``candidates`` with the
``highlight``, ``committed``). The app and the tests drive the same object. Candidates come from a pluggable
``translate`` function (``engine.ime.pipeline.Pipeline`` in the app: model + lexicon + the user's learning);
``on_commit(text, picks, keys)`` hears about every commit (the pipeline stores and learns from it).

Keys while composing:
  a–z, ``'``     insert at the caret (``'`` separates syllables: xi'an)
  backspace/delete  remove the key before/after the caret; backspace with nothing left to delete undoes the
                 last partial pick (its keys come back)
  left/right, home/end  move the caret in the keys
  up/down        move the highlight (across pages)
  space          pick the highlighted candidate; ``1``–``9`` pick from the current page
  pageup/pagedown (also ``-``/``=``)  page
  enter          commit the raw letters; escape cancels
  punctuation    pick the highlighted candidate, then type the Chinese punctuation mark
Not composing: punctuation becomes Chinese punctuation (``,`` → ，, ``"`` → “ or ” alternately …); every other
key is not the session's (``press`` returns False and the editor handles it). In English mode
(``chinese = False``) no key is the session's.

Prediction (as fcitx5's): after a Chinese commit, when ``prediction`` is on and a ``predictor`` is given, the
next words the user is likely to type (``engine.ime.prediction.Predictor``: the text committed before them in, up
to a page of continuations out) are shown as the candidates while nothing is composing (``predicting``).
``1``–``9`` pick one (it is committed, and predictions follow again after it), up/down move the highlight,
pageup/pagedown page, escape dismisses them; any other key dismisses them and is then handled exactly as
without them (a letter starts a new composition, space or enter go to the editor). A picked prediction reaches
``on_commit`` with no picks and no keys, like raw text: it is recorded (and feeds the user's n-gram cache) but
teaches no phrase, since no pinyin was typed for it. The context is the text this session committed since the
editor last handled a key itself (the editor may have moved the caret since). ``defer_prediction``: the
commit only marks predictions due (``prediction_pending``) and ``predict_now`` computes them, so the app's
worker can deliver the commit first and predict after it.

Latin runs (as librime's ``url``/``email`` recognizers): ``www.``, ``http:``/``https:``, ``ftp.``/``ftp:``,
``mailto:``, ``file:`` at the start of the keys, or ``@`` after letters, turn the composition into Latin
text: every printable key is kept as typed (``www.example.com``, ``me@mail.cn``), the only candidate is the
text itself, and space or enter commits it unconverted (raw: nothing is learned from it).

A ``'`` typed after letters is a syllable separator (``xi'an``); but when a ‘ is open and the ``'`` is still
the last key when the composition is committed (``'y'`` then space), it was the closing quote: ’ follows.

Picking a candidate that converts only the first keys commits nothing yet: it is shown converted and the
rest keeps composing; the whole commit happens when nothing is left. Long input stays responsive: the model's
sentences cover a window of the first syllables (``ModelTranslator.window``), and past ``max_keys`` keys the
first candidate is picked ahead automatically, so the keys being composed never grow without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from engine.pinyin import NO_FUZZY, FuzzyOptions, parse
from engine.candidate import Candidate

LETTERS = set("abcdefghijklmnopqrstuvwxyz")
PAGE_SIZE = 9
MAX_KEYS = 160  # keys composed at once; past this the first candidate is picked ahead (about 60 syllables)
PUNCTUATION = {",": "，", ".": "。", "?": "？", "!": "！", ":": "：", ";": "；", "\\": "、", "<": "《", ">": "》",
               "(": "（", ")": "）", "[": "【", "]": "】", "^": "……", "~": "～", "$": "￥", "_": "——"}
QUOTES = {'"': ("“", "”"), "'": ("‘", "’")}
LATIN_STARTS = {".": ("www", "ftp"), ":": ("http", "https", "ftp", "mailto", "file")}  # keys + the mark


@dataclass
class Session:
    translate: Callable[[str], list[Candidate]]
    on_commit: Callable[[str, list[Candidate], str], None] | None = None
    page_size: int = PAGE_SIZE
    max_keys: int = MAX_KEYS
    chinese: bool = True  # False: English mode, keys go straight to the editor
    keys: str = ""  # what is still being composed
    fuzzy: FuzzyOptions | None = None  # how ``display`` splits the keys; None: as ``translate`` (a Pipeline) reads them
    caret: int = 0  # position in ``keys``
    picks: list[tuple[Candidate, str]] = field(default_factory=list)  # (candidate, its keys), not committed yet
    highlight: int = 0  # index into all candidates
    committed: list[str] = field(default_factory=list)  # every commit, in order (the app inserts them)
    _all: list[Candidate] = field(default_factory=list)
    _quote_open: dict = field(default_factory=lambda: {'"': False, "'": False})
    _after_digit: bool = False  # the last key was a digit the editor typed: 3.5, 1,000 and 12:30 stay Latin
    latin: bool = False  # composing a Latin run (a URL, an e-mail address): keys are kept as typed
    predictor: Callable[[str], list[str]] | None = None  # text before the caret → the likeliest next words
    prediction: bool = True  # show predictions after a Chinese commit (needs ``predictor``)
    defer_prediction: bool = False  # a commit marks predictions due; ``predict_now`` computes them
    prediction_pending: bool = False
    _context: str = ""  # the text committed lately (what predictions continue)

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def composing(self) -> bool:
        return bool(self.keys or self.picks)

    @property
    def predicting(self) -> bool:
        """Predictions are the candidates shown (nothing is composing)."""
        return bool(self._all) and not self.composing

    @property
    def converted(self) -> str:
        return "".join(c.text for c, _ in self.picks)

    @property
    def preedit(self) -> str:
        """What the editor shows inline: text already picked, then the keys still composing."""
        return self.converted + self.keys

    @property
    def display(self) -> tuple[str, int]:
        """The preedit with syllable separators where the parser's best reading splits the keys
        (``zhong'guo'ren``, ``x'g``), and the caret's position in that string."""
        fuzzy = self.fuzzy if self.fuzzy is not None else getattr(self.translate, "fuzzy", NO_FUZZY)  # zhogn'guo
        best = parse(self.keys, fuzzy).best() if self.keys and not self.latin else None
        cuts = {t.end for t in best.tokens[:-1]} if best is not None else set()
        text, caret = self.converted, None
        for i, ch in enumerate(self.keys):
            if i == self.caret:
                caret = len(text)
            text += ch
            if i + 1 in cuts and ch != "'" and self.keys[i + 1:i + 2] != "'":
                text += "'"
        return text, len(text) if caret is None else caret

    @property
    def page(self) -> int:
        return self.highlight // self.page_size

    @property
    def candidates(self) -> list[Candidate]:
        """The current page."""
        start = self.page * self.page_size
        return self._all[start:start + self.page_size]

    @property
    def page_highlight(self) -> int:
        """The highlight's index on the current page; -1 when there are no candidates."""
        return self.highlight - self.page * self.page_size if self._all else -1

    @property
    def all_candidates(self) -> list[Candidate]:
        return self._all

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self._all) // self.page_size))

    # -- keys ----------------------------------------------------------------------------------------------
    def press(self, key: str) -> bool:
        """Handle one key; returns False when the session does not use it (the editor should)."""
        self.prediction_pending = False  # predictions not shown yet are never shown: this key came first
        used = self._press(key)
        if not used:
            self._context = ""  # the editor handles this key: the text before the caret is its business
        return used

    def _press(self, key: str) -> bool:
        if not self.chinese:
            return False
        after_digit, self._after_digit = self._after_digit, False
        if self.predicting and self._press_predicting(key):
            return True
        if self.latin:
            return self._press_latin(key)
        if self.keys and not self.picks and len(key) == 1 and (
                key in LATIN_STARTS and self.keys in LATIN_STARTS[key] or key == "@" and self.keys.isalpha()):
            self.latin = True
            return self._press_latin(key)
        if len(key) == 1 and (key in LETTERS or (key == "'" and self.keys)):
            self.keys = self.keys[: self.caret] + key + self.keys[self.caret:]
            self.caret += 1
            self.refresh()
            while len(self.keys) > self.max_keys and self._all and 0 < self._all[0].consumed < len(self.keys):
                self.pick(0)  # commit-ahead: a runaway input keeps its first part converted, never grows unbounded
            return True
        if not self.composing:
            if after_digit and key in ".,:":
                return False  # a decimal point, thousands separator or time, as fcitx5 keeps them
            self._after_digit = len(key) == 1 and key.isdigit()
            return self._punctuation(key)
        if key == "backspace":
            if self.caret:
                self.keys = self.keys[: self.caret - 1] + self.keys[self.caret:]
                self.caret -= 1
            elif self.picks and not self.keys[: self.caret]:  # undo the last pick: its keys come back
                back = self.picks.pop()[1]
                self.keys, self.caret = back + self.keys, len(back)
            self.refresh()
        elif key == "delete":
            self.keys = self.keys[: self.caret] + self.keys[self.caret + 1:]
            self.refresh()
        elif key in ("left", "right", "home", "end"):
            self.caret = {"left": max(0, self.caret - 1), "right": min(len(self.keys), self.caret + 1),
                          "home": 0, "end": len(self.keys)}[key]
        elif key in ("up", "down"):
            if self._all:
                self.highlight = max(0, min(len(self._all) - 1, self.highlight + (1 if key == "down" else -1)))
        elif key == "escape":
            self._reset()
        elif key == "enter":
            self._commit("".join(k for _, k in self.picks) + self.keys, raw=True)
        elif key == "space":
            if self._all:
                self.pick(self.highlight - self.page * self.page_size)
            elif not self.keys:
                self._commit(self.converted)
        elif len(key) == 1 and key in "123456789":
            index = int(key) - 1
            if index < len(self.candidates):
                self.pick(index)
        elif key in ("pagedown", "="):
            if self.page < self.page_count - 1:
                self.highlight = (self.page + 1) * self.page_size
        elif key in ("pageup", "-"):
            self.highlight = max(0, (self.page - 1) * self.page_size)
        elif key in PUNCTUATION or key in QUOTES:
            if self._all:  # finish the composition with the highlighted candidate, then the mark
                while self.composing and self._all:
                    self.pick(self.highlight - self.page * self.page_size)
                if self.composing:
                    self._commit(self.converted + self.keys, raw=True)
            else:
                self._commit(self.converted + self.keys, raw=True)
            self._punctuation(key)
        return True

    def _press_predicting(self, key: str) -> bool:
        """A key while predictions are shown: True when it was for them; else they are dismissed and the key
        is handled as if they had never been there."""
        if len(key) == 1 and key in "123456789" and int(key) - 1 < len(self.candidates):
            self.pick(int(key) - 1)
        elif key in ("up", "down"):
            self.highlight = max(0, min(len(self._all) - 1, self.highlight + (1 if key == "down" else -1)))
        elif key == "pagedown":
            if self.page < self.page_count - 1:
                self.highlight = (self.page + 1) * self.page_size
        elif key == "pageup":
            self.highlight = max(0, (self.page - 1) * self.page_size)
        elif key == "escape":
            self.dismiss_predictions()
        else:
            self.dismiss_predictions()
            return False
        return True

    def dismiss_predictions(self, forget: bool = False) -> None:
        """Hide the predictions; the text committed stays the context of later ones unless ``forget`` (the
        editor moved on by itself: a click, a shortcut)."""
        self.prediction_pending = False
        if forget:
            self._context = ""
        if not self.composing:
            self._all, self.highlight = [], 0

    def predict_now(self) -> None:
        """Show the predictions after the text committed (when on, and it predicts anything)."""
        self.prediction_pending = False
        if self.composing or not (self.prediction and self.predictor is not None and self.chinese):
            return
        texts = self.predictor(self._context)
        self._all = [Candidate(t, 0, (), 0.0, "prediction") for t in texts]
        self.highlight = 0

    def pick(self, index_on_page: int) -> None:
        if self.predicting:  # committed as it is: no keys were typed for it, so no phrase is learned
            self._commit(self.candidates[index_on_page].text, raw=True, predict=True)
            return
        if self.latin:  # its one candidate is the text as typed
            self._commit(self.keys, raw=True)
            return
        cand = self.candidates[index_on_page]
        rest = self.keys[cand.consumed:]
        self.picks.append((cand, self.keys[: cand.consumed]))
        self.keys = rest.lstrip("'")
        self.caret = len(self.keys)
        if self.keys:
            self.refresh()
        else:
            self._commit(self.converted)
            if rest and self._quote_open["'"]:  # 'y' + space: the last ' closed the quote, it did not separate
                self._punctuation("'")

    def set_chinese(self, chinese: bool) -> None:
        """Switch mode; switching to English while composing commits the raw letters (as major IMEs do)."""
        if not chinese and self.composing:
            self._commit("".join(k for _, k in self.picks) + self.keys, raw=True)
        if not chinese:
            self.dismiss_predictions()
        self.chinese = chinese

    def take_committed(self) -> list[str]:
        """The commits since the last call, in order (for the editor or program to insert)."""
        out, self.committed[:] = list(self.committed), []
        return out

    def cancel(self) -> None:
        """Drop the composition (what escape does) or the predictions: nothing is committed."""
        self._reset()
        self.prediction_pending = False

    # -- internals -----------------------------------------------------------------------------------------
    def _press_latin(self, key: str) -> bool:
        """A key while composing a Latin run: printable keys are inserted as typed; space and enter commit it
        as it is, escape drops it; editing keys edit it."""
        if len(key) == 1 and key.isprintable() and key != " ":
            self.keys = self.keys[: self.caret] + key + self.keys[self.caret:]
            self.caret += 1
        elif key in ("space", "enter"):
            self._commit(self.keys, raw=True)
            return True
        elif key == "escape":
            self._reset()
            return True
        elif key == "backspace" and self.caret:
            self.keys = self.keys[: self.caret - 1] + self.keys[self.caret:]
            self.caret -= 1
        elif key == "delete":
            self.keys = self.keys[: self.caret] + self.keys[self.caret + 1:]
        elif key in ("left", "right", "home", "end"):
            self.caret = {"left": max(0, self.caret - 1), "right": min(len(self.keys), self.caret + 1),
                          "home": 0, "end": len(self.keys)}[key]
        if not self.keys:
            self._reset()
            return True
        self.highlight = 0
        self._all = [Candidate(self.keys, len(self.keys), (), 0.0, "latin")]
        return True

    def _punctuation(self, key: str) -> bool:
        if key in PUNCTUATION or key in QUOTES:
            self.dismiss_predictions()  # after a mark nothing is predicted (engine.ime.prediction says why)
        if key in PUNCTUATION:
            self._add_committed(PUNCTUATION[key])
            return True
        if key in QUOTES:
            self._add_committed(QUOTES[key][self._quote_open[key]])
            self._quote_open[key] = not self._quote_open[key]
            return True
        return False

    def _add_committed(self, text: str) -> None:
        self.committed.append(text)
        self._context = (self._context + text)[-8:]

    def refresh(self) -> None:
        """Translate the keys again (the reading settings changed); the highlight goes back to the first."""
        self.highlight = 0
        self.caret = min(self.caret, len(self.keys))
        self._all = self.translate(self.keys) if self.keys.strip("'") else []

    def _commit(self, text: str, raw: bool = False, predict: bool | None = None) -> None:
        """Commit ``text``; ``raw``: letters or text as typed (no picks reported). Predictions follow a
        conversion (``predict``: None) or a picked prediction, not raw letters."""
        if text:
            self._add_committed(text)
            if self.on_commit is not None:
                keys = "".join(k for _, k in self.picks) + (self.keys if raw else "")
                self.on_commit(text, [] if raw else [c for c, _ in self.picks], keys)
        self._reset()
        if text and (not raw if predict is None else predict) and self.prediction and self.predictor is not None:
            if self.defer_prediction:
                self.prediction_pending = True
            else:
                self.predict_now()

    def _reset(self) -> None:
        self.keys, self.caret, self.highlight, self._all = "", 0, 0, []
        self.latin = False
        self.picks.clear()

