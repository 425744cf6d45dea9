"""The correction popup: a small frameless window under the checked text showing original → corrected, the
changed characters highlighted; one key decides (Enter or Tab accepts, Escape dismisses).

Like the candidate window it never takes focus (a focused popup would take the keys from the editor and
Qt's offscreen platform would deactivate the editor): while it shows a proposal it filters the editor's own
key events instead (and its viewport's clicks). Enter/Tab emit ``accepted``, Escape ``dismissed``; any other key dismisses it and goes on
to the editor as usual (typing on means "no thanks"), and so does a click in the editor. ``show_message``
shows a line of feedback ("no change proposed") that goes away by itself.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from ime_app.candidate_window import FONT, GAP

MESSAGE_MS = 2500  # how long a feedback message stays
SHOWN = 36  # characters of a long text shown around its changes (the rest elided)
_OLD = "color: #b3261e; text-decoration: line-through;"
_NEW = "color: #1b7f3b; font-weight: bold;"
_ACCEPT = (Qt.Key_Return, Qt.Key_Enter, Qt.Key_Tab)


def excerpt(text: str, changed: list[int], style: str, limit: int = SHOWN) -> str:
    """``text`` as rich text with the characters at ``changed`` styled; a text longer than ``limit`` is cut
    to the part around its changes, with … where it was cut."""
    lo, hi = 0, len(text)
    if len(text) > limit and changed:
        lo = max(0, min(changed) - limit // 3)
        hi = min(len(text), max(lo + limit, max(changed) + limit // 3 + 1))
    marked = set(changed)
    body = "".join(f'<span style="{style}">{escape(ch)}</span>' if i in marked else escape(ch)
                   for i, ch in enumerate(text[lo:hi], lo))
    return ("…" if lo else "") + body.replace("\n", "⏎") + ("…" if hi < len(text) else "")


class CorrectionPopup(QFrame):
    accepted = Signal()
    dismissed = Signal()

    def __init__(self, editor: QWidget) -> None:
        super().__init__(None, Qt.ToolTip | Qt.FramelessWindowHint | Qt.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WA_ShowWithoutActivating)
        self.setObjectName("correction")
        self.setStyleSheet("#correction { background: #fdfdfd; border: 1px solid #9a9a9a; }"
                           "QLabel { padding: 2px 6px; color: #202020; }"
                           "QLabel#hint { color: #707070; }")
        self.editor = editor
        self.text_label = QLabel(self)
        self.text_label.setTextFormat(Qt.RichText)
        font = self.text_label.font()
        font.setFamily(FONT)
        font.setPointSize(14)
        self.text_label.setFont(font)
        self.hint = QLabel("Enter/Tab: accept   Esc: dismiss", self)
        self.hint.setObjectName("hint")
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 3, 4, 3)
        box.setSpacing(0)
        box.addWidget(self.text_label)
        box.addWidget(self.hint)
        self.proposing = False  # a proposal is shown (keys are filtered); False: hidden or a message
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        # keys reach the editor itself, clicks its viewport; both kept here, so no event (one sent while the
        # editor is being destroyed included) makes the filter call into the editor
        self._watched = (editor, editor.viewport())
        for widget in self._watched:
            widget.installEventFilter(self)
        editor.destroyed.connect(self._editor_gone)

    def show_proposal(self, original: str, corrected: str, changed: list[int], near: QRect) -> None:
        """Show original → corrected under ``near`` (a global rectangle: the checked text's start)."""
        self._timer.stop()
        self.text_label.setText(f"{excerpt(original, changed, _OLD)} → {excerpt(corrected, changed, _NEW)}")
        self.hint.show()
        self.proposing = True
        self._place(near)

    def show_message(self, message: str, near: QRect, ms: int = MESSAGE_MS) -> None:
        self.proposing = False
        self.text_label.setText(escape(message))
        self.hint.hide()
        self._place(near)
        self._timer.start(ms)

    @property
    def message(self) -> str:
        """What the popup says now, as plain text ('' when hidden)."""
        if not self.isVisible():
            return ""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.text_label.text())
        return doc.toPlainText()

    def _place(self, near: QRect) -> None:
        self.adjustSize()
        pos = QPoint(near.left(), near.bottom() + GAP)
        screen = QGuiApplication.screenAt(near.center()) or QGuiApplication.primaryScreen()
        if screen is not None:
            area = screen.availableGeometry()
            if pos.y() + self.height() > area.bottom():
                pos.setY(near.top() - GAP - self.height())
            pos.setX(max(area.left(), min(pos.x(), area.right() - self.width())))
        self.move(pos)
        self.show()
        self.raise_()

    def close_proposal(self) -> None:
        self.proposing = False
        self.hide()

    def _editor_gone(self) -> None:
        """The editor (and its window) closed: this top-level popup goes with it."""
        self._watched, self.proposing = (), False
        self._timer.stop()
        self.hide()
        self.deleteLater()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if not self.proposing or not any(watched is w for w in self._watched):
            return False
        kind = event.type()
        if kind == QEvent.ShortcutOverride and event.key() in (*_ACCEPT, Qt.Key_Escape):
            event.accept()  # these keys are ours while a proposal shows, not a shortcut's
            return True
        if kind == QEvent.KeyPress:
            key = event.key()
            if key in _ACCEPT and not event.modifiers() & ~Qt.KeypadModifier:
                self.close_proposal()
                self.accepted.emit()
                return True
            if key == Qt.Key_Escape:
                self.close_proposal()
                self.dismissed.emit()
                return True
            if key not in (Qt.Key_Shift, Qt.Key_Control, Qt.Key_Alt, Qt.Key_Meta):
                self.close_proposal()
                self.dismissed.emit()
            return False
        if kind == QEvent.MouseButtonPress:  # a click in the text: the user went on
            self.close_proposal()
            self.dismissed.emit()
        return False
