"""One input field's composition for the system input method, with no IBus in it.

``ImeBackend`` is what the IBus engine calls: ``press(name)`` with the key names of ``ime_app.ibus.keys``,
then it reads ``view()`` (preedit, caret, the candidate page, the highlight) and ``take_commits()`` (text for
the program). Every field gets its own ``Session``; all of them share one ``Shared``: the pipeline (model,
lexicon, the user's learning) and the user store, opened once per engine process.

What it honours:
- pause recording (the store's setting, read at each commit, so the app's toolbar switch applies at once)
  and password or PIN fields: there nothing is composed and nothing is recorded; keys go straight through;
- the app's changes to the store: ``Shared.sync()`` (called on every focus change) notices another process's
  writes with SQLite's ``data_version``, re-reads the learned phrases and the settings, and hot-swaps the
  active model when Personalize, Revert or Use factory changed it;
- the app's settings (``ime_app.settings``, the same store keys): fuzzy pairs and typo tolerance, the page
  size, prediction after a commit (``engine.ime.prediction``, the lookup table shows the next words) and
  traditional output (``engine.ime.script``: shown and committed in 繁體, recorded in simplified). The candidate
  window's font and orientation are IBus's panel's own settings.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine import store
from engine.personal import loading
from engine.ime.pipeline import Pipeline, settle_memory
from engine.ime.prediction import PipelinePredictor
from engine.ime.session import Session
from ime_app.settings import Settings, load_settings


@dataclass(frozen=True)
class View:
    composing: bool
    preedit: str  # with syllable separators (zhong'guo)
    caret: int  # in ``preedit``
    candidates: tuple[str, ...]  # the current page
    highlight: int  # on the page, -1 with no candidates
    page: int
    page_count: int
    chinese: bool
    predicting: bool = False  # the candidates are the next words after a commit (联想), nothing composes
    page_size: int = 9


class Shared:
    """The engine process's pipeline and store, shared by every input field."""

    def __init__(self, home: str | Path | None = None,
                 build: Callable[..., Pipeline] = loading.build_user_pipeline) -> None:
        """``build(db, home)`` makes the pipeline (default: the user's active model with their learning)."""
        self.home = store.home_dir(home)
        self.db = store.open_store(self.home)
        self.pipeline = build(self.db, self.home)
        settle_memory()  # as the app does: the loaded model out of the garbage collector's way
        self.warning = ""  # the last problem worth telling the user (shown in the auxiliary text)
        self._data_version = self._read_data_version()
        self._active = self._active_id()
        self.settings = Settings()
        self.settings_version = 0  # moves when ``settings`` changed: each field's backend applies them again
        self.script = None  # engine.ime.script.ScriptFilter while the output is traditional
        self.predict = PipelinePredictor(self.pipeline)  # (context, limit) → the next words
        self._read_settings()

    def _read_settings(self) -> None:
        settings = load_settings(self.db)
        if settings == self.settings and self.settings_version:
            return
        self.settings = settings
        self.settings_version += 1
        self.pipeline.fuzzy = settings.fuzzy_options()
        if settings.traditional and self.script is None:
            from engine.ime.script import ScriptFilter

            self.script = ScriptFilter()
        elif not settings.traditional:
            self.script = None

    def _read_data_version(self) -> int:
        return int(self.db.conn.execute("PRAGMA data_version").fetchone()[0])

    def _active_id(self):
        row = store.active_model(self.db)
        return None if row is None else (row["id"], row["path"])

    def sync(self) -> str | None:
        """Pick up what another process (the app) changed in the store; returns the new model status when
        the active model was swapped, else None. SQLite's ``data_version`` moves only for other connections'
        commits, so our own commits never count as a change."""
        try:
            version = self._read_data_version()
            if version == self._data_version:
                return None
            self._data_version = version
            if self.pipeline.ranker is not None:
                self.pipeline.ranker.reload()
            self._read_settings()
            active = self._active_id()
            if active == self._active:
                return None
            self._active = active
            return loading.reload_active(self.pipeline, self.db, self.home)
        except (sqlite3.Error, OSError, ValueError) as e:
            self.warning = f"拼音 IME could not read your data ({e}); typing goes on"
            return None

    def record(self, text: str, picks, keys: str) -> None:
        try:
            self.pipeline.commit(text, picks, keys)
        except (sqlite3.Error, OSError) as e:  # the text still reaches the program
            self.warning = f"拼音 IME could not save to your history ({e}); free some disk space"

    def close(self) -> None:
        self.db.close()


class ImeBackend:
    """One input field (IBus makes one engine per input context)."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.password = False  # a password or PIN field: keys pass straight through, nothing is kept
        self.session = Session(shared.pipeline, on_commit=self._on_commit,  # swap_model keeps the object
                               predictor=lambda context: shared.predict(context, self.session.page_size))
        self._settings_version = 0
        self._apply_settings()

    def _apply_settings(self) -> None:
        """The shared settings into this field's session, when they changed since the last time."""
        if self._settings_version == self.shared.settings_version:
            return
        self._settings_version = self.shared.settings_version
        settings, s = self.shared.settings, self.session
        s.fuzzy = self.shared.pipeline.fuzzy
        s.page_size = settings.page_size
        s.highlight = min(s.highlight, max(0, len(s.all_candidates) - 1))
        s.prediction = settings.prediction
        if not s.prediction:
            s.dismiss_predictions()

    def _on_commit(self, text, picks, keys) -> None:
        if self.password:
            return
        self.shared.record(text, picks, keys)

    @property
    def chinese(self) -> bool:
        return self.session.chinese

    def set_chinese(self, chinese: bool) -> None:
        self.session.set_chinese(chinese)

    def set_password(self, password: bool) -> None:
        if password and self.session.composing:
            self.session.cancel()
        self.password = password

    def press(self, key: str) -> bool:
        """True when the key was used (the program must not see it)."""
        if self.password:
            return False
        self._apply_settings()
        return self.session.press(key)

    def pick(self, index_on_page: int) -> None:
        if 0 <= index_on_page < len(self.session.candidates):
            self.session.pick(index_on_page)

    def cancel(self) -> None:
        """Drop the composition (focus lost, the program reset the field)."""
        self.session.cancel()

    def refresh(self) -> None:
        """Focus came back: the settings the app may have changed meanwhile (after ``Shared.sync``)."""
        self._apply_settings()

    def take_commits(self) -> list[str]:
        script = self.shared.script
        commits = self.session.take_committed()
        return [script(t) for t in commits] if script is not None else commits

    def view(self) -> View:
        s = self.session
        text, caret = s.display
        candidates = tuple(c.text for c in s.candidates)
        script = self.shared.script
        if script is not None:  # only what is shown is converted
            candidates = script.all(candidates)
            text, caret = script.preedit(text, caret, s.converted)
        return View(composing=s.composing, preedit=text if s.composing else "", caret=caret,
                    candidates=candidates, highlight=s.page_highlight,
                    page=s.page, page_count=s.page_count, chinese=s.chinese,
                    predicting=s.predicting, page_size=s.page_size)

