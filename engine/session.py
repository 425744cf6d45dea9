"""Composition session: the GUI-free state machine between keystrokes and committed text.

Keys in (``press("n")``, ``press("space")`` …), state out (``preedit``, ``candidates``, ``committed``). The
app and the tests drive the same object. Candidates come from a pluggable ``translate`` function (today the
lexicon translator; the model-ranked decoder plugs in the same way).

Keys: a–z and ``'`` compose; ``backspace`` removes the last key; ``escape`` cancels; ``space`` picks the first
candidate; ``1``–``9`` pick from the current page; ``enter`` commits the raw letters; ``pageup``/``pagedown``
(also ``-``/``=``) page. Picking a candidate that converts only the first keys commits it and keeps composing
the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from engine.translator import Candidate

COMPOSE_KEYS = set("abcdefghijklmnopqrstuvwxyz'")
PAGE_SIZE = 9


@dataclass
class Session:
    translate: Callable[[str], list[Candidate]]
    page_size: int = PAGE_SIZE
    keys: str = ""  # what is still being composed
    picks: list[tuple[str, str]] = field(default_factory=list)  # (text, keys) picked by prefix, not committed
    page: int = 0
    committed: list[str] = field(default_factory=list)  # every commit, in order (the app inserts them)
    _all: list[Candidate] = field(default_factory=list)

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def composing(self) -> bool:
        return bool(self.keys or self.picks)

    @property
    def converted(self) -> str:
        return "".join(text for text, _ in self.picks)

    @property
    def preedit(self) -> str:
        """What the editor shows inline: text already picked, then the keys still composing."""
        return self.converted + self.keys

    @property
    def candidates(self) -> list[Candidate]:
        """The current page."""
        start = self.page * self.page_size
        return self._all[start:start + self.page_size]

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self._all) // self.page_size))

    # -- keys ----------------------------------------------------------------------------------------------
    def press(self, key: str) -> bool:
        """Handle one key; returns False when the session does not use it (the editor should)."""
        if len(key) == 1 and key in COMPOSE_KEYS:
            if key == "'" and not self.keys:
                return False
            self.keys += key
            self._refresh()
            return True
        if not self.composing:
            return False
        if key == "backspace":
            if self.keys:
                self.keys = self.keys[:-1]
            else:  # undo the last prefix pick: its keys come back to compose
                self.keys = self.picks.pop()[1]
            self._refresh()
        elif key == "escape":
            self._reset()
        elif key == "enter":
            self._commit("".join(k for _, k in self.picks) + self.keys)
        elif key == "space":
            if self._all:
                self.pick(0)
        elif len(key) == 1 and key in "123456789":
            index = int(key) - 1
            if index < len(self.candidates):
                self.pick(index)
        elif key in ("pagedown", "="):
            self.page = min(self.page + 1, self.page_count - 1)
        elif key in ("pageup", "-"):
            self.page = max(self.page - 1, 0)
        return True

    def pick(self, index_on_page: int) -> None:
        cand = self.candidates[index_on_page]
        self.picks.append((cand.text, self.keys[: cand.consumed]))
        self.keys = self.keys[cand.consumed:].lstrip("'")
        if self.keys:
            self._refresh()
        else:
            self._commit(self.converted)

    # -- internals -----------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        self.page = 0
        self._all = self.translate(self.keys) if self.keys else []

    def _commit(self, text: str) -> None:
        if text:
            self.committed.append(text)
        self._reset()

    def _reset(self) -> None:
        self.keys, self.page, self._all = "", 0, []
        self.picks.clear()
