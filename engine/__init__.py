"""Everything between a keystroke and a ranked candidate list, with no GUI (importable without Qt).

The layers, lowest first; a module imports only from its own layer and those below it
(``tests/test_layers.py`` checks it, lazy imports included):

    engine.pinyin, engine.lexicon, engine.candidate
                  the language: syllables and the key parser, words with readings and counts, the candidate
    engine.store  the SQLite user store (committed text, phrases, settings, models, jobs), one module a table
    engine.runtime
                  the model and how it runs: config and vocabularies, the Transformer, one backend interface
                  (PyTorch, ONNX Runtime) and the one beam search over it (``decoder``), the two-pass whole-line
                  search, the ONNX export with its manifest
    engine.lm     the language models mixed into the searches: corpus characters, corpus words, the user's
                  n-gram cache
    engine.ime    the IME pipeline: parse → translate (``converter`` for sentences, ``translator`` for the
                  lexicon's words) → rank by the user's learning → filter (``script``); the composition
                  session, prediction after a commit, correction of committed text
    engine.personal
                  the user's personal models (staged, installed, active, pruned) and deleting the user's data
"""
