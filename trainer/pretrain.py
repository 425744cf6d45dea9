"""Pretraining: one training loop, nanoGPT-style, for the pinyin → 汉字 model.

    pinyin-ime pretrain --corpus DIR --out DIR [--size tiny|small|base] [--max-steps N] [--resume]
                        [--device auto|cpu|cuda|mps] [--max-minutes M] ...
    torchrun --nproc-per-node G -m trainer.pretrain --out DIR ...        (DDP: NCCL on GPUs, gloo on CPU)

AdamW with linear warm-up and cosine decay, gradient clipping, gradient accumulation, bf16 autocast (CUDA, and CPUs with
bf16 instructions: ``cpu_bf16_is_fast``; fp16 on MPS), optional ``torch.compile``. Every ``--checkpoint-minutes`` (and at the end) an atomic
checkpoint (``trainer.checkpoint``); ``--resume`` continues exactly: batches are a pure function of the step,
and model, optimizer, schedule and RNG state are restored. Progress goes to stderr (step, loss, tokens/s, ETA);
``metrics.jsonl`` in ``--out`` gets one JSON object per log/eval line (the app plots it). The finished model is
``--out``/model.safetensors + config.json, the format the engine loads.

New models carry an emission head (``engine.runtime.model.EmissionHead``), trained beside the decoder on the same
encoder pass (the two cross-entropies summed); ``--head-only`` trains just the head of an ``--init-from``
model, the rest frozen, which is how a model trained before the head existed gets one.

The seed's recipe, as options (measured in ``assets/model/MODEL.md``): ``--optimizer lamb``, ``--scheduled-sampling``,
``--encoder-mlm STEPS``: the first STEPS steps pretrain the encoder alone as a masked language model over
the pinyin (``SyllableMasker``, ``PinyinModel.mlm_loss``), then seq2seq training goes on from it, and
``--encoder-contrastive STEPS``: the first STEPS steps pair each input's pinyin with its own text against the
batch's other texts (``PinyinModel.contrastive_loss``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn

from engine.lexicon import default_lexicon
from engine.pinyin import SYLLABLES
from engine.runtime.model import (BOS, PAD, SIZES, ModelConfig, PinyinModel, allowed_matrix, char_vocab, input_tokens,
                                  read_config, save_model)
from trainer import checkpoint
from trainer.options import build_args
from trainer.batches import BatchConfig, BatchMaker, initial_tokens
from trainer.evaluate import char_accuracy, char_bleu, read_tsv
from trainer.corpus import build_corpus, fingerprint, corpus_files, eval_lines


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA GPU is available: use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps asked for, but MPS is not available: use --device auto or cpu")
    return torch.device(name)


ENV_CPU_BF16 = "PINYIN_IME_CPU_BF16"  # 1 / 0: train in bf16 on the CPU or not, instead of measuring


def autocast(device: torch.device):
    """Mixed precision for a training step: bf16 on CUDA, fp16 on MPS, and bf16 on a CPU only where it is fast
    (``cpu_bf16_is_fast``); fp32 otherwise."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16_is_fast()):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "mps":
        return torch.autocast("mps", dtype=torch.float16)
    return contextlib.nullcontext()


_CPU_BF16: list[bool] = []


def cpu_bf16_is_fast() -> bool:
    """Whether bf16 matrix products beat fp32 ones on this CPU, measured once per process (a few ms; or
    ``$PINYIN_IME_CPU_BF16``). Only CPUs with bf16 instructions (AVX512-BF16, AMX) run them natively; on the
    others PyTorch emulates bf16, and on this project's AVX2 EPYC a 1024² product ran at 1 GFLOP/s against
    167 in fp32: a training step took ~30 s instead of ~2."""
    if not _CPU_BF16:
        forced = os.environ.get(ENV_CPU_BF16)
        if forced in ("0", "1"):
            _CPU_BF16.append(forced == "1")
        else:
            a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))  # (not the training's RNG)
            times = {}
            for dtype in (torch.float32, torch.bfloat16):
                x = a.to(dtype)
                x @ x
                t0 = time.perf_counter()
                for _ in range(3):
                    x @ x
                times[dtype] = time.perf_counter() - t0
            _CPU_BF16.append(times[torch.bfloat16] < times[torch.float32])
    return _CPU_BF16[0]


def lr_at(step: int, max_steps: int, lr: float, warmup: int, min_ratio: float = 0.1) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def schedule_step(step: int, elapsed: float, args) -> int:
    """Where the learning-rate schedule is: the step, or with ``--anneal-by-time`` the point as far through
    ``--max-steps`` as the time spent is through ``--max-minutes`` when that is further (never inside warm-up)."""
    if not (args.anneal_by_time and args.max_minutes) or step < args.warmup:
        return step
    return max(step, int(args.max_steps * min(1.0, elapsed / (args.max_minutes * 60))))


def load_eval(path: Path, limit: int) -> list[tuple[str, list[str]]]:
    """The first ``limit`` lines of an eval file as (text, syllables); none when there is no file."""
    if not path or not Path(path).exists():
        return []
    return [(text, pinyin.split()) for text, pinyin in read_tsv(path)[:limit]]


@torch.no_grad()
def evaluate(model: PinyinModel, lines: list[tuple[str, list[str]]], chars: list[str], device, batch: int = 256) -> dict:
    """Greedy top-1 sentence and character accuracy (and BLEU) on (text, syllables) lines."""
    from engine.runtime.torch_backend import greedy

    if not lines:
        return {}
    tok = {t: i for i, t in enumerate(input_tokens())}
    was_training = model.training
    model.eval()
    guesses = []
    for i in range(0, len(lines), batch):
        chunk = lines[i:i + batch]
        t = max(len(s) for _, s in chunk)
        x = torch.zeros(len(chunk), t, dtype=torch.long)
        for k, (_, syls) in enumerate(chunk):
            x[k, :len(syls)] = torch.tensor([tok.get(s, 0) for s in syls])
        with autocast(device):
            y = greedy(model, x.to(device)).cpu().tolist()
        guesses += ["".join(chars[c] for c in ids[:len(syls)]) for (_, syls), ids in zip(chunk, y)]
    model.train(was_training)
    texts = [text for text, _ in lines]
    return {"sent_acc": sum(g == t for g, t in zip(guesses, texts)) / len(lines),
            "char_acc": char_accuracy(guesses, texts), "bleu": char_bleu(guesses, texts), "lines": len(lines)}


class Objective(nn.Module):
    """What a training step minimises: the decoder's cross-entropy, plus the emission head's when the model
    has one (sharing one encoder pass), or with ``head_only`` the head's alone over a frozen encoder.

    Scheduled sampling (Bengio et al., 2015): with ``sample_rate`` > 0 (the loop sets it each step) a first,
    no-grad decoder pass predicts every position, and each previous character the decoder reads is that
    prediction instead of the reference with probability ``sample_rate``: training then sees the mistakes it
    will have to continue from when it decodes alone."""

    def __init__(self, model: PinyinModel, restrict: bool = True, head_only: bool = False,
                 masker: "SyllableMasker | None" = None):
        super().__init__()
        self.model, self.restrict, self.head_only = model, restrict, head_only
        self.sample_rate = 0.0
        self.masker = masker
        # encoder pretraining, set by the loop each step: the masked-LM loss (--encoder-mlm), the contrastive
        # one (--encoder-contrastive); either or both replace the seq2seq losses while on
        self.mlm, self.contrastive = False, False

    @property
    def pretraining_encoder(self) -> bool:
        return self.mlm or self.contrastive

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.pretraining_encoder:  # the first --encoder-mlm / --encoder-contrastive steps
            mlm = m.mlm_loss(*self.masker(x)) if self.mlm else 0.0
            return mlm + (m.contrastive_loss(x, y) if self.contrastive else 0.0)
        if self.head_only:
            with torch.no_grad():
                enc, _ = m.encode(x)
            return m.emission_loss(x, y, enc)
        enc, mask = m.encode(x)
        prev = None
        if self.sample_rate > 0:
            with torch.no_grad():
                guess = m.teacher_forced(enc.detach(), mask, x, y, self.restrict).argmax(-1)
            bos = torch.full_like(y[:, :1], BOS)
            gold, own = torch.cat([bos, y[:, :-1]], dim=1), torch.cat([bos, guess[:, :-1]], dim=1)
            use = (torch.rand(y.shape, device=y.device) < self.sample_rate) & (gold > PAD)
            prev = torch.where(use, own, gold)
        loss = m.nll(m.decoder_states(enc, mask, y, prev), x, y, self.restrict)
        return loss + m.emission_loss(x, y, enc) if m.emit is not None else loss


class SyllableMasker:
    """The corruption of encoder pretraining (``--encoder-mlm``): each full syllable of an input is masked with
    probability ``rate``, by its initial where it has one (``zhong`` → ``zh-``: the position keeps what an
    abbreviation keeps, so the objective also teaches what abbreviated typing needs) and by padding where it
    has none (``ai``); ``__call__`` returns (the masked input, the targets: the syllable where one was masked,
    0 elsewhere)."""

    def __init__(self, rate: float, device):
        index = {t: i for i, t in enumerate(input_tokens())}
        mask_to = torch.full((len(index),), -1, dtype=torch.long)  # -1: not a full syllable: never masked
        mask_to[[index[s] for s in SYLLABLES]] = torch.from_numpy(initial_tokens()).clamp(min=0)  # none: padding
        self.rate, self.mask_to = rate, mask_to.to(device)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        to = self.mask_to[x]
        chosen = (to >= 0) & (torch.rand(x.shape, device=x.device) < self.rate)
        return torch.where(chosen, to, x), torch.where(chosen, x, torch.zeros_like(x))


def main(argv=None) -> int:
    args = build_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(args.device)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    main_proc = rank == 0
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if main_proc and not args.quiet else (lambda m: None)
    torch.manual_seed(args.seed + rank)
    args.out.mkdir(parents=True, exist_ok=True)

    lexicon = default_lexicon()
    # a new model's output vocabulary is the lexicon's characters; a continued one keeps its own (the lexicon
    # may have grown since: a character it lacks cuts the clause there, as any out-of-vocabulary one does)
    chars = read_config(args.init_from)["chars"] if args.init_from else char_vocab(lexicon.characters)
    corpus = build_corpus(args.corpus, args.cache, max_lines_per_file=args.max_lines, eval_dir=args.eval_dir, log=log)
    batches = BatchMaker(corpus, chars, BatchConfig(tokens=args.tokens), seed=args.seed)
    if args.head_only and (args.init_from is None or args.no_emission_head):
        raise ValueError("--head-only trains the emission head of an existing model: give --init-from DIR "
                         "(and not --no-emission-head)")
    cfg = ModelConfig(n_inputs=len(input_tokens()), n_chars=len(chars), max_len=64, dropout=args.dropout,
                      emission_head=not args.no_emission_head, **SIZES[args.size])
    model = PinyinModel(cfg)
    model.set_allowed(allowed_matrix(chars, lexicon.readings))
    model.to(device)
    if args.head_only:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("emit."))
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trained if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in trained if not (p.dim() >= 2 and "emb" not in n)]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if args.optimizer == "lamb":
        from trainer.lamb import Lamb

        optimizer = Lamb(groups, lr=args.lr, betas=(0.9, 0.98))
    else:
        optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), fused=device.type == "cuda")
    state = {"step": 0, "tokens": 0, "elapsed": 0.0}
    if args.init_from and not (args.resume and checkpoint.find(args.out)):
        from engine.runtime.model import load_model

        init, init_meta = load_model(args.init_from)
        if init_meta["chars"] != chars or replace(init.cfg, dropout=cfg.dropout,
                                                  emission_head=cfg.emission_head) != cfg:
            raise ValueError(f"--init-from {args.init_from}: its size differs from --size {args.size}; pick the "
                             f"matching --size")
        model.load_state_dict(init.state_dict(), strict=False)  # a model without a head: the head starts fresh
        log(f"initialised from {args.init_from} ({init_meta.get('training', {}).get('tokens', 0) / 1e6:.1f} M tokens)")
    if args.resume:
        found = checkpoint.find(args.out)
        if found:
            state = checkpoint.load(found, model, optimizer)
            log(f"resumed from {found} at step {state['step']}")
        else:
            log(f"no checkpoint in {args.out}: starting from scratch")
    if device.type == "cpu":
        # bf16 or fp32 is decided by timing both once per process: a resumed run takes the one its run began
        # with (on a busy machine the timing can come out the other way, and it would no longer continue the
        # same computation); the checkpoint keeps it
        if state.get("cpu_bf16") is not None and not _CPU_BF16:
            _CPU_BF16.append(bool(state["cpu_bf16"]))
        state["cpu_bf16"] = cpu_bf16_is_fast()
    masker = SyllableMasker(args.mlm_rate, device) if args.encoder_mlm else None
    objective = train_model = Objective(model, restrict=not args.no_restrict, head_only=args.head_only, masker=masker)
    if args.compile:  # the objective, so the step's loss (and the head's, or the head alone) is what is compiled
        train_model = torch.compile(train_model, dynamic=True, backend=args.compile_backend)  # shapes vary by batch
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(train_model, device_ids=[local_rank] if device.type == "cuda" else None)
    dev_lines = load_eval(args.eval_file, args.eval_lines) if main_proc else []
    n_params = model.num_params()
    log(f"model {args.size}: {n_params / 1e6:.2f} M parameters, {cfg.n_chars} characters; device {device}; "
        f"{world} process(es); corpus {len(corpus.chars) / 1e6:.1f} M characters")
    metrics_path = args.out / "metrics.jsonl"

    def write_metrics(entry: dict) -> None:
        if main_proc:
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def save_checkpoint() -> None:
        if main_proc:
            checkpoint.save(args.out, model, optimizer, state)
        if world > 1:
            torch.distributed.barrier()

    model.train()
    t_start = time.time() - state["elapsed"]
    t_log, tokens_log = time.time(), state["tokens"]
    last_ckpt = time.time()
    loss_sum = torch.zeros((), device=device)
    tokens_acc = torch.zeros((), dtype=torch.long, device=device)
    loss_n = 0
    stop_reason = "max-steps"
    while state["step"] < args.max_steps:
        step = state["step"]
        where = schedule_step(step, time.time() - t_start, args)
        lr = lr_at(where, args.max_steps, args.lr, args.warmup)
        objective.sample_rate = args.scheduled_sampling * min(1.0, where / max(1, args.max_steps))
        objective.mlm, objective.contrastive = step < args.encoder_mlm, step < args.encoder_contrastive
        for g in optimizer.param_groups:
            g["lr"] = lr
        for micro in range(args.accum):
            x, y = batches.batch(step * args.accum + micro, rank)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            sync = contextlib.nullcontext()
            if world > 1 and micro < args.accum - 1:
                sync = train_model.no_sync()
            with sync, autocast(device):
                loss = train_model(x, y)
            (loss / args.accum).backward()
            loss_sum += loss.detach()
            loss_n += 1
            tokens_acc += (y > 0).sum()  # stays on the device: no host sync in the inner loop
        torch.nn.utils.clip_grad_norm_([p for _, p in trained], args.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] = step + 1
        state["elapsed"] = time.time() - t_start
        at_log = state["step"] % args.log_every == 0 or state["step"] == args.max_steps
        stopping = args.stop_file is not None and args.stop_file.exists()  # one stat() a step
        if at_log or stopping or time.time() - last_ckpt >= args.checkpoint_minutes * 60 or (
                args.max_minutes and time.time() - t_start >= args.max_minutes * 60):
            state["tokens"] += int(tokens_acc) * world  # host sync only when logging or saving
            tokens_acc.zero_()
        if at_log:
            now = time.time()
            tps = (state["tokens"] - tokens_log) / max(1e-9, now - t_log)
            t_log, tokens_log = now, state["tokens"]
            avg = float(loss_sum) / max(1, loss_n)  # the only host sync, once per log interval
            loss_sum.zero_()
            loss_n = 0
            steps_left = args.max_steps - state["step"]
            eta = steps_left * state["elapsed"] / max(1, state["step"])
            if args.max_minutes:
                eta = min(eta, max(0.0, args.max_minutes * 60 - (time.time() - t_start)))
            log(f"step {state['step']}/{args.max_steps} | loss {avg:.4f} | lr {lr:.2e} | {tps:,.0f} tok/s | "
                f"{state['tokens'] / 1e6:.1f} M tokens | eta {eta / 60:.1f} min")
            write_metrics({"step": state["step"], "loss": avg, "lr": lr, "tokens": state["tokens"],
                           "tokens_per_s": tps, "elapsed": state["elapsed"], "eta_s": eta})
        if main_proc and dev_lines and (state["step"] % args.eval_every == 0):
            ev = evaluate(model, dev_lines, chars, device)
            log(f"eval step {state['step']}: dev sentence {ev['sent_acc']:.3f}, char {ev['char_acc']:.4f}, "
                f"BLEU {100 * ev['bleu']:.1f}")
            write_metrics({"step": state["step"], "tokens": state["tokens"], "dev_sent_acc": ev["sent_acc"],
                           "dev_char_acc": ev["char_acc"], "dev_bleu": ev["bleu"], "elapsed": state["elapsed"]})
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            save_checkpoint()
            last_ckpt = time.time()
        if args.max_minutes and time.time() - t_start >= args.max_minutes * 60:
            stop_reason = "max-minutes"
            break
        if stopping:
            stop_reason = "stopped"
            break
    save_checkpoint()
    if stop_reason == "stopped":  # paused or cancelled: the checkpoint is the state; no model is written
        write_metrics({"step": state["step"], "tokens": state["tokens"], "elapsed": state["elapsed"], "stopped": True})
        log(f"stopped at step {state['step']} ({args.stop_file} appeared); --resume continues from here")
        leave_process_group(world)
        return 0
    checksums = None
    if world > 1:  # every rank must hold the same weights; record them so a test (and a user) can check
        mine = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1).to(device)
        gathered = [torch.zeros_like(mine) for _ in range(world)]
        torch.distributed.all_gather(gathered, mine)
        checksums = [float(g) for g in gathered]
    if main_proc:
        ev = evaluate(model, dev_lines, chars, device) if dev_lines else {}
        files = corpus_files(args.corpus)
        record = {
            "command": "pinyin-ime pretrain " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
            "size": args.size, "steps": state["step"], "tokens": state["tokens"],
            "seconds": round(state["elapsed"], 1), "stop": stop_reason, "device": str(device), "processes": world,
            "corpus_fingerprint": fingerprint(files, 2, args.max_lines, eval_lines(args.eval_dir)),
            "params": n_params, "dev": ev, "args": {k: str(v) for k, v in vars(args).items()},
            "rank_param_checksums": checksums,
        }
        if args.head_only:  # the model's own training record stays; the head's run is recorded beside it
            base = json.loads((args.init_from / "config.json").read_text(encoding="utf-8"))
            extra = {k: v for k, v in base.items() if k not in ("format_version", "model", "input_tokens", "chars")}
            extra["head_training"] = record
        else:
            extra = {"training": record}
        save_model(model, args.out, chars, extra)
        log(f"saved model to {args.out} ({state['step']} steps, {state['tokens'] / 1e6:.1f} M tokens, "
            f"{state['elapsed'] / 60:.1f} min){'; dev ' + json.dumps(ev) if ev else ''}")
    leave_process_group(world)
    return 0


def leave_process_group(world: int) -> None:
    """All ranks leave together. A rank that tore its gloo group down while rank 0 was still evaluating and
    saving aborted at exit ("terminate called without an active exception"), failing the whole run."""
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
