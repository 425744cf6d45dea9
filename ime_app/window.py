"""The main window: a text editor whose keys go through ``engine.session``, with a candidate bar below it.

The engine pipeline (model sentences + lexicon words + the user's instant learning from the store) is built
by ``engine.pipeline.build_pipeline``; the floating candidate window and inline preedit come with the app issue.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QPlainTextEdit, QVBoxLayout, QWidget

from engine.pipeline import MODEL_DIR, build_pipeline
from engine.session import Session

_NAMED_KEYS = {
    Qt.Key_Backspace: "backspace", Qt.Key_Escape: "escape", Qt.Key_Return: "enter", Qt.Key_Enter: "enter",
    Qt.Key_Space: "space", Qt.Key_PageUp: "pageup", Qt.Key_PageDown: "pagedown", Qt.Key_Delete: "delete",
    Qt.Key_Left: "left", Qt.Key_Right: "right", Qt.Key_Up: "up", Qt.Key_Down: "down", Qt.Key_Home: "home",
    Qt.Key_End: "end",
}


class ImeEditor(QPlainTextEdit):
    """A plain-text editor with a pinyin composition session in front of its key handling."""

    def __init__(self, session: Session, on_change) -> None:
        super().__init__()
        self.session = session
        self._on_change = on_change

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt naming)
        key = _NAMED_KEYS.get(event.key()) or event.text()
        plain = not (event.modifiers() & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier))
        if plain and key and self.session.press(key):
            while self.session.committed:
                self.insertPlainText(self.session.committed.pop(0))
            self._on_change()
            return
        super().keyPressEvent(event)


class MainWindow(QMainWindow):
    def __init__(self, db=None) -> None:
        """``db``: the user store (commits and learning go there); None: nothing is kept."""
        super().__init__()
        self.setWindowTitle("拼音 IME")
        self.pipeline = build_pipeline(MODEL_DIR, db=db)
        self.model_status = self.pipeline.status
        self.session = Session(self.pipeline, on_commit=self.pipeline.commit)
        self.editor = ImeEditor(self.session, self._update)
        self.editor.setFont(QFont("WenQuanYi Micro Hei", 14))
        self.preedit = QLabel()
        self.bar = QLabel()
        self.bar.setFont(QFont("WenQuanYi Micro Hei", 13))
        self.bar.setTextFormat(Qt.PlainText)
        hint = QLabel("Type pinyin; space or 1–9 picks, ↑/↓ move, -/= pages, Enter types the letters, Esc cancels. "
                      f"Everything stays on this computer. [{self.model_status}]")
        hint.setWordWrap(True)
        layout = QVBoxLayout()
        for w in (self.editor, self.preedit, self.bar, hint):
            layout.addWidget(w)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self.resize(720, 420)
        self._update()

    def candidate_texts(self) -> list[str]:
        return [c.text for c in self.session.candidates]

    def _update(self) -> None:
        s = self.session
        text, caret = s.display
        self.preedit.setText(text[:caret] + "‸" + text[caret:] if s.composing else "")
        if s.candidates:
            current = s.highlight - s.page * s.page_size
            items = "   ".join(f"[{i}.{c.text}]" if i - 1 == current else f"{i}.{c.text}"
                               for i, c in enumerate(s.candidates, 1))
            self.bar.setText(f"{items}   [{s.page + 1}/{s.page_count}]")
        else:
            self.bar.setText("")
