"""Output script: the candidates shown and the text committed, in traditional characters when the user wants them.

The engine works in simplified characters throughout (the model's vocabulary, the LMs, the lexicon, the user's
history and learned phrases are all simplified), so the conversion is a filter on what leaves it, as librime's
simplifier filter is: ``ScriptFilter`` converts a text with OpenCC (``opencc-python-reimplemented``; its
phrase-aware tables pick the right form of a one-to-many character: 头发 → 頭髮, 发现 → 發現). The
configuration is ``s2tw``, the Taiwan standard forms, characters only (no vocabulary rewrites: 软件 stays 軟件):
plain ``s2t`` (OpenCC's own standard) writes 吃 as the archaic 喫 and 里 as 裏, which readers of traditional
text today do not write (我們一起去喫飯). The library is pure Python: ~0.03 ms for a 9-character sentence
candidate, ~0.006 ms for a word (dev.tsv, this machine), so a page costs well under a millisecond; still, a filter
remembers the texts it converted (typing shows the same candidates key after key; a repeat costs ~0.3 µs) and
the composer converts only what is displayed: one page, never the whole list.
"""

from __future__ import annotations

from collections import OrderedDict

CACHE = 4096  # texts remembered


class ScriptFilter:
    """``filter(text)`` → ``text`` in the target script (``config``: an OpenCC configuration)."""

    def __init__(self, config: str = "s2tw", cache: int = CACHE):
        import opencc

        self._cc = opencc.OpenCC(config)
        self.config, self.cache = config, cache
        self._seen: OrderedDict[str, str] = OrderedDict()

    def __call__(self, text: str) -> str:
        hit = self._seen.get(text)
        if hit is not None:
            self._seen.move_to_end(text)
            return hit
        out = self._cc.convert(text) if text else text
        if len(out) != len(text):  # the caret arithmetic of the preedit assumes one character for one
            out = "".join(self._cc.convert(ch) for ch in text)
        self._seen[text] = out
        if len(self._seen) > self.cache:
            self._seen.popitem(last=False)
        return out

    def all(self, texts) -> tuple[str, ...]:
        return tuple(self(t) for t in texts)

    def preedit(self, text: str, caret: int, converted: str) -> tuple[str, int]:
        """A session's preedit (``text`` with its ``caret``) whose first ``converted`` characters are the picks
        made so far: those shown in the target script (the keys after them stay as typed)."""
        if not converted:
            return text, caret
        shown = self(converted)
        return shown + text[len(converted):], caret + len(shown) - len(converted)
