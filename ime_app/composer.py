"""The composition worker: the engine's session runs on its own thread so typing never waits for the model.

The UI thread only posts keys (``post_key``) and draws what comes back. The worker thread owns the
``engine.ime.session.Session``, the pipeline (model + lexicon + the user's learning) and its own connection to the
user store; it drains every key that has arrived, translates once for a run of editing keys (letters,
backspace…) instead of once per key, and sends one ``Snapshot`` back through a Qt signal (queued to the UI
thread). A snapshot carries the effects for the editor in key order: text to commit and keys the session did
not use (the editor handles those itself, e.g. Backspace when nothing is composing), so the editor sees
exactly what a synchronous IME would have done, just a few milliseconds later.

Loading the model also happens on the worker, so the window is up before the model is.

Prediction (``engine.ime.prediction``) never delays typing: a commit is delivered first, in the snapshot of the
batch that made it, marked ``prediction_pending``; when no key is waiting the worker then computes the
predictions (~1–2 ms) and sends them in a second snapshot (``predicting``). The UI counts the worker as busy
until then, so keys typed meanwhile still go to the session, which drops the predictions they were too quick
for. Traditional output (``engine.ime.script``) is applied here, on the way out: the snapshot's candidates and
preedit and the committed text are converted, while the session, the store and the learning see simplified.

The user's settings that the engine reads (fuzzy pinyin and typo tolerance, the page size, prediction, the
output script) reach it through
``configure``: a request on the same queue as the keys, so they change between two keys, never during one, and
the pipeline built at start (or the lexicon-only one after a failure) gets them before the first key.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from engine.ime.session import LETTERS, Session

# keys that edit the composition and translate it again; a run of them needs one translation, after the last
_RETRANSLATE = LETTERS | {"'", "backspace", "delete"}
_CARET = {"left", "right", "home", "end"}  # move the caret only: neither translate nor need candidates


@dataclass(frozen=True)
class Snapshot:
    """What the UI draws after a batch of keys (all of it plain data, safe to hand across threads)."""

    effects: tuple = ()  # ("commit", text) or ("key", key_id) in order
    composing: bool = False
    preedit: str = ""  # with syllable separators
    caret: int = 0  # in ``preedit``
    candidates: tuple[str, ...] = ()  # the current page
    highlight: int = -1  # index on the page
    page: int = 0
    page_count: int = 1
    chinese: bool = True
    predicting: bool = False  # the candidates are predictions after a commit (no preedit)
    prediction_pending: bool = False  # predictions will follow in the next snapshot
    translate_ms: float = 0.0  # the last conversion's time
    last_key_id: int = 0  # the last key handled (the UI forgets the keys it kept for replaying)
    processed: int = 0  # how many posted keys/requests are done (the UI knows when the worker is idle)
    status: str = ""  # the pipeline's status line (model, device)
    error: str = ""


@dataclass
class _Request:
    kind: str  # "key", "pick", "chinese", "record", "reset", "dismiss", "reload", "configure", "call"
    arg: object = None
    key_id: int = 0
    extra: dict = field(default_factory=dict)


class Composer(QObject):
    """Owns the session on a worker thread. ``snapshot`` is emitted (to the UI thread) after each batch."""

    snapshot = Signal(object)  # on the UI thread, after ``last``/``done`` were updated: one event, no gap
    ready = Signal(str)  # the pipeline is loaded; its status line
    _from_worker = Signal(object)  # queued across threads to ``_deliver``

    def __init__(self, build_pipeline, record: bool = True) -> None:
        """``build_pipeline()``: called on the worker thread, returns the pipeline (translate + commit)."""
        super().__init__()
        self._build = build_pipeline
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self.posted = 0  # UI side: requests posted
        self.done = 0  # UI side: requests reported done by the last snapshot delivered
        self.record = record
        self.pipeline = None
        self.session: Session | None = None
        self.config: dict = {}  # UI side: the settings last passed to ``configure``
        self._thread = threading.Thread(target=self._run, name="composer", daemon=True)
        self._from_worker.connect(self._deliver)
        self._last = Snapshot()

    def start(self) -> None:
        self._thread.start()

    # -- UI thread -----------------------------------------------------------------------------------------
    def post(self, kind: str, arg=None, key_id: int = 0, **extra) -> None:
        self.posted += 1
        self._queue.put(_Request(kind, arg, key_id, extra))

    def post_key(self, key: str, key_id: int) -> None:
        self.post("key", key, key_id)

    def configure(self, fuzzy=None, page_size: int | None = None, prediction: bool | None = None,
                  traditional: bool | None = None) -> None:
        """Change how the engine reads keys (``fuzzy``: an ``engine.pinyin.FuzzyOptions``, set as the
        pipeline's), how many candidates a page holds, whether commits are followed by predictions and whether
        output is in traditional characters, on the worker between keys; None: unchanged. A composition in
        progress is translated again with them."""
        change = {k: v for k, v in (("fuzzy", fuzzy), ("page_size", page_size), ("prediction", prediction),
                                    ("traditional", traditional)) if v is not None}
        if change:
            self.config.update(change)
            self.post("configure", dict(change))

    @property
    def busy(self) -> bool:
        """Keys posted that the UI has not seen the result of yet (or predictions still to come)."""
        return self.done < self.posted or self._last.prediction_pending

    @property
    def last(self) -> Snapshot:
        return self._last

    def _deliver(self, snap: Snapshot) -> None:
        """UI thread: bookkeeping and drawing happen in the same event, so "not busy" means "drawn"."""
        self.done = max(self.done, snap.processed)
        self._last = snap
        self.snapshot.emit(snap)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    # -- worker thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        error = ""
        try:
            self.pipeline = self._build()
        except Exception as e:  # the UI must hear about it, and typing must not die with it
            from engine.ime.pipeline import build_pipeline

            error = f"the model pipeline could not be built ({e}); using the lexicon only"
            self.pipeline = build_pipeline(model_dir=None)
        from engine.ime.pipeline import settle_memory

        settle_memory()  # the loaded model out of the garbage collector's way while typing
        self.session = Session(self._translate, on_commit=self._on_commit, fuzzy=self.pipeline.fuzzy,
                               predictor=self._predict, defer_prediction=True)
        from engine.ime.prediction import PipelinePredictor

        self._predictor = PipelinePredictor(self.pipeline)
        self._script = None  # engine.ime.script.ScriptFilter when the output is traditional
        self._skip = False
        self._translate_ms = 0.0
        self._last_key_id = 0
        self._warning = ""
        self.ready.emit(self.pipeline.status)
        processed = 0
        self._emit([], processed, error)
        while True:
            batch = [self._queue.get()]
            while True:  # everything that arrived while we were busy is handled as one batch
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            effects: list = []
            error, self._warning = "", ""
            for i, req in enumerate(batch):
                if req is None:  # stop: close this thread's store connection cleanly
                    ranker = getattr(self.pipeline, "ranker", None)
                    if ranker is not None:
                        ranker.db.close()
                    return
                try:
                    self._handle(req, batch[i + 1:], effects)
                except Exception as e:  # a bug must not kill typing: report it, keep the session usable
                    error = (f"an internal error ({type(e).__name__}: {e}) reset the composition; the text in the "
                             "editor is safe")
                    self.session.cancel()
                processed += 1
            self._emit(effects, processed, error or self._warning)
            if self.session.prediction_pending and self._queue.empty():  # the commit is out: now predict
                try:
                    self.session.predict_now()
                except Exception as e:  # noqa: BLE001 — a failed prediction must not stop typing
                    self.session.dismiss_predictions()
                    self._warning = f"no predictions ({type(e).__name__}: {e})"
                self._emit([], processed, self._warning)

    def _handle(self, req: _Request, later: list, effects: list) -> None:
        s = self.session
        if req.kind == "key":
            self._last_key_id = max(self._last_key_id, req.key_id)
            # no translation when a later key in this batch translates anyway (caret moves in between are fine)
            self._skip = s.composing and req.arg in _RETRANSLATE and _retranslates(later)
            try:
                used = s.press(req.arg)
            finally:
                self._skip = False
            self._drain_commits(effects)
            if not used:
                effects.append(("key", req.key_id))
        elif req.kind == "pick":
            if 0 <= req.arg < len(s.candidates):
                s.pick(req.arg)
                self._drain_commits(effects)
        elif req.kind == "chinese":
            s.set_chinese(bool(req.arg))
            self._drain_commits(effects)
        elif req.kind == "record":
            self.record = bool(req.arg)
        elif req.kind == "reset":
            s.cancel()
        elif req.kind == "dismiss":  # the editor handled a key itself (Ctrl+…, a click): predictions go
            s.dismiss_predictions(forget=True)
        elif req.kind == "reload":
            ranker = getattr(self.pipeline, "ranker", None)
            if ranker is not None:
                ranker.reload()
        elif req.kind == "configure":
            self._configure(req.arg)
        elif req.kind == "call":  # run ``arg(pipeline)`` on this thread (e.g. a model swap)
            req.arg(self.pipeline)

    def _configure(self, change: dict) -> None:
        s = self.session
        if "fuzzy" in change:
            self.pipeline.fuzzy = s.fuzzy = change["fuzzy"]  # the preedit splits the keys as they are read
        if "page_size" in change:
            s.page_size = max(1, int(change["page_size"]))
            s.highlight = min(s.highlight, max(0, len(s.all_candidates) - 1))
        if "prediction" in change:
            s.prediction = bool(change["prediction"])
            if not s.prediction:
                s.dismiss_predictions()
        if "traditional" in change:
            from engine.ime.script import ScriptFilter

            self._script = ScriptFilter() if change["traditional"] else None
        if s.keys and not s.latin and "fuzzy" in change:  # the candidates shown were read the old way
            s.refresh()

    def _drain_commits(self, effects: list) -> None:
        out = self._script or (lambda text: text)
        effects.extend(("commit", out(text)) for text in self.session.take_committed())

    def _predict(self, context: str) -> list[str]:
        """The session's predictor (``engine.ime.prediction.PipelinePredictor``), a page of them."""
        return self._predictor(context, limit=self.session.page_size)

    def _translate(self, keys: str):
        if self._skip:
            return []
        t0 = time.perf_counter()
        out = self.pipeline(keys)
        self._translate_ms = (time.perf_counter() - t0) * 1000
        return out

    def _on_commit(self, text, picks, keys) -> None:
        """Record and learn; the text reaches the editor whatever happens to the store (full disk, locked)."""
        try:
            if self.record:
                self.pipeline.commit(text, picks, keys)
            elif getattr(self.pipeline, "ranker", None) is not None:
                self.pipeline.ranker.forget_context()
        except (sqlite3.Error, OSError) as e:
            self._warning = (f"what you typed is in the editor, but it could not be saved to your history ({e}); "
                             "free some disk space — typing goes on")

    def _emit(self, effects: list, processed: int, error: str) -> None:
        s = self.session
        text, caret = s.display
        candidates = tuple(c.text for c in s.candidates)
        if self._script is not None:  # only what is shown is converted
            candidates = self._script.all(candidates)
            text, caret = self._script.preedit(text, caret, s.converted)
        self._from_worker.emit(Snapshot(
            effects=tuple(effects), composing=s.composing, preedit=text if s.composing else "", caret=caret,
            candidates=candidates, highlight=s.page_highlight, predicting=s.predicting,
            prediction_pending=s.prediction_pending,
            page=s.page, page_count=s.page_count, chinese=s.chinese, translate_ms=self._translate_ms,
            last_key_id=self._last_key_id, processed=processed, status=self.pipeline.status, error=error))


def _retranslates(later: list) -> bool:
    for req in later:
        if req is None or req.kind != "key":
            return False
        if req.arg in _RETRANSLATE:
            return True
        if req.arg not in _CARET:
            return False
    return False
