"""The user's input settings and the Settings dialog that edits them.

What there is: typo tolerance (one-slip readings, on by default), fuzzy pinyin pairs (z=zh, in=ing …, all off by
default), how many candidates a page holds (3–9), the candidate window's font size and its orientation
(horizontal rows, or one candidate per row), prediction of the next words after a commit (on by default,
``engine.prediction``) and traditional-character output (off by default, ``engine.script``: shown and committed
in 繁體, learned and kept in simplified).

They live in the user store (``engine.store`` settings, JSON values, one key each) and are read at start
(``load_settings``); the dialog applies every change at once through ``on_change`` (the window hands the
engine's part to the composer's worker thread, the candidate window's part to the popup) and saves it, so
nothing needs a restart. A value in the store that is not valid (an old or hand-edited file) reads as the
default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from engine import store
from engine.pinyin import FUZZY_NAMES, FuzzyOptions

PAGE_SIZES = (3, 9)  # smallest, largest (the candidate window numbers 1–9)
FONT_SIZES = (9, 32)
KEYS = {"typos": "input.typos", "fuzzy": "input.fuzzy_pairs", "page_size": "input.page_size",
        "font_size": "candidates.font_size", "vertical": "candidates.vertical", "prediction": "input.prediction",
        "traditional": "output.traditional"}
_FLAGS = ("typos", "vertical", "prediction", "traditional")  # stored as JSON booleans


@dataclass(frozen=True)
class Settings:
    typos: bool = True
    fuzzy: tuple[str, ...] = ()  # pairs on, in FUZZY_NAMES order
    page_size: int = 9
    font_size: int = 14
    vertical: bool = False
    prediction: bool = True  # the next words after a commit, as candidates
    traditional: bool = False  # candidates and commits in traditional characters

    def fuzzy_options(self) -> FuzzyOptions:
        """What the pipeline reads keys with."""
        return FuzzyOptions.of(*self.fuzzy, typos=self.typos)

    def cleaned(self) -> "Settings":
        """Valid values only: unknown pairs dropped, sizes clamped to their ranges."""
        pairs = tuple(name for name in FUZZY_NAMES if name in set(self.fuzzy))
        return replace(self, typos=bool(self.typos), fuzzy=pairs, vertical=bool(self.vertical),
                       prediction=bool(self.prediction), traditional=bool(self.traditional),
                       page_size=_clamp(self.page_size, PAGE_SIZES, DEFAULTS.page_size),
                       font_size=_clamp(self.font_size, FONT_SIZES, DEFAULTS.font_size))


DEFAULTS = Settings()


def _clamp(value, bounds: tuple[int, int], default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return max(bounds[0], min(bounds[1], int(value)))


def load_settings(db) -> Settings:
    """The settings kept in the store (``db`` None: the defaults)."""
    if db is None:
        return DEFAULTS
    values = {}
    for name, key in KEYS.items():
        try:
            value = store.get_setting(db, key, None)
        except (ValueError, TypeError):  # an undecodable value: the default
            value = None
        if value is None:
            continue
        if name in _FLAGS and not isinstance(value, bool):
            continue
        if name == "fuzzy":
            if not isinstance(value, list):
                continue
            value = tuple(v for v in value if isinstance(v, str))
        values[name] = value
    return replace(DEFAULTS, **values).cleaned()


def save_settings(db, settings: Settings) -> None:
    if db is None:
        return
    settings = settings.cleaned()
    for name, key in KEYS.items():
        value = getattr(settings, name)
        store.set_setting(db, key, list(value) if name == "fuzzy" else value)


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
