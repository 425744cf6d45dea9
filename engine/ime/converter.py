"""Whole-input conversion: keys or syllables in, ranked candidate sentences out, over whichever runtime.

``Converter`` decodes the parser's best few segmentations of raw keys (charging each its parser cost),
merges them, lets the lexicon propose words for abbreviations, and — for typing — reuses the previous
keystroke's beams (``interactive``). A whole line is decoded in two passes when the model has an emission
head (``engine.runtime.two_pass``: the head and the LM propose, the whole decoder ranks in one call), else by the
beam search typing uses. Input longer than the model reads at once (``max_len`` tokens, 64 for the shipped
model) is decoded in even pieces, cut where the user typed a separator when there is one near, and the
pieces' best results joined (``chunk_spans``, ``join_best``). The model itself runs in a backend:
``engine.runtime.torch_backend.TorchBackend`` (PyTorch) or ``engine.runtime.onnx_backend.OnnxBackend``
(the same search on ONNX Runtime). No PyTorch import here: typing with the ONNX backend never loads torch.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from engine.lm import word_lm
from engine.runtime import two_pass, word_proposals
from engine.candidate import Candidate
from engine.runtime.decoder import BeamState
from engine.runtime.model_spec import input_tokens, token_for
from engine.pinyin import FULL, INITIAL, ParseResult, Segmentation, parse, split_syllables
from engine.runtime.two_pass import TwoPassSettings

_TOKEN_INDEX = {t: i for i, t in enumerate(input_tokens())}
GAP = None  # beam pruning by score gap (None: off); see benchmarks/fusion_sweep.py --gaps
TYPO_SEGMENTATIONS = 2  # more segmentations decoded when the best reading has a typo (dev, 1,000 noisy lines: 50.9 → 52.6%)


def word_lm_enabled() -> bool:
    """``PINYIN_IME_WORD_LM=0`` ranks without the word LM (to measure what it adds)."""
    import os

    return os.environ.get("PINYIN_IME_WORD_LM", "1") != "0"


def segmentation_tokens(seg: Segmentation) -> list[int] | None:
    """Input token ids for a parser segmentation (None if a token has no model input, which is rare)."""
    ids = []
    for tok in seg.tokens:
        name = token_for(tok.kind, tok.syllables[0] if tok.kind == "full" and len(tok.syllables) == 1 else tok.keys)
        i = _TOKEN_INDEX.get(name)
        if i is None:
            return None
        ids.append(i)
    return ids


def chunk_spans(n: int, max_len: int, breaks=()) -> list[tuple[int, int]]:
    """Split ``n`` input tokens into spans of at most ``max_len`` (what the model reads at once), for input
    longer than that. Spans are of even length (80 tokens make two of 40, not 64 and 16: a short last piece
    would have little context), and a span ends at one of ``breaks`` (token indices where the user typed a separator)
    instead when one lies between half a span and a whole one past its start: a place the user marked is a
    better cut than an arbitrary one."""
    spans, start = [], 0
    while n - start > max_len:
        pieces = -(-(n - start) // max_len)
        even = start + -(-(n - start) // pieces)
        near = [b for b in breaks if start + max_len // 2 <= b <= start + max_len]
        end = min(near, key=lambda b: abs(b - even)) if near else even
        spans.append((start, end))
        start = end
    spans.append((start, n))
    return spans


def join_best(parts: list[list[tuple[str, float]]], top: int) -> list[tuple[str, float]]:
    """The ``top`` best concatenations of one result per part (scores add: the parts were decoded apart), best
    first. Exact, because the best ``top`` of a sum are made of each part's best ``top``."""
    joined = [("", 0.0)]
    for part in parts:
        joined = heapq.nlargest(top, ((a + b, s + t) for a, s in joined for b, t in part), key=lambda ts: ts[1])
    return joined


def typed_breaks(seg: Segmentation) -> list[int]:
    """Indices of the tokens the user typed a separator (' or space) before: where long input is best cut."""
    return [i for i in range(1, len(seg.tokens)) if seg.tokens[i].start > seg.tokens[i - 1].end]


@dataclass(frozen=True)
class ConverterSettings:
    """How a ``Converter`` turns input into candidates; frozen: a different setting is a different converter
    (``Converter.with_settings``)."""
    beam: int = 8  # hypotheses the decoder's beam search keeps
    segmentations: int = 3  # parser segmentations of raw keys decoded
    segmentation_weight: float = 2.0  # nats charged per unit of parser cost behind the best segmentation
    max_cost_gap: float = 0.5  # segmentations this much costlier than the best are not decoded
    # Lexicon words that spell the whole input join the beam's results, scored by the model: the lexicon
    # proposes, the model ranks (this catches what a small beam misses, mostly on abbreviations).
    proposals: int = 8
    proposals_for: str = "all"  # or "initials": only for input with an initial typed alone (abbreviations)
    # Reuse across keystrokes: how many positions before the first changed token to re-decode (None: every
    # input decoded from scratch, as the CLI does). See ``Converter._beams``.
    reuse: int | None = None
    gap: float | None = GAP  # nats behind the best at which a hypothesis leaves the beam
    int8: bool = False  # the int8-weight graphs (typing) instead of fp32
    # whole-line conversion (reuse off) in two passes when the model has an emission head (``engine.runtime.two_pass``);
    # None: the beam search, as typing uses
    two_pass: TwoPassSettings | None = TwoPassSettings()
    # what replaces ``two_pass``'s widths for raw keys' less likely segmentations: they seldom win, and on dev
    # (1,000 lines, raw) this narrower setting left every accuracy figure where the full one had it; without the
    # word lattice too (tuning shards and dev raw: top-1 within 0.1 point). Decoding them at all is worth it:
    # the best segmentation alone lost 1.1 points on the shards and 0.7 on dev. Ranking 2 of their proposals
    # instead of 3 (2026-12-07): raw top-1 and top-5 the same on the tuning and leave-one-source-out shards and test
    two_pass_secondary: TwoPassSettings = TwoPassSettings(width=8, keep=12, ranked=2, lattice=False)
    cache_size: int = 8  # typing: decodes kept to resume from
    secondary_beam: int | None = None  # the beam search's width for raw keys' less likely segmentations (None: beam)

    def interactive(self, reuse: int = 2, beam: int | None = None, int8: bool = False) -> "ConverterSettings":
        """Settings for typing: reuse earlier decodes (whole-line conversion leaves it off), optionally a
        narrower beam and int8 weights."""
        return replace(self, reuse=reuse, beam=beam or self.beam, int8=int8)


class Converter:
    """A loaded model, the language models mixed into its searches, and the settings for turning a whole input
    into ranked candidates. Settings and LMs are given when it is made; ``with_settings`` and ``with_lms`` make
    another converter over the same loaded model (nothing is loaded again).

    ``backend`` runs the model: ``engine.runtime.torch_backend.TorchBackend`` (PyTorch; training, GPUs) or
    ``engine.runtime.onnx_backend.OnnxBackend`` (ONNX Runtime; typing on a CPU, no torch import). A ``PinyinModel``
    given instead is wrapped in a ``TorchBackend``. The LMs: ``char_lm`` the corpus character n-gram
    (``engine.lm.char_lm.CharLM``) and ``user_lm`` the user's n-gram cache (``engine.lm.user_lm.UserLM``), each mixed
    into every step of the searches; ``word_lm`` the word n-gram (``engine.lm.word_lm.WordLM``), which adds
    weight · log p(best word segmentation) to every result's score before they are ordered, with
    ``word_lexicon`` the lexicon whose words the word lattice proposes (``engine.runtime.word_proposals``); ``lexicon``
    proposes whole-input words (``ConverterSettings.proposals``)."""

    def __init__(self, backend, chars: list[str], settings: ConverterSettings = ConverterSettings(), *,
                 lexicon=None, char_lm=None, user_lm=None, word_lm=None, word_lexicon=None, runtime_note: str = ""):
        if not hasattr(backend, "beam_search"):
            from engine.runtime.torch_backend import TorchBackend

            backend = TorchBackend(backend)
        self.backend, self.chars = backend, chars
        self.char_index = {c: i for i, c in enumerate(chars)}
        self.settings = settings
        self._lms = dict(lexicon=lexicon, char_lm=char_lm, user_lm=user_lm, word_lm=word_lm, word_lexicon=word_lexicon)
        self.runtime, self.runtime_note = backend.name, runtime_note
        self._lm_version = -1
        self._traces: OrderedDict[tuple[int, ...], tuple[dict[int, BeamState], list[tuple[str, float]]]] = OrderedDict()

    lexicon = property(lambda self: self._lms["lexicon"])
    char_lm = property(lambda self: self._lms["char_lm"])
    user_lm = property(lambda self: self._lms["user_lm"])
    word_lm = property(lambda self: self._lms["word_lm"])
    word_lexicon = property(lambda self: self._lms["word_lexicon"])

    def with_settings(self, **changes) -> "Converter":
        """This converter with some settings changed (``ConverterSettings`` field names), over the same model
        and LMs; its own decode cache starts empty."""
        return Converter(self.backend, self.chars, replace(self.settings, **changes), **self._lms,
                         runtime_note=self.runtime_note)

    def with_lms(self, **changes) -> "Converter":
        """This converter with some of its LMs (or lexicons) replaced (None: without it): ``char_lm``,
        ``user_lm``, ``word_lm``, ``word_lexicon``, ``lexicon``."""
        unknown = set(changes) - set(self._lms)
        if unknown:
            raise TypeError(f"not a language model of a Converter: {', '.join(sorted(unknown))}")
        return Converter(self.backend, self.chars, self.settings, **{**self._lms, **changes},
                         runtime_note=self.runtime_note)

    @property
    def uses_two_pass(self) -> bool:
        """Whether a whole line is converted in two passes (the model has an emission head and the settings
        ask for them), else by the beam search."""
        return self.settings.two_pass is not None and bool(getattr(self.backend, "has_head", False))

    @property
    def _whole_line_two_pass(self) -> bool:
        """Whether ``_beams`` takes the two passes now (a whole line, no reuse, a model with an emission head):
        they add the word LM's share themselves, so ``_decode`` must not add it again."""
        return self.settings.reuse is None and self.uses_two_pass

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu", runtime: str = "torch", char_lm: bool = True,
             settings: ConverterSettings | None = None, **lms) -> "Converter":
        """``runtime``: "torch", "onnx" (ONNX Runtime for the encoder and decoder steps; exports the model next
        to its weights the first time, which needs torch), or "auto" (onnx on a CPU when onnxruntime is
        installed and the export is there or can be written; torch otherwise, saying why in
        ``runtime_note``). ``char_lm``: fuse the model's corpus character LM (``engine.lm.char_lm.find``) and its
        word LM when it has them. ``settings``: ``ConverterSettings`` (default: its defaults); ``lms``: more
        of ``with_lms``'s keywords (``lexicon``, ``user_lm``)."""
        backend, note = cls._load_backend(directory, device, runtime)
        notes = [note]
        if char_lm:
            from engine.lm import char_lm as char_lm_module, word_lm
            lms["char_lm"], lm_note = char_lm_module.load_for(directory, backend.chars)
            lms["word_lm"], word_note = word_lm.load_for(directory) if word_lm_enabled() else (None, "")
            if lms["word_lm"] is not None:
                from engine.lexicon import lexicon_for

                lms["word_lexicon"] = lexicon_for(directory)
            notes += [lm_note, word_note]
        return cls(backend, backend.chars, settings or ConverterSettings(), **lms,
                   runtime_note="; ".join(n for n in notes if n))

    @staticmethod
    def _load_backend(directory: Path | str, device: str, runtime: str):
        note = ""
        if runtime == "onnx" or (runtime == "auto" and str(device) == "cpu"):
            try:
                from engine.runtime.onnx_backend import OnnxBackend

                return OnnxBackend(directory), ""
            except (FileNotFoundError, ValueError):
                raise  # no model there, or a broken one: the same answer from either runtime
            except Exception as e:  # noqa: BLE001 — any export/runtime failure: PyTorch still decodes
                if runtime == "onnx":
                    raise
                note = f"ONNX Runtime unavailable ({e}); decoding with PyTorch"
        from engine.runtime.torch_backend import TorchBackend

        return TorchBackend.load(directory, device), note

    @classmethod
    def load_with_lexicon(cls, directory: Path | str, device: str = "cpu", **kw) -> "Converter":
        from engine.lexicon import default_lexicon

        return cls.load(directory, device, lexicon=default_lexicon(), **kw)

    def _beams(self, ids: list[int],
               secondary: bool = False) -> tuple[list[tuple[list[int], float]], dict[int, BeamState] | None]:
        """The best results for ``ids``. A whole line (``reuse`` off) takes the two passes when the model has an
        emission head (``secondary``: a raw input's less likely segmentation, with narrower settings), else the
        beam search. With ``reuse`` on the beam search restarts from the cached decode that shares the most
        leading tokens (typing a key usually changes only the last token or adds one): from that decode's beam
        ``reuse`` positions before the first token that differs, so a keystroke costs a few decoder steps, not
        one per syllable. Each decode keeps its beams at the ``reuse + 1`` positions before its last for the next key
        (that is where the next key's decode starts when it changes or adds one token)."""
        cfg = self.settings
        if self._whole_line_two_pass:
            widths = replace(cfg.two_pass_secondary, head_weight=cfg.two_pass.head_weight,
                             head_rank_weight=cfg.two_pass.head_rank_weight) if secondary else cfg.two_pass
            words = self._word_proposals if widths.lattice and self.word_lm is not None \
                and self.word_lexicon is not None else None
            top = cfg.beam + (word_proposals.TOP if words else 0)
            lm = self.char_lm
            plain = lm is not None and not self.user_lm and not lm.normalize and words is not None
            return two_pass.convert(self.backend, ids, top, fuse=self._fuse(), int8=cfg.int8, words=words,
                                    sequence_prior=lm.sequence_logprobs if plain else None,
                                    text_prior=self._word_score_of_ids if self.word_lm is not None else None,
                                    **{k: v for k, v in asdict(widths).items() if k != "lattice"}), None
        search = self.backend.beam_search
        beam = cfg.secondary_beam if secondary and cfg.secondary_beam else cfg.beam
        if cfg.reuse is None:
            return search(ids, beam, cfg.beam, int8=cfg.int8, fuse=self._fuse(), gap=cfg.gap), None
        key = tuple(ids)
        resume, common = None, 0
        for other, (states, _) in self._traces.items():
            n = 0
            for a, b in zip(key, other):
                if a != b:
                    break
                n += 1
            if n > common and states:
                common, resume = n, states
        state = None
        if resume is not None:
            start = min(common, len(key) - 1) - cfg.reuse
            usable = [L for L in resume if L <= start]
            state = resume[max(usable)] if usable else None
        states: dict[int, BeamState] = {}
        found = search(ids, beam, cfg.beam, resume=state, trace=states, trace_from=max(0, len(ids) - cfg.reuse - 2),
                       int8=cfg.int8, fuse=self._fuse(), gap=cfg.gap)
        return found, states

    def word_share(self, texts: list[str], whole_line: bool = True) -> "np.ndarray":
        """The word LM's share of each text's score: weight · (log p of its best word segmentation, less the
        per-word charge). ``whole_line``: the setting the two passes rank whole lines with (the word LM's own
        ``weight`` and ``penalty``), else the one typing's beam search ranks with (``engine.lm.word_lm``'s
        TYPING_WEIGHT and TYPING_PENALTY, tuned on typed dev lines)."""
        if whole_line:
            return self.word_lm.weight * self.word_lm.score(texts)
        return word_lm.TYPING_WEIGHT * self.word_lm.score(texts, word_lm.TYPING_PENALTY)

    def _word_score_of_ids(self, ys) -> "np.ndarray":
        """``word_share`` of character-id sequences (the two passes' ``text_prior``)."""
        return self.word_share(["".join(self.chars[c] for c in h) for h in ys.tolist()])

    def _word_proposals(self, x_ids, emissions, head_weight):
        return word_proposals.propose(x_ids, emissions, self.word_lexicon, self.word_lm, self.chars, self.char_index,
                                      head_weight)

    def _fuse(self):
        """What each beam-search step adds to the model's log-probabilities: the corpus LM (with the user's
        cache interpolated into it when both are there), or the user's cache bonus alone, or nothing."""
        lm, user = self.char_lm, self.user_lm if self.user_lm else None
        if lm is None or user is None:
            return lm.fuse if lm is not None else user.fuse if user is not None else None
        return lambda hyps, allowed, logp: lm.fuse(hyps, allowed, logp, mix=user.mix)

    def _decode(self, ids: list[int], top: int, options=None, secondary: bool = False) -> list[tuple[str, float]]:
        version = self.user_lm.version if self.user_lm is not None else -1
        if version != self._lm_version:  # the user's text changed: earlier decodes were scored without it
            self._traces.clear()
            self._lm_version = version
        key = tuple(ids)
        if self.settings.reuse is not None and key in self._traces:
            self._traces.move_to_end(key)
            return self._traces[key][1][:top]
        results, trace = self._beams(ids, secondary)
        found = [("".join(self.chars[c] for c in h), s) for h, s in results]
        scored = self._whole_line_two_pass  # the word LM's share is in (added while the decoder ranked)
        proposed = []
        if self.lexicon is not None and options is not None and len(ids) <= 8:
            have = {t for t, _ in found}
            words = [e.text for e in self.lexicon.words_matching(options, limit=self.settings.proposals)]
            words = [w for w in words if w not in have and all(c in self.char_index for c in w)]
            proposed = list(zip(words, self.score_texts(ids, words)))
        todo = proposed if scored else found + proposed
        if self.word_lm is not None and todo:
            # beside the two passes' results, their setting; beside the beam search's, typing's
            extra = self.word_share([t for t, _ in todo], whole_line=scored)
            todo = [(t, s + float(e)) for (t, s), e in zip(todo, extra)]
        found = (found if scored else []) + todo
        found.sort(key=lambda ts: -ts[1])
        if trace is not None:
            self._traces[key] = (trace, found)
            while len(self._traces) > self.settings.cache_size:
                self._traces.popitem(last=False)
        return found[:top]

    def _decode_any(self, ids: list[int], top: int, options=None, secondary: bool = False,
                    breaks=()) -> list[tuple[str, float]]:
        """``_decode`` for input of any length: what is longer than the model reads (its positional embeddings
        end at ``backend.max_len``, and ONNX Runtime fails on more) is decoded in pieces (``chunk_spans``,
        preferring ``breaks``) whose best results are joined. Input that fits is decoded exactly as before."""
        if len(ids) <= self.backend.max_len:
            return self._decode(ids, top, options, secondary)
        parts = [self._decode(ids[a:b], top, options[a:b] if options is not None else None, secondary)
                 for a, b in chunk_spans(len(ids), self.backend.max_len, breaks)]
        return join_best(parts, top)

    @property
    def num_params(self) -> int:
        return self.backend.num_params

    def score_texts(self, ids: list[int], texts: list[str]) -> list[float]:
        """The model's log-probability of each text (same length as ``ids``) for input tokens ``ids``."""
        if not texts:
            return []
        ys = [[self.char_index[c] for c in t] for t in texts]
        # the weights the searches use (int8 when typing), so proposals and search results compare fairly
        return self.backend.score(ids, ys, int8=self.settings.int8, fuse=self._fuse())

    def convert_syllables(self, syllables: list[str], top: int = 5) -> list[Candidate]:
        ids = [_TOKEN_INDEX[s] for s in syllables]
        seg, read = "'".join(syllables), tuple(syllables)
        return [Candidate(t, len(seg), read, s, "sentence", seg)
                for t, s in self._decode_any(ids, top, [(s,) for s in syllables])]

    def convert_segmented(self, line: str, top: int = 5) -> list[Candidate]:
        """Space-separated syllables (``ni hao``); raises ValueError for a token that is not a syllable."""
        return self.convert_syllables(split_syllables(line), top)

    def convert_raw(self, keys: str | ParseResult, top: int = 5) -> list[Candidate]:
        result = keys if isinstance(keys, ParseResult) else parse(keys)
        if not result.ok:
            return []
        merged: dict[str, Candidate] = {}
        best_cost = None
        cfg = self.settings
        limit = cfg.segmentations
        for n, seg in enumerate(result.segmentations(cfg.segmentations + TYPO_SEGMENTATIONS)):
            if best_cost is None:
                best_cost = seg.cost
                # a typo often has several corrections of one cost (zhng: zhong, zheng, zhang): when the best
                # reading is one, look at a few more; else typing pays nothing for typo tolerance
                limit += TYPO_SEGMENTATIONS if seg.has_typo else 0
            if n >= limit:
                break
            if seg.cost - best_cost > cfg.max_cost_gap:
                break  # much less plausible readings are not worth a decode
            ids = segmentation_tokens(seg)
            if not ids:
                continue
            penalty = cfg.segmentation_weight * (seg.cost - best_cost)
            propose = cfg.proposals_for == "all" or any(t.kind == INITIAL for t in seg.tokens)
            options = [t.syllables for t in seg.tokens] if propose else None
            for variant in (ids, self._fuzzy_variant(seg, ids)):
                if variant is None:
                    continue
                for text, score in self._decode_any(variant, top, options, bool(merged), typed_breaks(seg)):
                    cand = Candidate(text, len(result.keys), seg.syllables, score - penalty,
                                     "sentence", str(seg))
                    if text not in merged or merged[text].score < cand.score:
                        merged[text] = cand
        return sorted(merged.values(), key=lambda c: -c.score)[:top]

    def _fuzzy_variant(self, seg: Segmentation, ids: list[int]) -> list[int] | None:
        """The input tokens with each fuzzy-read syllable as the other spelling it stands for (``zong`` with
        z=zh on: ``zhong``), or None when no token is fuzzy. The model reads one spelling per token, so under
        the literal one alone it never proposes 中 for ``zong``; decoding this variant too lets the model and
        the LMs choose between 总过人 and 中国人. Where a token has several other spellings, the one with the
        most frequent characters (the lexicon's counts) stands for them."""
        out, changed = list(ids), False
        for i, tok in enumerate(seg.tokens):
            if tok.kind != FULL or tok.typo or len(tok.syllables) < 2:
                continue
            others = [s for s in tok.syllables if s != tok.keys]
            if not others:
                continue
            other = max(others, key=self._syllable_weight)
            token = _TOKEN_INDEX.get(token_for(FULL, other))
            if token is not None and token != out[i]:
                out[i], changed = token, True
        return out if changed else None

    def _syllable_weight(self, syllable: str) -> int:
        if self.lexicon is None:
            return 0
        return sum(n for _, n in self.lexicon.chars_for(syllable))
