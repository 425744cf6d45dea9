"""Corpus pipeline: a folder of text → clauses of 汉字 with one toneless syllable per character, cached.

Steps, per line: Unicode NFKC; traditional → simplified (OpenCC t2s) only for lines that hold characters t2s
would change; split into clauses, i.e. maximal runs of 汉字 (punctuation, Latin and digits break a clause);
annotate each clause with pypinyin, which uses its phrase table so polyphones follow context (银行 yin hang,
行走 xing zou); drop clauses with a character pypinyin cannot read or shorter than ``min_chars``; drop any
clause that is a line of an evaluation set (we never train on eval lines).

The result is cached as plain numpy arrays (no pickle) keyed by a fingerprint of the input files and the
pipeline settings, so a second run starts in seconds:

* ``chars``: every clause's characters concatenated, as code points (uint32);
* ``syls``: the syllable of each character as an index into ``engine.pinyin.SYLLABLES`` (uint16);
* ``offsets``: clause i is ``[offsets[i], offsets[i+1])``; ``source``: the file index of each clause.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import re
import sys
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from engine.pinyin import SYLLABLE_SET, SYLLABLES

PIPELINE_VERSION = 1
TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.xz")
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
SYLLABLE_INDEX = {s: i for i, s in enumerate(SYLLABLES)}
# Characters that t2s rewrites although they are also standard simplified characters (乾坤, 著作, 甦醒 …).
T2S_KEEP = set("乾藉塚榘著甦")
DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "corpus"
DEFAULT_EVAL_DIR = DEFAULT_CORPUS.parent / "eval"


def open_text(path: Path) -> Iterator[str]:
    """Lines of a .txt, .txt.gz or .txt.xz file (UTF-8; undecodable bytes replaced, never fatal)."""
    name = path.name
    opener = lzma.open if name.endswith(".xz") else gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            yield line.rstrip("\n")


def corpus_files(corpus: Path) -> list[Path]:
    corpus = Path(corpus)
    if corpus.is_file():
        return [corpus]
    if not corpus.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus} does not exist: pass --corpus DIR with .txt/.txt.gz/.txt.xz files")
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no .txt, .txt.gz or .txt.xz files in {corpus}")
    return files


@lru_cache(maxsize=1)
def _t2s():
    import opencc  # opencc-python-reimplemented: pure Python, loaded only when a corpus needs it

    table = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    traditional = set()
    for line in table.read_text(encoding="utf-8").splitlines():
        src, _, dst = line.partition("\t")
        if src and src not in dst.split() and src not in T2S_KEEP:
            traditional.add(src)
    return opencc.OpenCC("t2s"), frozenset(traditional)


def normalise(line: str) -> str:
    """NFKC, and traditional → simplified when the line holds traditional characters."""
    line = unicodedata.normalize("NFKC", line)
    converter, traditional = _t2s()
    if traditional.isdisjoint(line):
        return line
    converted = converter.convert(line)
    kept = {i: ch for i, ch in enumerate(line) if ch in T2S_KEEP}
    if kept and len(converted) == len(line):  # character-for-character: put the kept ones back
        converted = "".join(kept.get(i, ch) for i, ch in enumerate(converted))
    return converted


def clauses(line: str, min_chars: int = 2) -> list[str]:
    """Maximal runs of 汉字 in a normalised line, at least ``min_chars`` long."""
    return [m for m in HAN_RUN.findall(line) if len(m) >= min_chars]


def annotate(clause: str) -> list[str] | None:
    """One toneless syllable per character (ü as v), from pypinyin with phrase context; None if unreadable."""
    from pypinyin import lazy_pinyin

    syls = lazy_pinyin(clause, v_to_u=False, errors=lambda chars: ["?"] * len(chars))
    if len(syls) != len(clause):
        return None
    out = []
    for s in syls:
        s = "e" if s == "ê" else s
        if s not in SYLLABLE_SET:
            return None
        out.append(s)
    return out


def eval_lines(eval_dir: Path | None = DEFAULT_EVAL_DIR) -> frozenset[str]:
    """The 汉字 side of every eval set line: never to be trained on."""
    if eval_dir is None or not Path(eval_dir).is_dir():
        return frozenset()
    out = set()
    for path in Path(eval_dir).glob("*.tsv"):
        for line in path.read_text(encoding="utf-8").splitlines():
            han = line.split("\t", 1)[0].strip()
            if han:
                out.add(han)
    return frozenset(out)


@dataclass
class Corpus:
    chars: np.ndarray  # uint32 code points
    syls: np.ndarray  # uint16 indices into SYLLABLES
    offsets: np.ndarray  # int64, len = clauses + 1
    source: np.ndarray  # uint16 file index per clause
    sources: list[str]  # file names

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def clause(self, i: int) -> tuple[str, list[str]]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return ("".join(map(chr, self.chars[a:b].tolist())), [SYLLABLES[k] for k in self.syls[a:b].tolist()])

    def iter_clauses(self) -> Iterator[tuple[str, list[str]]]:
        for i in range(len(self)):
            yield self.clause(i)

    def stats(self) -> dict:
        lengths = np.diff(self.offsets)
        per_source = np.bincount(self.source, weights=lengths, minlength=len(self.sources)).astype(int)
        return {
            "clauses": int(len(self)),
            "chars": int(len(self.chars)),
            "distinct_chars": int(len(np.unique(self.chars))) if len(self.chars) else 0,
            "mean_clause_len": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
            "chars_per_source": {name: int(n) for name, n in zip(self.sources, per_source)},
        }


def _process_file(args: tuple[str, int, int, frozenset[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    path, min_chars, max_lines, excluded = args
    chars: list[int] = []
    syls: list[int] = []
    lengths: list[int] = []
    dropped = {"unreadable": 0, "eval": 0, "lines": 0}
    for n, line in enumerate(open_text(Path(path))):
        if max_lines and n >= max_lines:
            break
        dropped["lines"] += 1
        for clause in clauses(normalise(line), min_chars):
            if clause in excluded:
                dropped["eval"] += 1
                continue
            readings = annotate(clause)
            if readings is None:
                dropped["unreadable"] += 1
                continue
            chars.extend(map(ord, clause))
            syls.extend(SYLLABLE_INDEX[s] for s in readings)
            lengths.append(len(clause))
    return (np.array(chars, dtype=np.uint32), np.array(syls, dtype=np.uint16),
            np.array(lengths, dtype=np.int64), dropped)


def fingerprint(files: list[Path], min_chars: int, max_lines: int, excluded: frozenset[str]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": PIPELINE_VERSION, "min": min_chars, "max_lines": max_lines,
                         "eval": len(excluded)}).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    from engine.store import cache_dir

    return cache_dir()


def build_corpus(corpus_dir: Path = DEFAULT_CORPUS, cache_dir: Path | None = None, min_chars: int = 2,
                 max_lines_per_file: int = 0, workers: int | None = None, eval_dir: Path | None = DEFAULT_EVAL_DIR,
                 log=print) -> Corpus:
    """Load the annotated corpus from cache, or build it (in ``workers`` processes) and cache it."""
    files = corpus_files(Path(corpus_dir))
    excluded = eval_lines(eval_dir)
    key = fingerprint(files, min_chars, max_lines_per_file, excluded)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir() / "corpus"
    cached = cache_dir / f"corpus-{key}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as z:
            corpus = Corpus(z["chars"], z["syls"], z["offsets"], z["source"], json.loads(str(z["sources"])))
        log(f"corpus: loaded {len(corpus):,} clauses from cache {cached}")
        return corpus
    t0 = time.time()
    workers = workers or max(1, min(len(files), os.cpu_count() or 1))
    jobs = [(str(p), min_chars, max_lines_per_file, excluded) for p in files]
    # Biggest files first so the pool stays busy to the end.
    order = sorted(range(len(files)), key=lambda i: -files[i].stat().st_size)
    results: dict[int, tuple] = {}
    dropped = {"unreadable": 0, "eval": 0, "lines": 0}
    if workers == 1:
        for i in order:
            results[i] = _process_file(jobs[i])
            log(f"corpus: {files[i].name}: {len(results[i][2]):,} clauses")
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = {i: pool.submit(_process_file, jobs[i]) for i in order}
            for i in order:
                results[i] = futures[i].result()
                log(f"corpus: {files[i].name}: {len(results[i][2]):,} clauses ({time.time() - t0:.0f} s)")
    for r in results.values():
        for k in dropped:
            dropped[k] += r[3][k]
    chars = np.concatenate([results[i][0] for i in range(len(files))])
    syls = np.concatenate([results[i][1] for i in range(len(files))])
    lengths = np.concatenate([results[i][2] for i in range(len(files))])
    source = np.concatenate([np.full(len(results[i][2]), i, dtype=np.uint16) for i in range(len(files))])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    corpus = Corpus(chars, syls, offsets, source, [p.name for p in files])
    cache_dir.mkdir(parents=True, exist_ok=True)
    # a temp name of this process's own: ranks of one training run may build the same cache at once, and each
    # renames its complete copy into place (the same content; the last one wins)
    tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, chars=chars, syls=syls, offsets=offsets, source=source,
             sources=np.array(json.dumps(corpus.sources)))
    os.replace(tmp, cached)
    log(f"corpus: built {len(corpus):,} clauses, {len(chars):,} chars from {dropped['lines']:,} lines in "
        f"{time.time() - t0:.0f} s (dropped {dropped['unreadable']:,} unreadable, {dropped['eval']:,} eval "
        f"clauses); cached at {cached}")
    return corpus


def main(argv: Iterable[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="pinyin-ime corpus", description="Build (or load) the annotated corpus and print its stats.")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--max-lines", type=int, default=0, help="read at most N lines per file (0: all)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(list(argv) if argv is not None else None)
    corpus = build_corpus(args.corpus, args.cache, max_lines_per_file=args.max_lines, workers=args.workers,
                          log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(corpus.stats(), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
