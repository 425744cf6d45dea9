"""The input checks every store function runs up front: each returns the clean value or raises
``StoreError`` with a message saying what to do; and the limits they enforce.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from engine.store.database import StoreError

MAX_TEXT = 10_000  # characters of committed text
MAX_AUX = 100_000  # characters of pinyin / raw keys
MAX_PHRASE = 64  # characters (= syllables) in a learned phrase
MAX_COUNT = 10**12

_SYLLABLE = re.compile(r"[a-z]{1,6}")
_HAN = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def check_str(value: Any, what: str, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise StoreError(f"{what} is empty; pass some non-blank text")
    if len(value) > max_len:
        raise StoreError(f"{what} is {len(value)} characters long; the limit is {max_len}, split it up")
    return value


def check_pinyin(value: Any, *, allow_empty: bool) -> str:
    text = " ".join(check_str(value, "pinyin", MAX_AUX, allow_empty=allow_empty).split())
    for syl in text.split():
        if not _SYLLABLE.fullmatch(syl):
            raise StoreError(
                f"pinyin syllable {syl!r} is invalid; use space-separated toneless lowercase a-z "
                "syllables such as 'ni hao' (write ü as v)")
    return text


def check_phrase(text: Any, pinyin: Any) -> tuple[str, str]:
    text = check_str(text, "phrase text", MAX_PHRASE)
    if not _HAN.fullmatch(text):
        raise StoreError(f"phrase text {text!r} must consist of Chinese characters only (no spaces or punctuation)")
    pinyin = check_pinyin(pinyin, allow_empty=False)
    if len(pinyin.split()) != len(text):
        raise StoreError(
            f"phrase {text!r} has {len(text)} characters but pinyin {pinyin!r} has "
            f"{len(pinyin.split())} syllables; give exactly one syllable per character")
    return text, pinyin


def check_num(value: Any, what: str) -> float:
    if value is None:
        return time.time()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise StoreError(f"{what} must be a non-negative unix time in seconds, got {value!r}")
    return float(value)


def check_int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise StoreError(f"{what} must be an integer between {lo} and {hi}, got {value!r}")
    return value


def check_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} must be JSON-serialisable (dicts, lists, str, numbers, bools, None): {exc}") from None


def check_commit_fields(text: Any, pinyin: Any, keys: Any, source: Any) -> tuple[str, str, str, str]:
    text = check_str(text, "commit text", MAX_TEXT)
    pinyin = check_pinyin(pinyin if pinyin is not None else "", allow_empty=True)
    keys = check_str(keys if keys is not None else "", "keys", MAX_AUX, allow_empty=True)
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise StoreError(f"source {source!r} is invalid; use a short lowercase name such as 'editor', 'import' or 'cli'")
    return text, pinyin, keys, source


def search_clause(search: str | None) -> tuple[str, list]:
    if search is None or search == "":
        return "", []
    search = check_str(search, "search", MAX_TEXT, allow_empty=True)
    return "WHERE (instr(text, ?) > 0 OR instr(pinyin, ?) > 0)", [search, search]
