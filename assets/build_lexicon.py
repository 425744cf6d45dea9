"""Rebuild assets/chars.tsv and assets/words.tsv from source.

    python -m assets.build_lexicon [--corpus ../shared/data/corpus] [--workers 2]

Sources (all MIT): pypinyin 0.55.0 (character readings: ``pinyin_dict``; phrase readings: ``phrases_dict``),
jieba 0.42.1 (``dict.txt``, the word list), and the annotated corpus from ``trainer.corpus`` (counts). Counts
are occurrences in the corpus: per (character, reading) from pypinyin's in-context annotation, and per (word,
reading) for every place a listed word occurs inside a clause (substring matches, so 中国 also counts inside
中国人). Eval lines are excluded by the corpus pipeline, so nothing here is counted on them.

Characters kept: all of GB2312 (6,763) and the frequent part of GBK: characters that occur at least
``--min-char-count`` times in the corpus, or whose jieba word frequencies sum to ``--min-jieba-char-freq``. Words kept: 2–8 characters, all of them kept characters, seen at
least ``--min-word-count`` times, plus words pypinyin lists as phrases (they disambiguate polyphones).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from engine.pinyin import SYLLABLE_SET, SYLLABLES
from trainer.corpus import DEFAULT_CORPUS, Corpus, annotate, build_corpus
from trainer.held_out import char_rows, reading_counts

ASSETS = Path(__file__).resolve().parent
MIN_WORD, MAX_WORD = 2, 8


def toneless(marked: str) -> str:
    from pypinyin.contrib.tone_convert import to_normal

    s = to_normal(marked, v_to_u=False)
    return "e" if s == "ê" else s


def char_readings() -> dict[str, list[str]]:
    """Every reading pypinyin knows for every CJK character, in pypinyin's order (most common first)."""
    from pypinyin.pinyin_dict import pinyin_dict

    out: dict[str, list[str]] = {}
    for cp, readings in pinyin_dict.items():
        syls = []
        for r in readings.split(","):
            s = toneless(r)
            if s in SYLLABLE_SET and s not in syls:
                syls.append(s)
        if syls:
            out[chr(cp)] = syls
    return out


def in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
        return len(ch.encode("gb2312")) == 2
    except UnicodeEncodeError:
        return False


def in_gbk(ch: str) -> bool:
    try:
        return len(ch.encode("gbk")) == 2
    except UnicodeEncodeError:
        return False


def jieba_dict_lines():
    import jieba

    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as f:
        for line in f:
            word, freq, *_ = line.split(" ")
            yield word, int(freq)


def jieba_char_freq() -> Counter:
    """Sum of jieba word frequencies over the words each character occurs in."""
    freq: Counter = Counter()
    for word, n in jieba_dict_lines():
        for ch in word:
            freq[ch] += n
    return freq


def candidate_words(charset: set[str], extras: bool = False) -> dict[str, tuple[str, ...] | None]:
    """Words from jieba's list and pypinyin's phrases → their reading (pypinyin's where it lists one)."""
    from pypinyin.phrases_dict import phrases_dict

    words: dict[str, tuple[str, ...] | None] = {}
    for w, _ in jieba_dict_lines():
        if MIN_WORD <= len(w) <= MAX_WORD and all(c in charset for c in w):
            words[w] = None
    for w, readings in phrases_dict.items():
        if MIN_WORD <= len(w) <= MAX_WORD and all(c in charset for c in w) and len(readings) == len(w):
            syls = tuple(toneless(r[0]) for r in readings)
            if all(s in SYLLABLE_SET for s in syls):
                words[w] = syls
    # curated lists (domain terms, places, people, idioms; --extra-words): kept even where the corpus never
    # has them, read by pypinyin in phrase context. Measured and left out: 179k → 297k words lowered top-1 on
    # the held-out tuning shards from 61.2 to 60.8% (crosswoz, leetcode, thucnews titles; dev 66.5 → 66.7%)
    for w in extra_words() if extras else ():
        if w not in words and MIN_WORD <= len(w) <= MAX_WORD and all(c in charset for c in w):
            syls = annotate(w)
            if syls is not None and len(syls) == len(w):
                words[w] = tuple(syls)
    return words


def extra_words() -> list[str]:
    """The words of ``trainer.word_ngram.EXTRA_LISTS`` (THUOCL, MIT; Chinese-Names-Corpus idioms, Apache-2.0)."""
    from trainer.word_ngram import EXTRA_LISTS, LEXICON_DIR

    out = []
    for name in EXTRA_LISTS:
        path = LEXICON_DIR / name
        if path.is_file():
            out += [line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return out


def _count_words(args) -> Counter:
    """(word, syllable indices) occurrences in a slice of the corpus."""
    chars, syls, offsets, words, prefixes = args
    counts: Counter = Counter()
    text = "".join(map(chr, chars.tolist()))
    base = int(offsets[0])
    syl_list = syls.tolist()
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        a -= base
        b -= base
        for i in range(a, b - 1):
            for j in range(i + MIN_WORD, min(b, i + MAX_WORD) + 1):
                piece = text[i:j]
                if piece in words:
                    counts[(piece, tuple(syl_list[i:j]))] += 1
                if piece not in prefixes:
                    break
    return counts


def count_words(corpus: Corpus, words: set[str], workers: int) -> Counter:
    prefixes = {w[:k] for w in words for k in range(MIN_WORD, len(w))}
    n = len(corpus)
    parts = max(workers * 2, 1)
    bounds = np.linspace(0, n, parts + 1).astype(int)
    jobs = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        a, b = int(corpus.offsets[lo]), int(corpus.offsets[hi])
        jobs.append((corpus.chars[a:b], corpus.syls[a:b], corpus.offsets[lo:hi + 1], words, prefixes))
    total: Counter = Counter()
    with ProcessPoolExecutor(workers) as pool:
        for c in pool.map(_count_words, jobs):
            total.update(c)
    return total


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ASSETS)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--min-char-count", type=int, default=2)
    ap.add_argument("--min-jieba-char-freq", type=int, default=100)
    ap.add_argument("--min-word-count", type=int, default=3)
    ap.add_argument("--extra-words", action="store_true", help="add THUOCL's and the idiom list's words (see candidate_words)")
    args = ap.parse_args(argv)
    t0 = time.time()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    corpus = build_corpus(args.corpus, args.cache, workers=args.workers, log=log)

    readings = char_readings()
    cp_counts = np.bincount(corpus.chars.astype(np.int64), minlength=0x30000)
    pair_counts = reading_counts(corpus)

    # GB2312, plus the frequent part of GBK: seen in the corpus, or common in jieba's word list.
    jieba_freq = jieba_char_freq()
    charset = {ch for ch in readings if in_gb2312(ch)}
    charset |= {ch for ch in readings if in_gbk(ch) and (cp_counts[ord(ch)] >= args.min_char_count
                                                         or jieba_freq.get(ch, 0) >= args.min_jieba_char_freq)}
    log(f"lexicon: {len(charset):,} characters ({sum(in_gb2312(c) for c in charset):,} GB2312)")

    # Characters: every reading pypinyin lists, plus any the corpus annotation used; count per reading.
    seen_readings: dict[str, list[str]] = {}
    for ch, s in pair_counts:
        seen_readings.setdefault(ch, []).append(s)
    inventory = {ch: readings[ch] + [s for s in seen_readings.get(ch, []) if s not in readings[ch]] for ch in charset}
    rows = char_rows(inventory, sorted(charset, key=lambda c: (-int(cp_counts[ord(c)]), c)), pair_counts)
    chars_path = args.out / "chars.tsv"
    chars_path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    words = candidate_words(charset, args.extra_words)
    log(f"lexicon: counting {len(words):,} candidate words in {len(corpus.chars):,} characters …")
    counts = count_words(corpus, set(words), args.workers)
    by_word: dict[str, Counter] = {}
    for (w, syl_idx), c in counts.items():
        by_word.setdefault(w, Counter())[tuple(SYLLABLES[i] for i in syl_idx)] += c
    out_rows = []
    for w, listed in words.items():
        seen = by_word.get(w, Counter())
        total = sum(seen.values())
        if total < args.min_word_count and listed is None:
            continue
        if not seen:
            reading = listed or tuple(annotate(w) or ())
            if len(reading) == len(w):
                out_rows.append((w, " ".join(reading), 0))
            continue
        for reading, c in seen.most_common():
            if c >= args.min_word_count or reading == listed or c == total:
                out_rows.append((w, " ".join(reading), c))
    # One line per reading: acronym, reading, then word/count pairs, most frequent first. Lines sorted by
    # (acronym, reading) so the engine finds them by bisection without building an index at load time.
    grouped: dict[str, list[tuple[str, int]]] = {}
    for w, p, c in out_rows:
        grouped.setdefault(p, []).append((w, c))
    lines = []
    for p, entries in grouped.items():
        entries.sort(key=lambda e: (-e[1], e[0]))
        acronym = "".join(syl[0] for syl in p.split())
        lines.append(f"{acronym}\t{p}\t" + "\t".join(f"{w}\t{c}" for w, c in entries))
    lines.sort()
    words_path = args.out / "words.tsv"
    words_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    manifest = {
        "characters": len(charset),
        "gb2312_characters": sum(in_gb2312(c) for c in charset),
        "char_readings": len(rows),
        "words": len({r[0] for r in out_rows}),
        "word_readings": len(out_rows),
        "readings_with_words": len(grouped),
        "corpus_chars": int(len(corpus.chars)),
        "corpus_clauses": len(corpus),
        "corpus_files": corpus.sources,
        "min_char_count": args.min_char_count,
        "min_jieba_char_freq": args.min_jieba_char_freq,
        "min_word_count": args.min_word_count,
        "sources": {"pypinyin": "0.55.0 (MIT)", "jieba": "0.42.1 dict.txt (MIT)",
                    **({"THUOCL": "@a30ce79d895d (MIT)", "Chinese-Names-Corpus idioms": "@47d4af8d816f (Apache-2.0)"}
                       if args.extra_words else {})},
        "sha256": {"chars.tsv": sha256(chars_path), "words.tsv": sha256(words_path)},
        "build_seconds": round(time.time() - t0, 1),
    }
    (args.out / "lexicon.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(manifest, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
