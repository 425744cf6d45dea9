"""The prepared GPU run (trainer/gpu_run.py), on the CPU with a tiny model: train writes what the device tool
brings back (parts under its file limit, the config, the metrics, a summary with tokens/s and MFU), and fetch
joins it into a model the converter loads."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from trainer import gpu_run

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def carried(tmp_path_factory):
    """What ``prepare`` puts in .gpu/: the corpus shards and the eval sets (pypinyin is installed here)."""
    root = tmp_path_factory.mktemp("gpu")
    (root / "corpus").mkdir()
    shutil.copy2(DATA / "tiny_corpus.txt", root / "corpus" / "tiny_corpus.txt")
    (root / "eval").mkdir()
    shutil.copy2(DATA / "tiny_eval.tsv", root / "eval" / "dev.tsv")
    (root / "whl").mkdir()
    return root


def test_train_on_the_cpu_then_fetch_gives_a_loadable_model(carried, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gpu_run"])
    out = tmp_path / "OUT"
    summary = gpu_run.train(out, minutes=0.25, data=carried, size="tiny", tokens=256, lr=1e-3, warmup=2,
                            device="cpu", compile_model=False, part_bytes=1_000_000, work=tmp_path / "work")
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= gpu_run.PART_BYTES for p in out.iterdir())
    assert len(summary["parts"]) > 1  # the weights came back in pieces
    assert summary["steps"] > 0 and summary["tokens_per_s"] > 0 and 0 < summary["mfu"] < 1
    assert json.loads((out / "summary.json").read_text())["tokens"] == summary["tokens"]
    model_dir = gpu_run.fetch(out, tmp_path / "model")
    from engine.ime.converter import Converter

    conv = Converter.load(model_dir, runtime="torch", char_lm=False)
    assert len(conv.convert_segmented("ni hao", top=1)[0].text) == 2
    # a damaged part is refused, not joined
    first = out / summary["parts"][0]["name"]
    first.write_bytes(b"x" + first.read_bytes()[1:])
    with pytest.raises(ValueError, match="SHA-256"):
        gpu_run.fetch(out, tmp_path / "again")


def test_prepare_copies_what_the_run_reads_and_says_what_would_travel(tmp_path):
    """With the annotator's wheel already there (no download), prepare copies the corpus and eval sets and
    counts the bytes: the tracked tree, with the shipped LMs, is over the device tool's 64 MiB."""
    out = tmp_path / ".gpu"
    (out / "whl").mkdir(parents=True)
    (out / "whl" / "pypinyin-0.0-py3-none-any.whl").write_bytes(b"stand-in")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy2(DATA / "tiny_corpus.txt", corpus / "a.txt")
    sizes = gpu_run.prepare(corpus, DATA, out=out)
    assert (out / "corpus" / "a.txt").read_bytes() == (DATA / "tiny_corpus.txt").read_bytes()
    assert sizes["tracked_bytes"] > sizes["tracked_needed_bytes"] > 0
    assert sizes["fits"] == (sizes["tracked_bytes"] + sizes["carry_bytes"] <= gpu_run.TRAVEL_LIMIT)
    assert sizes["carry_bytes"] >= (DATA / "tiny_corpus.txt").stat().st_size
    assert all(f"'!/{p}'" in gpu_run.sparse_command() for p in gpu_run.NOT_NEEDED)
