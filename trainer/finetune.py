"""Personalization: fine-tune the model on the user's own text, check it, and install it safely.

    pinyin-ime finetune [--home DIR | --tsv FILE] [--base DIR] [--out DIR] [--device auto|cpu|cuda|mps]
                        [--max-seconds S] [--method full|lora|top] [--json]
    python -m trainer.finetune ... --progress-json          (the same; what the app's button runs)

1. Data (``trainer.user_text``): the user's commits from the store in ``--home`` (or a ``汉字<TAB>pinyin`` file,
   ``--tsv``); every 10th line is held out. As many general lines from ``assets/personalize/replay.tsv`` are
   mixed in (replay), and the inputs get the pretraining's abbreviation noise, so the model keeps what it knew.
2. Train from ``--base`` (default: the factory model) with AdamW, bf16 autocast on CPU/CUDA (fp16 on MPS):
   ``FinetuneConfig.method`` is all weights (``full``, the default), low-rank adapters merged into the weights
   afterwards (``lora``) or the top decoder layers only (``top``); the default was chosen by measurement
   (docs/personalize.md). The held-out loss is checked twice an epoch; training stops when it stops improving
   (the best weights are kept) or when the time budget (``--max-seconds``, everything included) says so.
3. Check, the way the CLI converts a line (ONNX Runtime, int8 weights, ``line_accuracy``): the new model is accepted
   only if its top-1 sentence accuracy on the held-out lines beats the current model's, and it loses at most
   ``general_tolerance`` (1 point) on ``assets/personalize/general.tsv`` against the model it was trained from.
   A model that beats the current one but fails the general check is merged back towards the base model
   (WiSE-FT: ``base + alpha · change``, ``merge_alphas``) and checked again, while time allows.
4. Install (``engine.personal.versions.install``): written and exported into a staging folder, fsynced,
   renamed into ``<home>/models/vN`` and made active in one store transaction; versions beyond the last 3 are
   pruned.
   With ``--out DIR`` (needed with ``--tsv``) an accepted model is written there instead (atomically).

A kill at any moment leaves the old model active; SIGTERM/SIGINT cancel cleanly (staging removed, old model
active); so does ``--stop-file F`` when F appears (for platforms without signals). With ``--progress-json``
stdout carries one JSON object a line: ``start``, ``progress`` (step, steps, loss, eta_s, device), ``eval``,
``phase``, and a last ``done`` (accepted, reason, before/after, general_before/after, seconds, model_dir,
version). Exit status: 0 done (accepted or not), 2 bad input or too little text, 3 cancelled, 1 failure.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine import store
from engine.lexicon import factory_model_dir
from engine.runtime.model_spec import PAD, read_config, read_meta
from engine.personal import files, runs, versions
from engine.personal.run_lock import run_lock
from trainer.user_text import GENERAL_FILE, REPLAY_FILE, Line, lines_from_store, read_lines, split_held_out

LEARNING_RATES = {"full": 1e-4, "lora": 1e-3, "top": 1e-3}  # per method, chosen on the tuning streams


@dataclass
class FinetuneConfig:
    method: str = "full"  # "full" (all weights), "lora" (low-rank adapters) or "top" (the top decoder layers)
    lr: float | None = None  # peak learning rate (linear warm-up, cosine decay); None: LEARNING_RATES[method]
    max_epochs: int = 4  # passes over the user's lines (early stopping may end sooner)
    replay_ratio: float = 1.0  # general lines per user line in every epoch
    batch_tokens: int = 768  # target characters per batch (lines of similar length batched together)
    evals_per_epoch: int = 2  # held-out checks per epoch, for early stopping
    patience: int = 2  # checks without improvement before stopping
    held_out_every: int = 10
    min_lines: int = 100  # fewer user lines than this: nothing to learn from yet
    max_lines: int = 5000  # the newest commits used
    top_layers: int = 2  # "top": how many decoder blocks are trained
    lora_rank: int = 8
    noise: bool = True  # the pretraining's abbreviation noise on the inputs
    general_tolerance: float = 0.01  # sentence accuracy the general check may lose against the base model
    general_lines: int = 0  # check on the first N lines of general.tsv only (0: all; fewer is faster, noisier)
    merge_alphas: tuple[float, ...] = (1.0, 0.7, 0.5)  # share of the change kept, tried in turn (see module doc)
    max_seconds: float = 120.0  # the whole run, checks and export included
    seed: int = 0
    threads: int = 0  # CPU threads (0: all cores)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else LEARNING_RATES[self.method]


class Cancelled(Exception):
    pass


class Reporter:
    """Progress as JSON lines on stdout (``--progress-json``) or as text on stderr."""

    def __init__(self, as_json: bool, quiet: bool = False):
        self.as_json, self.quiet = as_json, quiet

    def __call__(self, event: str, **fields) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif not self.quiet:
            if event == "progress":
                text = (f"step {fields['step']}/{fields['steps']} | loss {fields['loss']:.4f} | "
                        f"eta {fields['eta_s']:.0f} s")
            elif event == "done":
                text = ("accepted: " if fields["accepted"] else "not accepted: ") + fields["reason"]
            else:
                text = json.dumps(fields, ensure_ascii=False)
            print(f"{event}: {text}" if event not in ("progress", "done") else text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Measuring a model the way the app types
# ---------------------------------------------------------------------------------------------------------------

def line_accuracy(model_dir: Path | str, lines: list[Line], cancelled=lambda: False) -> dict:
    """Top-1 whole-line sentence and character accuracy of the model in ``model_dir``, as the CLI's
    ``convert --segmented`` converts (ONNX Runtime, int8 weights; the two passes of ``engine.runtime.two_pass`` when
    the model has an emission head, else the beam search)."""
    from engine.ime.converter import Converter, ConverterSettings
    from trainer.evaluate import char_accuracy

    converter = Converter.load(model_dir, runtime="onnx", settings=ConverterSettings(int8=True))
    guesses = []
    t0 = time.perf_counter()
    for text, syllables in lines:
        if cancelled():
            raise Cancelled
        found = converter.convert_syllables(syllables, 1)
        guesses.append(found[0].text if found else "")
    texts = [text for text, _ in lines]
    return {"sent_acc": sum(g == t for g, t in zip(guesses, texts)) / max(1, len(lines)),
            "char_acc": char_accuracy(guesses, texts), "lines": len(lines),
            "ms_per_line": round((time.perf_counter() - t0) * 1e3 / max(1, len(lines)), 2)}


def general_accuracy(model_dir: Path, lines: list[Line], cache_dir: Path | None) -> dict:
    """``line_accuracy`` on the general check set, cached per model and check set in ``cache_dir``."""
    import hashlib

    from engine.runtime.onnx_backend import checksum

    lines_key = hashlib.sha256("\n".join(t for t, _ in lines).encode()).hexdigest()[:12]
    key = f"{checksum(model_dir)}-{len(lines)}-{lines_key}"
    path = cache_dir / "general-check.json" if cache_dir else None
    cache = {}
    if path and path.exists():
        with contextlib.suppress(OSError, ValueError):
            cache = json.loads(path.read_text(encoding="utf-8"))
    if key not in cache:
        cache[key] = line_accuracy(model_dir, lines)
        if path:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache), encoding="utf-8")
            os.replace(tmp, path)
    return cache[key]


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------

class Examples:
    """Lines as (syllable indices, character ids) arrays; batches of similar length with the pretraining's
    input noise (``trainer.batches.BatchMaker.noisy_input``)."""

    def __init__(self, chars: list[str], noise: bool):
        from engine.pinyin import SYLLABLES
        from trainer.batches import BatchConfig, BatchMaker
        from trainer.corpus import Corpus

        self.char_id = {c: i for i, c in enumerate(chars)}
        self.syl_id = {s: i for i, s in enumerate(SYLLABLES)}
        one = Corpus(np.array([0x4e00], np.uint32), np.zeros(1, np.uint16), np.array([0, 1]), np.zeros(1, np.uint16),
                     ["-"])  # BatchMaker wants a corpus; only its input tables and noise are used here
        self.maker = BatchMaker(one, chars, BatchConfig())
        self.noise = noise

    def encode(self, lines: list[Line]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for text, syllables in lines:
            ys = [self.char_id.get(c, -1) for c in text]
            if min(ys, default=-1) < 2:
                continue  # a character outside the model's vocabulary
            out.append((np.array([self.syl_id[s] for s in syllables]), np.array(ys)))
        return out

    def inputs(self, syl: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if self.noise and rng is not None:
            return self.maker.noisy_input(rng, syl)
        return self.maker.syl_tok[syl]

    def batches(self, examples, batch_tokens: int, rng: np.random.Generator | None, shuffle: bool = True):
        """Lists of (x, y) LongTensors, lines of similar length together (little padding)."""
        import torch

        order = sorted(range(len(examples)), key=lambda i: (len(examples[i][1]), rng.random() if rng else 0))
        groups, cur = [], []
        for i in order:
            if cur and (len(cur) + 1) * len(examples[i][1]) > batch_tokens:
                groups.append(cur)
                cur = []
            cur.append(i)
        if cur:
            groups.append(cur)
        if shuffle and rng is not None:
            rng.shuffle(groups)
        for group in groups:
            t = max(len(examples[i][1]) for i in group)
            x = np.zeros((len(group), t), dtype=np.int64)
            y = np.zeros((len(group), t), dtype=np.int64)
            for k, i in enumerate(group):
                syl, ys = examples[i]
                x[k, :len(ys)] = self.inputs(syl, rng)
                y[k, :len(ys)] = ys
            yield torch.from_numpy(x), torch.from_numpy(y)


def trainable_parameters(model, cfg: FinetuneConfig) -> list:
    """Set up ``cfg.method`` on ``model``; returns the parameters to train."""
    if cfg.method == "full":
        return list(model.parameters())
    if cfg.method == "top":
        for p in model.parameters():
            p.requires_grad_(False)
        params = [p for m in [*model.dec_blocks[-cfg.top_layers:], model.dec_ln] for p in m.parameters()]
        for p in params:
            p.requires_grad_(True)
        return params
    if cfg.method == "lora":
        from trainer.lora import add_adapters

        return add_adapters(model, cfg.lora_rank)
    raise ValueError(f"unknown method {cfg.method!r}: use full, top or lora")


@dataclass
class TrainResult:
    steps: int
    epochs: float
    stop: str  # "early-stopping", "max-epochs", "time"
    best_held_loss: float
    start_held_loss: float
    seconds: float

    @property
    def improved(self) -> bool:
        return self.best_held_loss < self.start_held_loss


def held_out_loss(model, examples, ex: Examples, device) -> float:
    """Mean cross-entropy per character on the held-out lines (teacher-forced, no noise): what early stopping
    watches (one batched forward pass; decoding them would cost several)."""
    import torch

    from trainer.pretrain import autocast

    model.eval()
    total = chars = 0.0
    with torch.no_grad():
        for x, y in ex.batches(examples, 4096, None, shuffle=False):
            x, y = x.to(device), y.to(device)
            with autocast(device):
                logits = model(x, y)
            n = int((y != PAD).sum())
            total += float(torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten(),
                                                              ignore_index=PAD)) * n
            chars += n
    model.train()
    return total / max(1.0, chars)


def train(model, train_lines: list[Line], held: list[Line], replay: list[Line], chars: list[str],
          cfg: FinetuneConfig, device, deadline: float, report, cancelled) -> TrainResult:
    """Fine-tune ``model`` in place; it ends with the weights that did best on the held-out lines (adapters
    merged in)."""
    import torch

    from trainer.pretrain import Objective, autocast, lr_at

    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    ex = Examples(chars, cfg.noise)
    user, general, held_ex = ex.encode(train_lines), ex.encode(replay), ex.encode(held)
    n_replay = int(round(cfg.replay_ratio * len(user))) if general else 0

    def epoch_examples(epoch: int) -> list:  # the user's lines and this epoch's share of the general lines
        return user + [general[(epoch * n_replay + i) % len(general)] for i in range(n_replay)]

    per_epoch = sum(1 for _ in ex.batches(epoch_examples(0), cfg.batch_tokens, None, shuffle=False))
    steps = per_epoch * cfg.max_epochs
    params = trainable_parameters(model, cfg)
    # when the emission head is among what trains, it learns the user's text beside the decoder (whole-line
    # conversion's first pass proposes from it)
    head = {id(p) for p in model.emit.parameters()} if model.emit is not None else set()
    objective = Objective(model) if head & {id(p) for p in params} else model.loss
    model.to(device)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(0.9, 0.98), weight_decay=0.0)
    eval_at = {round(per_epoch * (k + 1) / cfg.evals_per_epoch) for k in range(cfg.evals_per_epoch)}
    start_loss = best_loss = held_out_loss(model, held_ex, ex, device)
    report("eval", step=0, held_loss=round(start_loss, 4), best=True)
    best_state, bad_checks, step, stop, checked = None, 0, 0, "max-epochs", 0
    warmup = max(1, min(20, steps // 10))
    losses: list[float] = []
    t0 = time.time()
    model.train()
    for epoch in range(cfg.max_epochs):
        for k, (x, y) in enumerate(ex.batches(epoch_examples(epoch), cfg.batch_tokens, rng), 1):
            if cancelled():
                raise Cancelled
            # the schedule decays over the steps there is time for, when that is fewer than planned
            left = max(0.0, deadline - time.time())
            planned = steps if not step else min(steps, step + int(left * step / (time.time() - t0)))
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step, max(planned, step + 1), cfg.learning_rate, warmup)
            x, y = x.to(device), y.to(device)
            with autocast(device):
                loss = objective(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            elapsed = time.time() - t0
            eta = min((steps - step) * elapsed / step, max(0.0, deadline - time.time()))
            report("progress", step=step, steps=steps, epoch=round(epoch + k / per_epoch, 2),
                   loss=round(sum(losses[-20:]) / len(losses[-20:]), 4), eta_s=round(eta, 1), device=str(device))
            out_of_time = time.time() >= deadline
            if k in eval_at or (out_of_time and checked < step):  # the time's up: what it learned so far counts
                checked = step
                held_loss = held_out_loss(model, held_ex, ex, device)
                improved = held_loss < best_loss
                if improved:
                    best_loss, bad_checks = held_loss, 0
                    best_state = {n: t.detach().clone() for n, t in model.state_dict().items()}
                else:
                    bad_checks += 1
                report("eval", step=step, held_loss=round(held_loss, 4), best=improved)
                if bad_checks >= cfg.patience:
                    stop = "early-stopping"
                    break
            if out_of_time:
                stop = "time"
                break
        if stop != "max-epochs":
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if cfg.method == "lora":
        from trainer.lora import merge_adapters

        merge_adapters(model)
    model.eval()
    return TrainResult(step, round(step / max(1, per_epoch), 2), stop, round(best_loss, 4), round(start_loss, 4),
                       round(time.time() - t0, 1))


def merged(base_state: dict, tuned_state: dict, alpha: float) -> dict:
    """``base + alpha · (tuned − base)``: alpha 1 is the fine-tuned model, 0 the base (WiSE-FT, Wortsman et al.
    2022: most of what was learned survives a partial step back, more of the general loss does not)."""
    return {n: base_state[n] + alpha * (t - base_state[n]) for n, t in tuned_state.items()}


class Verdict(Enum):
    """What the acceptance rule found."""
    ACCEPTED = "accepted"
    NOT_BETTER = "not better on your lines"  # merging back towards the base cannot help: it only loses more
    LOSES_GENERAL = "loses general accuracy"  # merging back towards the base may keep enough


class Decision(NamedTuple):
    verdict: Verdict
    reason: str  # for the user

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED


def decide(before: dict, after: dict, general_base: dict, general_after: dict, tolerance: float,
           current: str = "current model") -> Decision:
    """The acceptance rule: better than the current model on the user's held-out lines (sentence accuracy,
    then character accuracy on a tie), and at most ``tolerance`` sentence accuracy lost on the general check
    against the base model."""
    beats = (after["sent_acc"], after["char_acc"]) > (before["sent_acc"], before["char_acc"])
    keeps = general_after["sent_acc"] >= general_base["sent_acc"] - tolerance - 1e-9
    if not beats:
        return Decision(Verdict.NOT_BETTER, f"it does not beat the {current} on your held-out lines ({after['sent_acc']:.1%} vs "
                       f"{before['sent_acc']:.1%} sentences, {after['char_acc']:.1%} vs {before['char_acc']:.1%} "
                       f"characters)")
    if not keeps:
        return Decision(Verdict.LOSES_GENERAL, f"it loses too much general accuracy ({general_after['sent_acc']:.1%} "
                        f"vs {general_base['sent_acc']:.1%} for the base model; at most {tolerance:.0%} may be lost)")
    return Decision(Verdict.ACCEPTED, f"held-out sentences {before['sent_acc']:.1%} → {after['sent_acc']:.1%}, general "
                  f"{general_base['sent_acc']:.1%} → {general_after['sent_acc']:.1%}")


# ---------------------------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------------------------

def personalize(cfg: FinetuneConfig, report, *, home: Path | None = None, tsv: Path | None = None,
                base: Path | None = None, out: Path | None = None, device_name: str = "auto",
                cancelled=lambda: False) -> dict:
    """One personalization run (see the module docstring); returns the ``done`` event's fields. Raises
    ValueError for unusable input and Cancelled when ``cancelled()`` turns true."""
    t_start = time.time()
    deadline = t_start + cfg.max_seconds
    base = Path(base) if base else factory_model_dir()
    read_config(base)  # a clear error now rather than after minutes
    install = out is None  # into the user's models (and make it active); else write it to ``out``
    if install and home is None:
        raise ValueError("say where the model goes: a user data folder (--home) or --out DIR")
    db = store.open_store(home) if home is not None else None
    staging = None
    try:
        if tsv is None:
            lines, last_commit = lines_from_store(db, cfg.max_lines)
        else:
            lines, last_commit = read_lines(tsv)[-cfg.max_lines:], 0
        if db is not None:
            current = versions.resolve_active(db, home)
            current_dir, current_label = current.path, current.label
            cache_dir = files.models_dir(home)
        else:
            current_dir, current_label, cache_dir = base, f"base model {base}", None
        if len(lines) < cfg.min_lines:
            raise ValueError(f"only {len(lines)} lines of your own text so far; personalization needs at least "
                             f"{cfg.min_lines}: type more and try again")
        train_lines, held = split_held_out(lines, cfg.held_out_every)
        replay, general = read_lines(REPLAY_FILE), read_lines(GENERAL_FILE)[:cfg.general_lines or None]

        import torch

        from engine.runtime.torch_backend import allowed_for
        from engine.runtime.model import load_model, save_model
        from engine.runtime.onnx_export import export
        from trainer.pretrain import pick_device

        device = pick_device(device_name)
        if device.type == "cpu":
            torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
        report("start", device=str(device), threads=torch.get_num_threads(), method=cfg.method,
               lines=len(lines), train_lines=len(train_lines), held_out_lines=len(held), replay_lines=len(replay),
               base=str(base), current=current_label, max_seconds=cfg.max_seconds, config=asdict(cfg))

        report("phase", phase="check-current")
        before = line_accuracy(current_dir, held, cancelled)
        general_base = general_accuracy(base, general, cache_dir)
        same = Path(current_dir).resolve() == base.resolve()
        general_before = (general_base if same else read_meta(current_dir).get("general_after")
                          or general_accuracy(current_dir, general, cache_dir))
        report("eval", phase="current", held=before, general=general_before)
        # one check of a new model: its export and its two checks at the rate just measured; training leaves
        # time for two (the fine-tuned model, and one merged back if that fails the general check)
        check_s = 8.0 + before["ms_per_line"] / 1e3 * (len(held) + len(general)) * 1.5
        checks = min(2, len(cfg.merge_alphas))

        model, meta = load_model(base)
        model.set_allowed(allowed_for(meta["chars"]))
        base_state = {n: t.detach().clone() for n, t in model.state_dict().items()}
        result = train(model, train_lines, held, replay, meta["chars"], cfg, device,
                       deadline - checks * check_s - 5.0, report, cancelled)
        tuned_state = {n: t.detach().cpu().float() for n, t in model.state_dict().items()}
        base_state = {n: t.cpu().float() for n, t in base_state.items()}
        model.cpu().float()
        done = {"accepted": False, "reason": "", "before": before, "after": None, "general_before": general_before,
                "general_base": general_base, "general_after": None, "train": {**asdict(result)}, "alpha": None,
                "device": str(device), "method": cfg.method, "lines": len(lines), "train_lines": len(train_lines),
                "held_out_lines": len(held), "model_dir": None, "version": None}
        if not result.improved:
            done["reason"] = ("training did not improve on your held-out lines: the current model stays" if result.steps
                              else f"no time was left to train within {cfg.max_seconds:.0f} s: allow more time")
            return _finish_run(done, db, install, last_commit, t_start)

        for n, alpha in enumerate(cfg.merge_alphas):
            if n and time.time() + check_s > deadline:
                done["reason"] += "; no time left to merge it back further"
                break
            report("phase", phase="export", alpha=alpha)
            model.load_state_dict(merged(base_state, tuned_state, alpha))
            staging = files.new_staging_dir(home) if install else _staging_next_to(out)
            save_model(model, staging, meta["chars"], {"finetune": {"base": str(base), "alpha": alpha,
                                                                     **asdict(result)}})
            with contextlib.redirect_stdout(sys.stderr):
                export(model, staging)
            report("phase", phase="check-new", alpha=alpha)
            after = line_accuracy(staging, held, cancelled)
            general_after = line_accuracy(staging, general, cancelled)
            decision = decide(before, after, general_base, general_after, cfg.general_tolerance, current_label)
            done.update(accepted=decision.accepted, verdict=decision.verdict.value, reason=decision.reason,
                        after=after, general_after=general_after, alpha=alpha)
            report("eval", phase="new", alpha=alpha, held=after, general=general_after, accepted=decision.accepted)
            if decision.verdict is not Verdict.LOSES_GENERAL:  # only general accuracy can come back by merging
                break
            shutil.rmtree(staging, ignore_errors=True)
            staging = None
        if cancelled():
            raise Cancelled
        if done["accepted"]:
            meta_out = {"kind": "personal" if install else "fine-tuned", "base": str(base), "created_at": time.time(),
                        **{k: v for k, v in done.items() if k != "model_dir"}}
            if install:
                version = versions.next_version(db, home)
                files.write_meta(staging, {**meta_out, "version": version})
                versions.install(db, home, staging, version, {k: done[k] for k in (
                    "before", "after", "general_before", "general_after", "alpha", "lines", "method", "device")})
                done["model_dir"], done["version"] = str(files.models_dir(home) / version), version
            else:
                files.write_meta(staging, meta_out)
                _replace_dir(staging, out)
                done["model_dir"] = str(out)
            staging = None
        return _finish_run(done, db, install, last_commit, t_start)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if db is not None:
            db.close()


def _finish_run(done: dict, db, install: bool, last_commit: int, t_start: float) -> dict:
    if install:
        runs.mark_run(db, last_commit, done["accepted"], done["version"])
    done["seconds"] = round(time.time() - t_start, 1)
    return done


def _staging_next_to(out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def _replace_dir(staged: Path, out: Path) -> None:
    """Put ``staged`` at ``out`` (a previous model there is moved aside first and removed after)."""
    files.fsync_tree(staged)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staged, out)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------

def build_args(argv=None) -> argparse.Namespace:
    d = FinetuneConfig()
    ap = argparse.ArgumentParser(prog="pinyin-ime finetune",
                                 description="Fine-tune the model on your own text; install it if it is better.")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--home", type=Path, default=None,
                     help="user data folder whose typed text is used (default: $PINYIN_IME_HOME or the platform's)")
    src.add_argument("--tsv", type=Path, default=None,
                     help="train on this 汉字<TAB>pinyin file instead (needs --out)")
    ap.add_argument("--base", type=Path, default=None, help="model to start from (default: the factory model)")
    ap.add_argument("--out", type=Path, default=None,
                    help="write an accepted model here instead of installing it into the user data folder")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--max-seconds", type=float, default=d.max_seconds,
                    help="hard limit for the whole run; training stops early to stay within it")
    ap.add_argument("--method", default=d.method, choices=["full", "lora", "top"])
    ap.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default per method: {LEARNING_RATES})")
    ap.add_argument("--max-epochs", type=int, default=d.max_epochs)
    ap.add_argument("--replay-ratio", type=float, default=d.replay_ratio)
    ap.add_argument("--batch-tokens", type=int, default=d.batch_tokens)
    ap.add_argument("--patience", type=int, default=d.patience,
                    help="held-out checks without improvement before stopping")
    ap.add_argument("--merge-alphas", type=float, nargs="+", default=list(d.merge_alphas),
                    help="shares of the change to try in turn while the general check fails (1: no merging back)")
    ap.add_argument("--general-lines", type=int, default=d.general_lines,
                    help="check general accuracy on the first N lines of the general set only (0: all)")
    ap.add_argument("--min-lines", type=int, default=d.min_lines)
    ap.add_argument("--threads", type=int, default=d.threads)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--stop-file", type=Path, default=None,
                    help="cancel as soon as this file exists (like SIGTERM; for platforms without signals)")
    ap.add_argument("--progress-json", "--json", dest="json", action="store_true",
                    help="print progress as one JSON object a line on stdout (for the app)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.tsv is not None and args.out is None:
        ap.error("--tsv needs --out DIR: where to write the fine-tuned model")
    return args


def main(argv=None) -> int:
    args = build_args(argv)
    cfg = FinetuneConfig(method=args.method, lr=args.lr, max_epochs=args.max_epochs, replay_ratio=args.replay_ratio,
                         batch_tokens=args.batch_tokens, patience=args.patience, merge_alphas=tuple(args.merge_alphas),
                         min_lines=args.min_lines, general_lines=args.general_lines, max_seconds=args.max_seconds,
                         seed=args.seed, threads=args.threads)
    report = Reporter(args.json, args.quiet)
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    t0 = time.time()

    def cancelled() -> bool:
        return stop["signal"] is not None or bool(args.stop_file and args.stop_file.exists())

    def finish(code: int, reason: str) -> int:
        if not args.json and code != 3:
            print(f"error: {reason}", file=sys.stderr)
        report("done", accepted=False, reason=reason, seconds=round(time.time() - t0, 1), model_dir=None, version=None)
        return code

    try:
        home = store.home_dir(args.home) if args.tsv is None else None
        with run_lock(home) if home is not None else contextlib.nullcontext():
            done = personalize(cfg, report, home=home, tsv=args.tsv, base=args.base, out=args.out,
                               device_name=args.device, cancelled=cancelled)
    except Cancelled:
        return finish(3, "cancelled: the current model stays active")
    except (ValueError, FileNotFoundError) as e:
        return finish(2, str(e))
    except OSError as e:
        if e.errno == errno.ENOSPC:  # full disk while writing the new model: the staged copy is removed
            return finish(1, "the disk is full: free some space and run it again; the current model stays active")
        return finish(1, str(e))
    except RuntimeError as e:
        return finish(1, str(e))
    report("done", **done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
