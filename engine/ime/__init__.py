"""The IME pipeline, in stages that are small objects composed in order (librime's parse → translate → filter):

* parse: ``engine.pinyin`` (below this package: every layer reads syllables);
* translate: ``converter`` (whole-input sentences from the model and the LMs, any runtime) wrapped by
  ``translator.ModelTranslator``, and ``translator.translate`` (the lexicon's words and characters);
* rank: ``learning.UserRanker`` (the user's phrases and picks);
* filter: ``script.ScriptFilter`` (traditional output);
* ``pipeline`` composes them; ``session`` is the composition state machine a keystroke drives;
  ``prediction`` proposes the next words after a commit; ``correction`` re-converts committed text to catch
  homophone slips.
"""
