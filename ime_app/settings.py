"""The user's input settings, as the store keeps them, with no GUI in it (the app's window and the IBus engine
read them alike; ``ime_app.settings_dialog`` edits them).

What there is: typo tolerance (one-slip readings, on by default), fuzzy pinyin pairs (z=zh, in=ing …, all off by
default), how many candidates a page holds (3–9), the candidate window's font size and its orientation
(horizontal rows, or one candidate per row), prediction of the next words after a commit (on by default,
``engine.ime.prediction``) and traditional-character output (off by default, ``engine.ime.script``: shown and committed
in 繁體, learned and kept in simplified).

They live in the user store (``engine.store`` settings, JSON values, one key each) and are read at start
(``load_settings``). A value in the store that is not valid (an old or hand-edited file) reads as the default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
