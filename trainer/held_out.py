"""The factory model as a user whose text we never counted gets it: every count-built asset rebuilt without a shard.

Our corpus holds the public test set's sources, so the count models (the character LM, the lexicon's
counts, which decide the readings the model may use) remember its phrases. A real user's text is in none of
them. ``factory_without(shard)`` makes a model folder that stands for that: the shipped Transformer's weights
and graphs (linked; it was trained on every shard, which no CPU session can redo per shard), with

* ``char_lm.safetensors`` rebuilt without the shard (and without ``assets/personalize/general.tsv``), with the
  shipped LM's order and cutoffs;
* ``word_lm.safetensors`` (when the factory model has one) likewise, with the shipped one's order and cutoffs;
* ``chars.tsv`` recounted without the shard (same characters and readings, corpus counts as
  ``assets/build_lexicon.py`` counts them), ``words.tsv`` from the shipped lexicon;

which ``engine.lm.char_lm.find`` and ``engine.lexicon.lexicon_for`` pick up from the folder.
``held_out_clauses`` picks a shard's clauses the way the eval sets were made. Used by
``benchmarks/out_of_domain.py`` and ``benchmarks/personalize.py``.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from engine.lexicon import SHIPPED_MODEL_DIR
from engine.pinyin import SYLLABLES

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"
FACTORY = SHIPPED_MODEL_DIR


def reading_counts(corpus) -> Counter:
    """(character, syllable) → how often the annotated corpus reads that character so."""
    key = corpus.chars.astype(np.uint64) * 1024 + corpus.syls.astype(np.uint64)
    uniq, cnt = np.unique(key, return_counts=True)
    return Counter({(chr(k // 1024), SYLLABLES[k % 1024]): c for k, c in zip(uniq.tolist(), cnt.tolist())})


def char_rows(inventory: dict[str, list[str]], order: list[str], counts: Counter) -> list[str]:
    """``chars.tsv`` lines: for each character (in ``order``), each reading of ``inventory`` (unseen ones in
    their given order) most used first, with its count."""
    rows = []
    for ch in order:
        syls = sorted(inventory[ch], key=lambda s: -counts.get((ch, s), 0))  # stable among unseen readings
        rows += [f"{ch}\t{s}\t{counts.get((ch, s), 0)}" for s in syls]
    return rows


def recount_chars(chars_tsv: Path, corpus) -> list[str]:
    """The lines of ``chars_tsv`` with its counts taken again from ``corpus`` (characters most frequent first)."""
    inventory: dict[str, list[str]] = {}
    for line in Path(chars_tsv).read_text(encoding="utf-8").splitlines():
        ch, syl, _ = line.split("\t")
        inventory.setdefault(ch, []).append(syl)
    counts = reading_counts(corpus)
    total = Counter()
    for (ch, _), c in counts.items():
        total[ch] += c
    order = sorted(inventory, key=lambda c: (-total.get(c, 0), c))
    return char_rows(inventory, order, counts)


def lm_settings(path: Path) -> tuple[int, list[int]]:
    """(order, count cutoffs) of a saved character LM."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
    return int(meta["order"]), json.loads(meta["stats"])["min_count"]


def factory_without(shard: str, work: Path, corpus=None, log=None) -> Path:
    """The folder ``work/factory-without-SHARD`` described above, built once (again when the shipped LM's
    settings or the corpus change)."""
    from engine.lm.char_lm import FILE_NAME
    from engine.runtime.model_spec import read_config
    from engine.lm.word_lm import FILE_NAME as WORD_FILE
    from trainer import ngram
    from trainer.corpus import build_corpus
    from trainer.evaluate import read_tsv
    from trainer.user_text import GENERAL_FILE

    log = log or (lambda m: print(f"[{shard}] {m}", file=sys.stderr, flush=True))
    shipped_lm = FACTORY / FILE_NAME
    out = Path(work) / f"factory-without-{shard}"
    stamp = out / "held_out.json"
    corpus = corpus if corpus is not None else build_corpus(log=log)
    shipped_words = FACTORY / WORD_FILE
    base = {"shard": shard, "corpus_chars": int(len(corpus.chars))}
    want = {  # each part is rebuilt when what it is made from changes
        "char_lm": {**base, "settings": list(lm_settings(shipped_lm))},
        "chars_tsv": {**base, "bytes": (ASSETS / "chars.tsv").stat().st_size},
        "word_lm": {**base, "settings": list(lm_settings(shipped_words)), "words_tsv": (ASSETS / "words.tsv").stat().st_size,
                    "shipped_bytes": shipped_words.stat().st_size}
        if shipped_words.is_file() else None,
    }
    try:
        have = json.loads(stamp.read_text())
    except (OSError, ValueError):
        have = {}
    if have == want:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name, src in (("model.safetensors", FACTORY), ("config.json", FACTORY), ("onnx", FACTORY),
                      ("words.tsv", ASSETS)):
        if not (out / name).exists():
            (out / name).symlink_to(src / name)
    if stamp.exists():
        stamp.unlink()
    rest = ngram.without_sources(corpus, [shard])
    if len(rest.chars) == len(corpus.chars):
        raise SystemExit(f"no corpus shard named {shard!r}: names are {sorted(s.split('.')[0] for s in corpus.sources)}")
    general = [t for t, _ in read_tsv(GENERAL_FILE)]
    if have.get("char_lm") != want["char_lm"] or not (out / FILE_NAME).is_file():
        order, min_count = want["char_lm"]["settings"]
        chars = read_config(FACTORY)["chars"]
        built = ngram.build(chars, rest, order, min_count, general, log=log)
        ngram.save(out / FILE_NAME, chars, built, {"without_shard": shard})
    if want["word_lm"] is None:
        if (out / WORD_FILE).exists():
            (out / WORD_FILE).unlink()
    elif have.get("word_lm") != want["word_lm"] or not (out / WORD_FILE).is_file():
        from trainer import word_ngram

        w_order, w_min = want["word_lm"]["settings"]
        words, wbuilt = word_ngram.build(corpus, w_order, w_min, general, [shard], log=log)
        word_ngram.save(out / WORD_FILE, words, wbuilt, {"without_shard": shard})
    if have.get("chars_tsv") != want["chars_tsv"] or not (out / "chars.tsv").is_file():
        tmp = out / "chars.tsv.tmp"
        tmp.write_text("\n".join(recount_chars(ASSETS / "chars.tsv", rest)) + "\n", encoding="utf-8")
        os.replace(tmp, out / "chars.tsv")
    stamp.write_text(json.dumps(want))
    return out


def held_out_clauses(corpus, shard: str, n: int, seed: int = 0, min_chars: int = 4, max_chars: int = 30,
                     exclude=()) -> list[tuple[str, list[str]]]:
    """``n`` clauses of ``shard`` as the eval sets hold them (4–30 汉字, pypinyin's reading in context), drawn
    evenly at random (fixed ``seed``) from those that occur once in the whole corpus, so no other shard holds
    them either; none of ``exclude``. Sorted by their place in the shard."""
    from trainer.ngram import clause_hashes

    ids = [i for i, s in enumerate(corpus.sources) if s.split(".")[0] == shard]
    if not ids:
        raise SystemExit(f"no corpus shard named {shard!r}")
    hashes = clause_hashes(corpus.chars, corpus.offsets)
    uniq, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    lengths = np.diff(corpus.offsets)
    ok = np.isin(corpus.source, ids) & (counts[inverse] == 1) & (lengths >= min_chars) & (lengths <= max_chars)
    banned = set(exclude)
    pool = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for i in rng.permutation(pool).tolist():
        text, syls = corpus.clause(i)
        if text not in banned:
            picked.append(i)
        if len(picked) == n:
            break
    if len(picked) < n:
        raise SystemExit(f"shard {shard} has only {len(picked)} usable clauses")
    return [corpus.clause(i) for i in sorted(picked)]


STREAMS = ["tech_weekly", "tech_javaguide", "chat_kdconv"]  # the corpus shards replayed as one user's typing


def make_stream(source: str, n: int, start: float = 0.5, min_chars: int = 4, max_chars: int = 30,
                corpus: Path | None = None) -> list[tuple[str, list[str]]]:
    """``n`` consecutive clauses of shard ``source`` from ``start`` (a fraction of its lines) on."""
    from trainer.corpus import DEFAULT_CORPUS, annotate, clauses, corpus_files, eval_lines, normalise, open_text
    from trainer.evaluate import read_tsv
    from trainer.user_text import GENERAL_FILE, REPLAY_FILE

    files = [p for p in corpus_files(corpus or DEFAULT_CORPUS) if p.name.split(".")[0] == source]
    if not files:
        raise SystemExit(f"no corpus shard named {source!r} in {corpus or DEFAULT_CORPUS}")
    lines = list(open_text(files[0]))
    excluded = eval_lines() | {t for f in (REPLAY_FILE, GENERAL_FILE) for t, _ in read_tsv(f)}
    out = []
    for line in lines[int(len(lines) * start):]:
        for clause in clauses(normalise(line), min_chars):
            syllables = annotate(clause) if len(clause) <= max_chars and clause not in excluded else None
            if syllables is not None:
                out.append((clause, syllables))
        if len(out) >= n:
            break
    if len(out) < n:
        raise SystemExit(f"shard {source} has only {len(out)} usable clauses after {start:.0%} of it")
    return out[:n]
