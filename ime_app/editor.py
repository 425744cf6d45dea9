"""The editor with the IME in front of its keys: Qt key events → the composer (worker thread) → inline preedit,
commits and the floating candidate window.

Routing, decided on the UI thread without waiting for the model: while something is composing (or keys are
still on their way to the worker) every key goes to the session; otherwise letters and punctuation do (they
start a composition or become Chinese punctuation) and everything else is the editor's own (arrows, Enter,
Backspace, digits, Shift+letter for capitals, Ctrl shortcuts). Keys the session turns out not to use come back
in the snapshot and are replayed into the editor in order, so nothing is lost or reordered.

The composition is shown the way a system IME shows it: a ``QInputMethodEvent`` preedit (underlined, with its
caret) at the text cursor, and the commit goes in through the same event, so undo treats it as typed text.
A tap on Shift (press and release, nothing in between) switches Chinese/English.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QGuiApplication, QInputMethodEvent, QKeyEvent, QTextCharFormat
from PySide6.QtWidgets import QPlainTextEdit

from engine.ime.session import LETTERS, PUNCTUATION, QUOTES
from ime_app.candidate_window import CandidateWindow
from ime_app.composer import Composer, Snapshot
from ime_app.correction_popup import CorrectionPopup
from PySide6.QtCore import QObject  # (checking committed text, at the end)
from PySide6.QtGui import QAction, QKeySequence, QTextCursor

NAMED_KEYS = {
    Qt.Key_Backspace: "backspace", Qt.Key_Escape: "escape", Qt.Key_Return: "enter", Qt.Key_Enter: "enter",
    Qt.Key_Space: "space", Qt.Key_PageUp: "pageup", Qt.Key_PageDown: "pagedown", Qt.Key_Delete: "delete",
    Qt.Key_Left: "left", Qt.Key_Right: "right", Qt.Key_Up: "up", Qt.Key_Down: "down", Qt.Key_Home: "home",
    Qt.Key_End: "end",
}
_STARTERS = LETTERS | set(PUNCTUATION) | set(QUOTES)  # keys that start something while nothing is composing
_COMMAND = Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier


def session_key(event: QKeyEvent) -> str | None:
    """The session's name for a key event (``"a"``, ``"space"``, ``"，"``-producing ``","`` …), or None."""
    named = NAMED_KEYS.get(event.key())
    if named:
        return named
    text = event.text()
    return text if len(text) == 1 and text.isprintable() else None


class ImeEditor(QPlainTextEdit):
    """``composer`` runs the session; ``popup`` is the candidate window this editor drives."""

    mode_toggled = Signal(bool)  # Shift tap: True = Chinese
    snapshot_applied = Signal(object)

    def __init__(self, composer: Composer, parent=None) -> None:
        super().__init__(parent)
        self.composer = composer
        self.chinese = True
        self.password = False  # a password field: the IME composes but nothing is recorded or learned
        self.popup = CandidateWindow()
        self.popup.picked.connect(lambda i: self._post("pick", i))
        self.popup.paged.connect(lambda d: self._post("key", "pagedown" if d > 0 else "pageup"))
        self.setAttribute(Qt.WA_InputMethodEnabled, False)  # we are the input method: keep the system's out
        self._pending: dict[int, QKeyEvent] = {}
        self._next_id = 1
        self._shift_tap = False
        self._preedit = ("", 0)
        self._recording = True
        composer.snapshot.connect(self.apply)
        self._setup_correction()

    # -- keys (UI thread: never waits for the model) ------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt naming)
        if event.key() == Qt.Key_Shift:
            self._shift_tap = not (event.modifiers() & _COMMAND)
            super().keyPressEvent(event)
            return
        self._shift_tap = False
        self._sync_recording()
        composing = self.composer.busy or self.composer.last.composing
        predicting = self.composer.last.predicting  # predictions shown: every key goes to the session too
        key = session_key(event)
        if event.modifiers() & _COMMAND or key is None:
            if composing:
                event.accept()  # Ctrl+… or F-keys while composing would edit text under the preedit
            else:
                if predicting:
                    self._post("dismiss", None)
                super().keyPressEvent(event)
            return
        if composing or predicting or (self.chinese and key in _STARTERS):
            key_id = self._next_id
            self._next_id += 1
            self._pending[key_id] = QKeyEvent(event.type(), event.key(), event.modifiers(), event.text(),
                                              event.isAutoRepeat(), event.count())
            self.composer.post_key(key, key_id)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key_Shift and self._shift_tap and not event.isAutoRepeat():
            self._shift_tap = False
            self.set_chinese(not self.chinese)
        super().keyReleaseEvent(event)

    def set_chinese(self, chinese: bool) -> None:
        if chinese != self.chinese:
            self.chinese = chinese
            self._post("chinese", chinese)
            self.mode_toggled.emit(chinese)

    def set_password(self, password: bool) -> None:
        """Honour a password field: compose as usual, but record and learn nothing while it has the keys.
        Qt's own marks for such fields (``Qt.ImhSensitiveData``/``ImhHiddenText`` in ``inputMethodHints``,
        as a password QLineEdit sets) count too."""
        self.password = password
        self._sync_recording()

    @property
    def private(self) -> bool:
        return self.password or bool(self.inputMethodHints() & (Qt.ImhSensitiveData | Qt.ImhHiddenText))

    def _sync_recording(self) -> None:
        record = not self.private
        if record != self._recording:
            self._recording = record
            self._post("record", record)

    def _post(self, kind: str, arg) -> None:
        self.composer.post(kind, arg)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self.composer.last.composing:
            self._post("key", "enter")  # clicking elsewhere keeps what was typed, as letters
        elif self.composer.last.predicting:
            self._post("dismiss", None)
        super().mousePressEvent(event)

    def focusInEvent(self, event) -> None:  # noqa: N802
        super().focusInEvent(event)
        if self.composer.last.candidates and not self.popup.isVisible():
            self.popup.place(self.global_cursor_rect())
            self.popup.show()

    def focusOutEvent(self, event) -> None:  # noqa: N802
        # the keys went elsewhere: the candidates go too (the composition stays; coming back shows them again).
        # Qt's offscreen platform deactivates the app whenever any window is shown, the popup included:
        # there that is not the user leaving.
        if QGuiApplication.platformName() != "offscreen":
            self.popup.hide()
        super().focusOutEvent(event)

    # -- snapshots (UI thread, queued from the worker) ----------------------------------------------------
    def apply(self, snap: Snapshot) -> None:
        for kind, value in snap.effects:
            if kind == "commit":
                self._set_preedit("", 0, commit=value)
            else:
                event = self._pending.pop(value, None)
                if event is not None:
                    self._set_preedit("", 0)
                    super().keyPressEvent(event)
        for key_id in [k for k in self._pending if k <= snap.last_key_id]:
            del self._pending[key_id]  # keys the session used
        self._set_preedit(snap.preedit, snap.caret)
        if snap.candidates and self.isVisible():
            self.popup.set_candidates(snap.preedit, snap.candidates, snap.highlight, snap.page, snap.page_count,
                                      predicting=snap.predicting)
            self.popup.place(self.global_cursor_rect())
            self.popup.show()
        else:
            self.popup.hide()
        self.snapshot_applied.emit(snap)

    def _set_preedit(self, text: str, caret: int, commit: str | None = None) -> None:
        if (text, caret) == self._preedit and commit is None:
            return
        underline = QTextCharFormat()
        underline.setFontUnderline(True)
        attrs = [QInputMethodEvent.Attribute(QInputMethodEvent.AttributeType.Cursor, caret, 1)]
        if text:
            attrs.append(QInputMethodEvent.Attribute(QInputMethodEvent.AttributeType.TextFormat, 0, len(text),
                                                     underline))
        event = QInputMethodEvent(text, attrs)
        if commit is not None:
            event.setCommitString(commit)
        self.inputMethodEvent(event)
        self._preedit = (text, caret)

    @property
    def preedit_text(self) -> str:
        return self._preedit[0]

    def global_cursor_rect(self) -> QRect:
        rect = self.cursorRect()
        return QRect(self.viewport().mapToGlobal(rect.topLeft()), rect.size())

    # -- checking committed text (F7): homophone slips, proposed by the model on the worker thread ----------
    def _setup_correction(self) -> None:
        """The F7 action (also in the context menu), the proposal popup and the relay its results come by."""
        self.correction_popup = CorrectionPopup(self)
        self.correction_popup.accepted.connect(self._accept_correction)
        self.correction_popup.dismissed.connect(self._drop_correction)
        self.correct_action = QAction("Check selection (F7)", self)
        self.correct_action.setShortcut(QKeySequence(Qt.Key_F7))
        self.correct_action.setShortcutContext(Qt.WidgetShortcut)
        self.correct_action.setShortcutVisibleInContextMenu(False)  # the text says F7 already
        self.correct_action.triggered.connect(self.correct_selection)
        self.addAction(self.correct_action)
        self._relay = _CorrectionRelay()  # lives on the UI thread: the worker's emit is queued here
        self._relay.done.connect(self._show_correction)
        self._checking = 0  # the id of the latest check; older results are dropped
        self._proposal = None  # (start, end, revision, Correction) while a proposal is shown

    def contextMenuEvent(self, event) -> None:  # noqa: N802
        menu = self.createStandardContextMenu(event.pos())
        menu.addSeparator()
        menu.addAction(self.correct_action)
        menu.exec(event.globalPos())
        menu.deleteLater()

    def check_range(self) -> tuple[int, int]:
        """What F7 checks: the selection, or without one the sentence before the cursor (back to the last
        。！？；!?; or the start of the line): the text just typed."""
        cursor = self.textCursor()
        if cursor.hasSelection():
            return cursor.selectionStart(), cursor.selectionEnd()
        block = cursor.block()
        head = block.text()[: cursor.positionInBlock()]
        body = head.rstrip(SENTENCE_ENDS + " ")  # right after 。 it is the sentence that 。 ends
        cut = max(body.rfind(p) for p in SENTENCE_ENDS)
        return block.position() + cut + 1, cursor.position()

    def correct_selection(self) -> None:
        """Ask the model (on the composer's worker thread, which owns it) for a correction of the selection or
        the sentence before the cursor; the answer shows in the popup (``_show_correction``)."""
        if self.composer.last.composing or self.preedit_text:
            return  # the text under a composition is not committed yet
        start, end = self.check_range()
        full = self.toPlainText()
        text = full[start:end]
        self._checking += 1
        check, relay = self._checking, self._relay
        self._proposal = None
        self.correction_popup.close_proposal()
        if not text.strip():
            self._correction_feedback("nothing to check: select some text", start)
            return
        before, after = full[max(0, start - 16):start], full[end:end + 16]
        revision = self.document().revision()

        def propose(pipeline) -> None:  # worker thread
            converter = getattr(getattr(pipeline, "translator", None), "converter", None)
            if converter is None:
                relay.done.emit((check, start, end, revision, None, "no model loaded: nothing to check with"))
                return
            from engine.ime.correction import propose as correct

            try:
                relay.done.emit((check, start, end, revision, correct(converter, text, before, after), ""))
            except Exception as e:  # noqa: BLE001 — a failed check must not break typing
                relay.done.emit((check, start, end, revision, None, f"the check failed ({type(e).__name__}: {e})"))

        self.composer.post("call", propose)

    def _show_correction(self, result) -> None:
        check, start, end, revision, correction, error = result
        if check != self._checking:
            return  # a later check was asked for
        if revision != self.document().revision():
            self._correction_feedback("the text changed while it was checked: press F7 again", start)
        elif correction is None:
            self._correction_feedback(error or "no change proposed", start)
        else:
            self._proposal = (start, end, revision, correction)
            self.correction_popup.show_proposal(correction.original, correction.text, correction.changed,
                                                self._global_rect_at(start))

    def _accept_correction(self) -> None:
        """Replace the changed characters, all in one undoable edit; the document's modified flag follows
        the undo stack (undoing it back to a saved state clears it again)."""
        proposal, self._proposal = self._proposal, None
        if proposal is None:
            return
        start, end, revision, correction = proposal
        if revision != self.document().revision() or self.toPlainText()[start:end] != correction.original:
            self._correction_feedback("the text changed: the proposal was dropped", start)
            return
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        for ed in sorted(correction.edits, key=lambda ed: -ed.start):
            cursor.setPosition(start + ed.start)
            cursor.setPosition(start + ed.end, QTextCursor.KeepAnchor)
            cursor.insertText(ed.replacement)
        cursor.endEditBlock()
        cursor.setPosition(end)
        self.setTextCursor(cursor)

    def _drop_correction(self) -> None:
        self._proposal = None

    def _correction_feedback(self, message: str, position: int) -> None:
        self.correction_popup.show_message(message, self._global_rect_at(position))

    def _global_rect_at(self, position: int) -> QRect:
        cursor = QTextCursor(self.document())
        cursor.setPosition(min(position, self.document().characterCount() - 1))
        rect = self.cursorRect(cursor)
        return QRect(self.viewport().mapToGlobal(rect.topLeft()), rect.size())


SENTENCE_ENDS = "。！？；!?;"


class _CorrectionRelay(QObject):
    """Carries a check's result from the worker thread to the editor: made on the UI thread, so a signal
    emitted on the worker is queued to it."""

    done = Signal(object)
