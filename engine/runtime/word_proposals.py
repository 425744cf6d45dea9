"""Word-lattice proposals for whole-line conversion: sentences built from lexicon words, scored by the word LM.

The first pass of ``engine.runtime.two_pass`` proposes character by character (the emission head and the character
4-gram), so a word it has never seen together, or whose characters are each unlikely alone, can fall out of
its beam before the decoder sees it. Here the same emissions feed a search over words instead, as libime's
lattice does: at each position the lexicon's words that the next syllables can spell (any length up to
``MAX_WORD``; abbreviations and unfinished syllables too) and the head's likeliest single characters, scored

    head_weight · Σ log p_head(characters) + log p_word(word | previous words)

with the last ``order - 1`` words as the state, ``width`` states per position. Its best sentences join the
first pass's proposals, and the decoder ranks them all on the same objective.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from engine.runtime.model_spec import BOS, input_tokens, token_syllables

MAX_WORD = 6
# WIDTH 8 → 6 and TOP 4 → 3 (with the word LM's STATES 6 → 4): top-1 and top-5 unchanged on the three tuning
# shards and dev (see ``engine.runtime.two_pass``'s RANKED), fewer rows for the LM and the decoder.
# WIDTH 6 → 4 and WORDS 12 → 8 (2026-12-07, with the word LM's per-word penalty): top-1 and top-5 the same on the
# tuning shards, the leave-one-source-out shards, test.tsv and dev (top-5 on test 81.09 → 81.04%).
WIDTH = 4  # lattice states kept per position
CHARS = 4  # single characters per position (the head's likeliest)
WORDS = 8  # lexicon words per span (most frequent first)
TOP = 3  # sentences proposed


@lru_cache(maxsize=8192)
def _token_options(token_id: int) -> tuple[str, ...]:
    return token_syllables(input_tokens()[token_id])


_column_cache: dict[int, tuple[np.ndarray, list[str], dict[str, int]]] = {}


def _columns(token: int, idx: np.ndarray, chars: list[str]) -> dict[str, int]:
    """Character → its column in ``idx`` (the characters input token ``token`` allows), kept per token while
    the backend hands out the same array (its output cache) for the same characters."""
    hit = _column_cache.get(token)
    if hit is None or hit[0] is not idx or hit[1] is not chars:
        if len(_column_cache) > 4096:
            _column_cache.clear()
        hit = _column_cache[token] = (idx, chars, {chars[c]: k for k, c in enumerate(idx.tolist())})
    return hit[2]


def propose(x_ids: list[int], emissions, lexicon, word_lm, chars: list[str], char_index: dict[str, int],
            head_weight: float, width: int | None = None, top: int | None = None) -> list[list[int]]:
    """Up to ``top`` character-id sequences, best first. ``emissions``: per position (allowed character ids
    (n,), sorted; the head's log-probabilities over them), as ``engine.runtime.two_pass.propose`` takes them;
    ``chars``/``char_index``: the model's characters and their ids."""
    width, top = width or WIDTH, top or TOP
    n = len(x_ids)
    m = word_lm.order - 1
    index = word_lm.index
    # arcs[i]: (end, word id, char ids, head score) for every way to spell x_ids[i:end]
    arcs: list[list[tuple[int, int, tuple[int, ...], float]]] = [[] for _ in range(n)]
    options = [_token_options(t) for t in x_ids]
    if any(idx.size == 0 for idx, _ in emissions):
        return []
    # per position: character → its column among the position's allowed characters (kept per token)
    columns = [_columns(t, idx, chars) for t, (idx, _) in zip(x_ids, emissions)]
    heads = [head.tolist() for _, head in emissions]
    # spans of single full syllables are asked about only where some word reads them (most have none)
    single = [o[0] if len(o) == 1 else None for o in options]
    spelled = lexicon.spelled_spans(single, MAX_WORD)
    for i in range(n):
        idx, head = emissions[i]
        for c in np.argpartition(-head, min(CHARS, head.size) - 1)[:CHARS].tolist():
            cid = int(idx[c])
            arcs[i].append((i + 1, index.get(chars[cid], 0), (cid,), heads[i][c]))
        for j in range(i + 2, min(n, i + MAX_WORD) + 1):
            if j not in spelled[i] and all(single[i:j]):
                continue
            for entry in lexicon.words_matching(options[i:j], limit=WORDS):
                score = 0.0
                for t, ch in enumerate(entry.text, i):
                    c = columns[t].get(ch)
                    if c is None:
                        break
                    score += heads[t][c]
                else:
                    arcs[i].append((j, index.get(entry.text, 0), tuple(char_index[ch] for ch in entry.text), score))
    start = tuple([0] * (m - 1) + [BOS]) if m else ()
    # states[i]: {context: (score, chars so far)}
    states: list[dict] = [dict() for _ in range(n + 1)]
    states[0][start] = (0.0, ())
    for i in range(n):
        here = states[i]
        if not here:
            continue
        if len(here) > width:
            here = dict(sorted(here.items(), key=lambda kv: -kv[1][0])[:width])
        rows = [(ctx, arc) for ctx in here for arc in arcs[i]]
        if not rows:
            continue
        ctx = np.array([r[0] for r in rows], dtype=np.int64).reshape(len(rows), m)
        wid = np.array([r[1][1] for r in rows], dtype=np.int64)
        lp = word_lm.pair_logprobs(ctx, wid)
        for (c, (end, w, spelled, head)), v in zip(rows, lp.tolist()):
            score, text = here[c]
            total = score + head_weight * head + v
            key = (c + (w,))[1:] if m else ()  # the state: the last order - 1 words (recombined, as Viterbi)
            old = states[end].get(key)
            if old is None or total > old[0]:
                states[end][key] = (total, text + spelled)
    final = sorted(states[n].values(), key=lambda v: -v[0])
    seen, out = set(), []
    for _, chars in final:
        if chars not in seen:
            seen.add(chars)
            out.append(list(chars))
        if len(out) == top:
            break
    return out
