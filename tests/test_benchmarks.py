"""The latency benchmark runs end to end and ends with its JSON line (no timing is asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_latency_benchmark_prints_its_json_line():
    r = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--file", str(REPO / "tests/data/tiny_eval.tsv"),
                        "--lines", "3", "--history", "50"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(last) == {"p50_ms", "p95_ms", "max_ms", "rss_mb", "keys"}
    assert last["keys"] > 10 and 0 < last["p50_ms"] <= last["p95_ms"] <= last["max_ms"]
    assert "50 committed lines in the history" in r.stdout
