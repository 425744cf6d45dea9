"""The main window: a text editor whose keys go through ``engine.session``, with a candidate bar below it.

First version: whole-input sentences ranked by the shipped model lead the candidates, then the lexicon's
prefix words and characters (lexicon only when no model can be loaded), shown in a bar under the editor; the
floating candidate window, inline preedit and per-keystroke caching come with the app and session issues.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QPlainTextEdit, QVBoxLayout, QWidget

from engine.lexicon import ASSETS_DIR, default_lexicon
from engine.session import Session
from engine.translator import ModelTranslator, translate

MODEL_DIR = ASSETS_DIR / "model"

_NAMED_KEYS = {
    Qt.Key_Backspace: "backspace", Qt.Key_Escape: "escape", Qt.Key_Return: "enter", Qt.Key_Enter: "enter",
    Qt.Key_Space: "space", Qt.Key_PageUp: "pageup", Qt.Key_PageDown: "pagedown",
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
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("拼音 IME")
        lexicon = default_lexicon()
        self.model_status = "lexicon only"
        translator = lambda keys: translate(keys, lexicon)  # noqa: E731
        try:
            import torch

            from engine.decoder import Converter

            torch.set_num_threads(1)
            converter = Converter.load_with_lexicon(MODEL_DIR)
            translator = ModelTranslator(converter, lexicon)
            self.model_status = f"model: factory ({converter.model.num_params() / 1e6:.1f} M parameters)"
        except (FileNotFoundError, ValueError, OSError) as e:
            self.model_status = f"lexicon only — the model could not be loaded: {e}"
        self.session = Session(translator)
        self.editor = ImeEditor(self.session, self._update)
        self.editor.setFont(QFont("WenQuanYi Micro Hei", 14))
        self.preedit = QLabel()
        self.bar = QLabel()
        self.bar.setFont(QFont("WenQuanYi Micro Hei", 13))
        self.bar.setTextFormat(Qt.PlainText)
        hint = QLabel("Type pinyin; space or 1–9 picks, -/= pages, Enter types the letters, Esc cancels. "
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
        self.preedit.setText(s.preedit)
        if s.candidates:
            items = "   ".join(f"{i}.{c.text}" for i, c in enumerate(s.candidates, 1))
            self.bar.setText(f"{items}   [{s.page + 1}/{s.page_count}]")
        else:
            self.bar.setText("")
