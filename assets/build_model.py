"""Rebuild the shipped model in assets/model from the corpus (or package a finished training run).

    python -m assets.build_model [--minutes 125] [--steps 5000]     # train from scratch, then package
    python -m assets.build_model --from-run DIR                      # package a run made by `pinyin-ime pretrain`

Packaging copies ``model.safetensors``, ``config.json`` and ``metrics.jsonl`` into ``assets/model`` and writes
``assets/model/MODEL.md``: the exact training command, the corpus files' SHA-256, tokens, steps, wall time,
the dev accuracy curve and the model's size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from engine.lexicon import SHIPPED_MODEL_DIR
from trainer.corpus import DEFAULT_CORPUS, corpus_files

ASSETS = Path(__file__).resolve().parent
MODEL_DIR = SHIPPED_MODEL_DIR
DEFAULT_ARGS = ["--size", "small", "--warmup", "300", "--lr", "2e-3", "--log-every", "50", "--eval-every", "500",
                "--eval-lines", "500", "--checkpoint-minutes", "5"]


def corpus_sha256(corpus: Path) -> str:
    h = hashlib.sha256()
    for p in corpus_files(corpus):
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def package(run: Path, corpus: Path) -> None:
    meta = json.loads((run / "config.json").read_text(encoding="utf-8"))
    training = meta.get("training", {})
    MODEL_DIR.mkdir(exist_ok=True)
    for name in ("model.safetensors", "config.json", "metrics.jsonl"):
        shutil.copy2(run / name, MODEL_DIR / name)
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "dev_sent_acc" in line]
    size_mb = (MODEL_DIR / "model.safetensors").stat().st_size / 1e6
    rows = "\n".join(f"| {m['step']} | {m['tokens'] / 1e6:.1f} | {m['dev_sent_acc']:.1%} | {m['dev_char_acc']:.2%} |"
                     for m in curve)
    text = f"""# The shipped model

| | |
|---|---|
| size | {training.get('size')} — {training.get('params', 0) / 1e6:.2f} M parameters, {size_mb:.1f} MB (fp32 safetensors) |
| trained | {training.get('steps')} steps, {training.get('tokens', 0) / 1e6:.1f} M target characters, {training.get('seconds', 0) / 60:.0f} min on {training.get('device')} ({training.get('processes')} process(es)), stopped by {training.get('stop')} |
| command | `{training.get('command')}` |
| corpus | `{corpus}` — {len(corpus_files(corpus))} files, SHA-256 over names and bytes `{corpus_sha256(corpus)}`; pipeline fingerprint `{training.get('corpus_fingerprint')}` |
| dev (first 500 lines of dev.tsv, greedy) | {json.dumps(training.get('dev'))} |

Learning curve (greedy decoding on the first 500 lines of `../shared/data/eval/dev.tsv`):

| step | M tokens | dev sentence | dev char |
|---|---|---|---|
{rows}

Rebuild: `python -m assets.build_model` (trains from scratch with the settings above), or package another run
with `python -m assets.build_model --from-run DIR`.
"""
    (MODEL_DIR / "MODEL.md").write_text(text, encoding="utf-8")
    print(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-run", type=Path, default=None)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--work", type=Path, default=Path("build/model-run"))
    ap.add_argument("--minutes", type=float, default=125)
    ap.add_argument("--steps", type=int, default=5000)
    args = ap.parse_args(argv)
    run = args.from_run
    if run is None:
        from trainer import pretrain

        run = args.work
        code = pretrain.main(["--corpus", str(args.corpus), "--out", str(run), "--max-steps", str(args.steps),
                              "--max-minutes", str(args.minutes), "--resume", *DEFAULT_ARGS])
        if code:
            return code
    if not (run / "config.json").exists():
        print(f"{run} holds no finished model (config.json missing)", file=sys.stderr)
        return 2
    package(run, args.corpus)
    from engine.runtime.onnx_export import export_dir

    export_dir(MODEL_DIR)  # the ONNX graphs the app decodes with
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
