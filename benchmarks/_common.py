"""What every benchmark prints first: the machine and the commit, so numbers can be compared."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from engine.lexicon import SHIPPED_MODEL_DIR

REPO = Path(__file__).resolve().parent.parent
EVAL_DIR = REPO.parent / "shared" / "data" / "eval"


def dev_sweep_args(description: str):
    """The argument parser both tuning sweeps start from: which file, how many lines, raw keys, which model."""
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--file", type=Path, default=EVAL_DIR / "dev.tsv")
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR)
    return ap


def peers_dir() -> Path:
    """Where the peer engines are built: ``$PINYIN_IME_PEERS``, else ``../shared/peers`` when its setup.sh
    built ``bin/`` there (as root it can), else ``/tmp/peers`` (where setup.sh builds when that folder is
    read-only; its ``score.py`` is the shared one)."""
    env = os.environ.get("PINYIN_IME_PEERS")
    if env:
        return Path(env)
    shared = REPO.parent / "shared" / "peers"
    if (shared / "bin").is_dir() or not Path("/tmp/peers/bin").is_dir():
        return shared
    return Path("/tmp/peers")


def peers_score_py(peers: Path) -> Path:
    """The peers' ``score.py``: in their build folder, or the shared one (a /tmp/peers build has none)."""
    here = peers / "score.py"
    return here if here.is_file() else REPO.parent / "shared" / "peers" / "score.py"


def machine() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                    text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {"commit": commit + ("+dirty" if dirty else ""), "cpu": cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_eval(path: Path) -> list[tuple[str, list[str]]]:
    """``汉字<TAB>pinyin`` lines → (text, syllables)."""
    from trainer.evaluate import read_tsv

    return [(text, pinyin.split()) for text, pinyin in read_tsv(path)]


def percentiles(values: list[float], *ps: float) -> list[float]:
    s = sorted(values)
    return [s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] for p in ps]


def keys_with_typos(keys: str, rng, rate: float):
    """The keys of one line as the typing benchmarks press them: now and then (seeded, ``rate`` of the keys
    after the first) a wrong letter first, taken back with backspace."""
    for i, key in enumerate(keys):
        if i and rng.random() < rate:
            yield rng.choice("abcdefghijklmnopqrstuvwxyz")
            yield "backspace"
        yield key
