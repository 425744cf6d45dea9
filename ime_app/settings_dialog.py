"""The Settings dialog: edits the user's settings (``ime_app.settings``) and applies every change at once through
``on_change`` (the window hands the engine's part to the composer's worker thread, the candidate window's part to
the popup) and saves it, so nothing needs a restart.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from engine.pinyin import FUZZY_NAMES
from ime_app.settings import DEFAULTS, FONT_SIZES, PAGE_SIZES, Settings, save_settings


class SettingsDialog(QDialog):
    """Edits ``Settings``; each change is saved (``db``; None: not kept) and passed to ``on_change`` at once."""

    def __init__(self, db, settings: Settings, on_change: Callable[[Settings], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.db = db
        self.on_change = on_change
        self.settings = settings.cleaned()
        self._loading = False

        typing = QGroupBox("Reading the keys")
        self.typos = QCheckBox("Typo tolerance: read keys one slip from a syllable as it (zhogn → zhong)")
        self.typos.setToolTip("A swapped, doubled, dropped or neighbouring key; the exact readings still come "
                              "first")
        grid = QGridLayout()
        grid.addWidget(QLabel("Fuzzy pinyin (either spelling finds both):"), 0, 0, 1, 3)
        self.fuzzy: dict[str, QCheckBox] = {}
        for i, name in enumerate(FUZZY_NAMES):
            box = QCheckBox(name.replace("=", " = "))
            box.setObjectName(name)
            self.fuzzy[name] = box
            grid.addWidget(box, 1 + i // 3, i % 3)
        typing_box = QVBoxLayout(typing)
        typing_box.addWidget(self.typos)
        typing_box.addLayout(grid)

        window = QGroupBox("Candidate window")
        form = QFormLayout(window)
        self.page_size = QSpinBox()
        self.page_size.setRange(*PAGE_SIZES)
        form.addRow("Candidates per page:", self.page_size)
        self.font_size = QSpinBox()
        self.font_size.setRange(*FONT_SIZES)
        self.font_size.setSuffix(" pt")
        form.addRow("Font size:", self.font_size)
        self.horizontal, self.vertical = QRadioButton("Horizontal"), QRadioButton("Vertical (one per row)")
        row = QHBoxLayout()
        row.addWidget(self.horizontal)
        row.addWidget(self.vertical)
        row.addStretch(1)
        form.addRow("Layout:", row)

        output = QGroupBox("Output")
        output_box = QVBoxLayout(output)
        self.prediction = QCheckBox("Predict the next words after a commit (1–9 pick one, Esc dismisses)")
        self.prediction.setToolTip("From the language models and what you have typed before; any other key "
                                   "types as usual")
        self.traditional = QCheckBox("Traditional characters (繁體)")
        self.traditional.setToolTip("Candidates and committed text in traditional characters; your history "
                                    "and learning stay in simplified")
        output_box.addWidget(self.prediction)
        output_box.addWidget(self.traditional)

        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.defaults_button = QPushButton("Restore defaults")
        buttons.addButton(self.defaults_button, QDialogButtonBox.ResetRole)
        self.defaults_button.clicked.connect(lambda: self.set_settings(DEFAULTS))
        buttons.rejected.connect(self.close)
        note = QLabel("Changes apply at once and are kept for next time.")
        note.setStyleSheet("color: #606060;")

        layout = QVBoxLayout(self)
        layout.addWidget(typing)
        layout.addWidget(window)
        layout.addWidget(output)
        layout.addWidget(note)
        layout.addWidget(buttons)

        self._show(self.settings)
        self.typos.toggled.connect(self._changed)
        for box in self.fuzzy.values():
            box.toggled.connect(self._changed)
        self.page_size.valueChanged.connect(self._changed)
        self.font_size.valueChanged.connect(self._changed)
        self.vertical.toggled.connect(self._changed)
        self.prediction.toggled.connect(self._changed)
        self.traditional.toggled.connect(self._changed)

    def _show(self, settings: Settings) -> None:
        self._loading = True
        try:
            self.typos.setChecked(settings.typos)
            for name, box in self.fuzzy.items():
                box.setChecked(name in settings.fuzzy)
            self.page_size.setValue(settings.page_size)
            self.font_size.setValue(settings.font_size)
            (self.vertical if settings.vertical else self.horizontal).setChecked(True)
            self.prediction.setChecked(settings.prediction)
            self.traditional.setChecked(settings.traditional)
        finally:
            self._loading = False

    def read(self) -> Settings:
        """What the widgets say."""
        return Settings(typos=self.typos.isChecked(),
                        fuzzy=tuple(name for name, box in self.fuzzy.items() if box.isChecked()),
                        page_size=self.page_size.value(), font_size=self.font_size.value(),
                        vertical=self.vertical.isChecked(), prediction=self.prediction.isChecked(),
                        traditional=self.traditional.isChecked()).cleaned()

    def set_settings(self, settings: Settings) -> None:
        """Show ``settings`` and apply them (Restore defaults; tests)."""
        self._show(settings.cleaned())
        self._changed()

    def _changed(self, *_) -> None:
        if self._loading:
            return
        settings = self.read()
        if settings == self.settings:
            return
        self.settings = settings
        save_settings(self.db, settings)
        if self.on_change is not None:
            self.on_change(settings)
