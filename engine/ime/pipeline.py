"""The IME pipeline, assembled: parse → translate (model sentences + lexicon words) → rank by the user's learning.

``Pipeline`` is the ``translate`` function a ``Session`` calls on every keystroke and the ``on_commit`` it
reports commits to; each stage is a plain object that can be swapped (no model: the lexicon translator alone;
no store: no learning). ``build_pipeline`` makes the app's default: the model in ``assets/model`` (or the one
given), interactive (reusing decodes across keystrokes), one CPU thread, and the user store when a database
is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from engine.ime.learning import UserRanker
from engine.lexicon import SHIPPED_MODEL_DIR, Lexicon, default_lexicon, factory_model_dir
from engine.runtime.model_spec import read_meta
from engine.pinyin import NO_FUZZY, FuzzyOptions, parse
from engine.candidate import Candidate
from engine.ime.translator import ModelTranslator, translate

MODEL_DIR = SHIPPED_MODEL_DIR
# How typing reads keys unless the user's settings say otherwise: typo tolerance on (one-slip readings rank
# after every exact one), no fuzzy pairs.
TYPING_FUZZY = FuzzyOptions(typos=True)
# Typing's decodes resume this many positions before the first changed syllable (``ConverterSettings.reuse``).
# ``benchmarks/latency.py --file dev.tsv --lines 600`` (17,936 keys, 2026-12-07, the model of 69.5 M characters):
# reuse 1 / 2 / 3: typed top-1 65.3 / 65.8 / 66.3%, p95 9.4 / 10.6 / 11.3 ms per key. 2 keeps all but half a
# point (within noise) for 7% of the tail; on test.tsv (300 lines) 2 gave 62.7% at p95 8.2 ms, 3 60.3% at 10.8.
TYPING_REUSE = 2
# The beam search's width for raw keys' less likely segmentations while typing (the best one keeps the full
# beam): the keys in the slowest 5% are mostly ones that decode a second segmentation, often from scratch.
# Typing dev.tsv's first 600 lines twice over one loaded model, alternated line by line (17,960 keys): 8 / 4 /
# 2 gave typed top-1 65.5 / 65.5 / 65.5%, top-5 75.3 / 75.3 / 75.3%, p95 9.4 → 8.8 (4) and 8.8 → 8.6 ms (2).
# A narrower beam for every segmentation (6) cost half a point of top-5.
TYPING_SECONDARY_BEAM = 2


class Pipeline:
    def __init__(self, translator: Callable, lexicon: Lexicon, ranker: UserRanker | None = None,
                 fuzzy: FuzzyOptions = NO_FUZZY, status: str = "", model_dir: Path | None = None,
                 settings: dict | None = None):
        """``ranker``: the user's learning (None: nothing is learned); the translator's model decodes with its
        n-gram cache (``use_ranker``)."""
        self.translator, self.lexicon, self.fuzzy = translator, lexicon, fuzzy
        self.use_ranker(ranker)
        self.status = status
        self.model_dir = model_dir  # the model in use (None: lexicon only)
        self.settings = settings or {}  # how the model is run (``model_translator``'s keyword arguments)

    def use_ranker(self, ranker: UserRanker | None) -> None:
        """Learn with ``ranker`` from now on, and decode with its n-gram cache mixed into the model (None:
        neither): the translator's converter is replaced by one with that user LM."""
        self.ranker = ranker
        self.translator = with_user_lm(self.translator, ranker)

    def __call__(self, keys: str) -> list[Candidate]:
        result = parse(keys, self.fuzzy)
        if not result.ok:
            return []
        candidates = self.translator(result)
        if self.ranker is not None:
            candidates = self.ranker.rerank(result, keys, candidates)
        return candidates

    def commit(self, text: str, picks: list[Candidate], keys: str) -> None:
        if self.ranker is not None:
            self.ranker.learn(text, picks, keys)

    def swap_model(self, model_dir: Path | str) -> str:
        """Hot swap: load the model in ``model_dir`` completely (runtime sessions created, a first conversion
        done) with this pipeline's settings, then put it in place with one assignment, so a running session
        goes on typing without a restart. Returns the new status. Raises (FileNotFoundError, ValueError,
        OSError) and keeps the current model when the new one cannot be loaded."""
        translator, status = model_translator(model_dir, self.lexicon, **self.settings)
        self.translator = with_user_lm(translator, self.ranker)
        self.model_dir, self.status = Path(model_dir), status
        return status


def model_label(model_dir: Path | str) -> str:
    """How the status names a model: the factory model, a personal version, or the folder."""
    if Path(model_dir).resolve() in (MODEL_DIR.resolve(), factory_model_dir().resolve()):
        return "factory model"
    meta = read_meta(model_dir)
    if meta.get("kind") == "personal" and meta.get("version"):
        return f"personal model {meta['version']}"
    return f"model {Path(model_dir).name}"


def with_user_lm(translator, ranker: UserRanker | None):
    """``translator`` decoding with ``ranker``'s n-gram cache and ranking with the factory word LM adapted to
    the user's words (``engine.lm.user_word_lm``; None: the factory LMs alone); a translator with no model is
    returned as it is."""
    converter = getattr(translator, "converter", None)
    if converter is None:
        return translator
    user_lm = ranker.language_model(converter.chars) if ranker is not None else None
    words = getattr(converter.word_lm, "base", converter.word_lm)  # the factory word LM
    if words is not None and ranker is not None:
        words = ranker.word_model(words)
    return translator.with_converter(converter.with_lms(user_lm=user_lm, word_lm=words))


def model_translator(model_dir: Path | str, lexicon: Lexicon, reuse: int | None = TYPING_REUSE, device: str = "cpu",
                     threads: int = 1, beam: int | None = None, int8: bool = True,
                     runtime: str = "auto") -> tuple[ModelTranslator, str]:
    """The model in ``model_dir`` loaded and warmed up for typing, as a translator, and its status text.
    Raises FileNotFoundError/ValueError/OSError when it cannot be loaded."""
    from engine.ime.converter import Converter, ConverterSettings

    # the lexicon's words join the model's sentences only for abbreviated input (initials), where they
    # lift dev top-1 from 21% to 29%; for full pinyin they changed nothing and cost ~30% per key
    settings = ConverterSettings(proposals=16, proposals_for="initials",
                                 secondary_beam=TYPING_SECONDARY_BEAM).interactive(reuse, beam, int8)
    converter = Converter.load(model_dir, device, runtime=runtime, settings=settings, lexicon=lexicon)
    if converter.runtime == "torch" and threads:
        import torch

        torch.set_num_threads(threads)  # one thread is fastest for single-sentence decoding
    converter.convert_raw("ni", 1)  # sessions and first-call allocations now, not on the first key
    lm = f", + {converter.char_lm.order}-gram LM" if converter.char_lm is not None else ""
    lm += " + word LM" if converter.word_lm is not None else ""
    status = (f"{model_label(model_dir)} ({converter.num_params / 1e6:.1f} M parameters{lm}, "
              f"{device}, {converter.runtime})" + (f"; {converter.runtime_note}" if converter.runtime_note else ""))
    return ModelTranslator(converter, lexicon), status


def build_pipeline(model_dir: Path | str | None = MODEL_DIR, db=None, reuse: int | None = TYPING_REUSE,
                   device: str = "cpu", threads: int = 1, lexicon: Lexicon | None = None,
                   beam: int | None = None, int8: bool = True, runtime: str = "auto",
                   fuzzy: FuzzyOptions = TYPING_FUZZY) -> Pipeline:
    """The model-backed pipeline; falls back to the lexicon alone (saying why in ``status``) when the model
    cannot be loaded. ``db``: an open user store for instant learning (None: nothing is learned). For the
    user's own active model (personal or factory) see ``engine.personal.loading.build_user_pipeline``.

    Typing defaults, chosen with ``benchmarks/latency.py`` on dev.tsv: decodes resume ``TYPING_REUSE``
    positions before the first changed syllable (see there), int8 weights (same top-1 as fp32, ~1.4× faster
    decoding)."""
    lexicon = lexicon or default_lexicon()
    translator: Callable = lambda result: translate(result, lexicon)  # noqa: E731
    status = "lexicon only (no model)"
    settings = dict(reuse=reuse, device=device, threads=threads, beam=beam, int8=int8, runtime=runtime)
    loaded = None
    ranker = UserRanker(db, lexicon) if db is not None else None
    if model_dir is not None:
        try:
            translator, status = model_translator(model_dir, lexicon, **settings)
            loaded = Path(model_dir)
        except (FileNotFoundError, ValueError, OSError) as e:
            status = f"lexicon only — the model could not be loaded: {e}"
    return Pipeline(translator, lexicon, ranker, fuzzy=fuzzy, status=status, model_dir=loaded, settings=settings)


def settle_memory() -> None:
    """After a model is loaded in a typing process: collect once, then leave everything alive now (the model,
    the LMs, the lexicon: millions of objects that live as long as the process) out of Python's cyclic garbage
    collector (``gc.freeze``), so its full collections, which run every so often while typing, no longer walk
    them. On test.tsv typing (``benchmarks.latency``, five pairs of runs alternated on a noisy 2-core host) p95 was
    lower with it in four pairs (by 0.1–1.0 ms; 0.3 ms higher in the fifth), and so was the longest keystroke
    (55–68 ms against 68–101; 90 against 77 in the fifth). Objects are still freed when their last reference goes."""
    import gc

    gc.collect()
    gc.freeze()
