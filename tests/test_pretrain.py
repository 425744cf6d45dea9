"""The real training loop on a tiny corpus: a finished model, exact resume after SIGKILL, DDP on gloo."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def pretrain_cmd(out: Path, cache: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "trainer.pretrain", "--corpus", str(DATA / "tiny_corpus.txt"), "--out", str(out),
            "--cache", str(cache), "--size", "tiny", "--max-steps", str(steps), "--tokens", "256",
            "--warmup", "2", "--log-every", "1", "--eval-every", "1000", "--eval-lines", "20",
            "--eval-file", str(DATA / "tiny_eval.tsv"), "--threads", "1", "--device", "cpu", *extra]


def env() -> dict:
    # fp32 on the CPU for every run here: left to itself each process times bf16 against fp32 once, and on a busy
    # machine two runs (the straight one and the killed one the resume test compares it with) could choose apart
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PINYIN_IME_CPU_BF16="0")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus-cache")


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("straight")
    r = subprocess.run(pretrain_cmd(out, cache, 12), env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_pretrain_writes_a_loadable_model_and_metrics(straight_run):
    from engine.ime.converter import Converter

    meta = json.loads((straight_run / "config.json").read_text())
    assert meta["training"]["steps"] == 12 and meta["training"]["tokens"] > 0
    assert "command" in meta["training"] and meta["training"]["dev"]["lines"] == 20
    lines = [json.loads(line) for line in (straight_run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in lines if "loss" in m]
    assert len(losses) == 12 and losses[-1] < losses[0]
    assert all("tokens_per_s" in m and "eta_s" in m for m in lines if "loss" in m)
    conv = Converter.load(straight_run)
    assert len(conv.convert_segmented("ni hao", top=2)[0].text) == 2


def test_resume_after_sigkill_finishes_identically(straight_run, cache, tmp_path):
    cmd = pretrain_cmd(tmp_path, cache, 12, "--checkpoint-minutes", "0")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = tmp_path / "checkpoint" / "state.json"
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            step = json.loads(state.read_text())["state"]["step"]
        except (OSError, ValueError, KeyError):
            step = 0
        if step >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "config.json").exists()  # it really died mid-run
    r = subprocess.run(cmd + ["--resume"], env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr, r.stderr
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["training"]["steps"] == 12
    a = load_file(str(straight_run / "model.safetensors"))
    b = load_file(str(tmp_path / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def free_port() -> int:
    with socket.socket() as s:  # a fixed port may be held by another process (the suite once failed here)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_keep_identical_weights(cache, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
           *pretrain_cmd(tmp_path, cache, 4)[1:]]
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    meta = json.loads((tmp_path / "config.json").read_text())["training"]
    sums = meta["rank_param_checksums"]
    assert meta["processes"] == 2 and len(sums) == 2 and sums[0] == sums[1]


def test_init_from_a_saved_model_starts_where_it_left_off(straight_run, cache, tmp_path):
    r = subprocess.run(pretrain_cmd(tmp_path, cache, 2, "--init-from", str(straight_run)), env=env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "initialised from" in r.stderr
    first = [json.loads(line) for line in (straight_run / "metrics.jsonl").read_text().splitlines()][0]["loss"]
    warm = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][0]["loss"]
    assert warm < first - 0.5
    bad = subprocess.run(pretrain_cmd(tmp_path / "other", cache, 2, "--init-from", str(straight_run)) +
                         ["--size", "small"], env=env(), capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--init-from" in bad.stderr


def test_head_only_gives_a_model_without_a_head_one_and_leaves_the_rest(cache, tmp_path):
    plain = tmp_path / "plain"
    r = subprocess.run(pretrain_cmd(plain, cache, 3, "--no-emission-head"), env=env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((plain / "config.json").read_text())["model"]["emission_head"] is False
    headed = tmp_path / "headed"
    r = subprocess.run(pretrain_cmd(headed, cache, 6, "--init-from", str(plain), "--head-only", "--lr", "1e-2"),
                       env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    before, after = load_file(str(plain / "model.safetensors")), load_file(str(headed / "model.safetensors"))
    assert sorted(set(after) - set(before)) == sorted(k for k in after if k.startswith("emit."))
    assert all(torch.equal(before[k], after[k]) for k in before)  # the encoder and decoder are untouched
    losses = [json.loads(line)["loss"] for line in (headed / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert losses[-1] < losses[0]
    from engine.ime.converter import Converter

    conv = Converter.load(headed)
    assert conv.uses_two_pass and len(conv.convert_segmented("ni hao", top=1)[0].text) == 2
    meta = json.loads((headed / "config.json").read_text())
    assert meta["training"]["steps"] == 3 and meta["head_training"]["steps"] == 6  # both runs recorded
    bad = subprocess.run(pretrain_cmd(tmp_path / "x", cache, 2, "--head-only"), env=env(), capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0 and "--init-from" in bad.stderr


def losses_of(out: Path) -> list[float]:
    return [m["loss"] for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in m]


def test_compile_trains_the_objective_as_the_eager_run_does(straight_run, cache, tmp_path):
    """--compile compiles the training objective (the loss, the head's included; was: the bare model, whose
    logits cannot be backpropagated), and a compiled run follows the eager one step for step; also with
    --head-only. aot_eager keeps the test quick; inductor compiles the same graphs into kernels."""
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    for out, extra in ((eager, ()), (compiled, ("--compile", "--compile-backend", "aot_eager"))):
        r = subprocess.run(pretrain_cmd(out, cache, 3, *extra), env=env(), capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
    assert losses_of(compiled) == pytest.approx(losses_of(eager), rel=1e-4)
    head = tmp_path / "head"
    r = subprocess.run(pretrain_cmd(head, cache, 2, "--init-from", str(straight_run), "--head-only", "--compile",
                                    "--compile-backend", "aot_eager"), env=env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    before, after = load_file(str(straight_run / "model.safetensors")), load_file(str(head / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("emit."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("emit."))


def test_character_accuracy_is_one_metric_everywhere():
    """pretrain's dev figure and the eval/finetune/benchmark figures count characters alike: by edit
    distance, so a guess that drops a character loses one, not every character after it."""
    from trainer.evaluate import char_accuracy, score

    assert char_accuracy(["中国人"], ["中国人"]) == 1.0
    assert char_accuracy(["国人民"], ["中国人民"]) == pytest.approx(0.75)  # position by position: 0 of 4
    assert char_accuracy(["你好", ""], ["你好", "中国"]) == pytest.approx(0.5)
    assert score([("中国人民", "zhong guo ren min")], lambda keys: ["国人民"])["char_acc"] == pytest.approx(0.75)


def test_init_from_keeps_the_models_own_vocabulary(cache, tmp_path):
    """A model made before the lexicon grew continues with its own characters (a character it lacks cuts the
    clause, as any out-of-vocabulary one does), instead of stopping on a vocabulary mismatch."""
    from engine.lexicon import default_lexicon
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, char_vocab, input_tokens, save_model

    fewer = char_vocab(default_lexicon().characters)[:-5]
    cfg = ModelConfig(n_inputs=len(input_tokens()), n_chars=len(fewer), max_len=64, **SIZES["tiny"])
    save_model(PinyinModel(cfg), tmp_path / "old", fewer)
    r = subprocess.run(pretrain_cmd(tmp_path / "new", cache, 2, "--init-from", str(tmp_path / "old")), env=env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "new" / "config.json").read_text())["chars"] == fewer


def test_a_cpu_trains_in_bf16_only_where_bf16_is_fast(monkeypatch):
    """Without bf16 instructions PyTorch emulates bf16 (a training step ~15× slower on an AVX2 CPU): fp32 there."""
    from trainer import pretrain

    cpu = torch.device("cpu")
    monkeypatch.setattr(pretrain, "_CPU_BF16", [False])
    with pretrain.autocast(cpu):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.float32
    monkeypatch.setattr(pretrain, "_CPU_BF16", [True])
    with pretrain.autocast(cpu):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    monkeypatch.setattr(pretrain, "_CPU_BF16", [])
    monkeypatch.setenv(pretrain.ENV_CPU_BF16, "0")
    assert pretrain.cpu_bf16_is_fast() is False
    monkeypatch.setattr(pretrain, "_CPU_BF16", [])
    monkeypatch.delenv(pretrain.ENV_CPU_BF16)
    assert isinstance(pretrain.cpu_bf16_is_fast(), bool)  # measured on this machine


def test_anneal_by_time_ends_a_time_budget_at_the_lowest_rate(cache, tmp_path):
    """With --anneal-by-time the cosine runs over --max-minutes when that comes before --max-steps: a run
    stopped by its time budget ends at the schedule's floor (10% of --lr), not at a high rate mid-schedule."""
    r = subprocess.run(pretrain_cmd(tmp_path, cache, 10 ** 6, "--anneal-by-time", "--max-minutes", "0.15",
                                    "--lr", "1e-3"), env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [row["lr"] for row in rows if "lr" in row]
    assert len(lrs) > 5 and lrs[-1] < 1.2e-4 and max(lrs) > 5e-4  # warmed up, then annealed within the budget
    assert json.loads((tmp_path / "config.json").read_text())["training"]["stop"] == "max-minutes"


def test_char_bleu_counts_clipped_character_ngrams():
    from trainer.evaluate import char_bleu

    assert char_bleu(["我们一起去公园"], ["我们一起去公园"]) == pytest.approx(1.0)
    # the last of seven characters wrong: precisions 6/7, 5/6, 4/5, 3/4 (the n-grams that avoid it)
    one = (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    assert char_bleu(["我们一起去公圆"], ["我们一起去公园"]) == pytest.approx(one)
    assert char_bleu(["的的的的", "我们一起去公园"], ["的", "我们一起去公园"]) == pytest.approx(
        (8 / 11 * 6 / 9 * 5 / 7 * 4 / 5) ** 0.25)  # 的 clipped to one match; corpus counts summed over lines
    assert char_bleu(["我们"], ["我们一起去公园"]) == 0.0  # too short for any 4-gram


def test_lamb_scales_each_step_by_the_trust_ratio():
    from trainer.lamb import Lamb

    big, small = torch.nn.Parameter(torch.full((4,), 10.0)), torch.nn.Parameter(torch.full((4,), 0.1))
    opt = Lamb([big, small], lr=0.01, weight_decay=0.0)
    (big.sum() + small.sum()).backward()  # the same gradient for both
    opt.step()
    # each tensor moves by lr × its own norm (the Adam update's first step is ±1 per element)
    assert (10.0 - big.detach()).norm() == pytest.approx(0.01 * 20.0, rel=1e-3)
    assert (0.1 - small.detach()).norm() == pytest.approx(0.01 * 0.2, rel=1e-3)


def test_scheduled_sampling_feeds_the_decoder_its_own_guesses(monkeypatch):
    from engine.lexicon import default_lexicon
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, allowed_matrix, char_vocab, input_tokens
    from trainer.pretrain import Objective

    lexicon = default_lexicon()
    chars = char_vocab(lexicon.characters)
    torch.manual_seed(0)
    model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=len(chars), max_len=64, emission_head=False,
                                    **SIZES["tiny"]))
    model.set_allowed(allowed_matrix(chars, lexicon.readings))
    tok = {t: i for i, t in enumerate(input_tokens())}
    x = torch.tensor([[tok[s] for s in ("ni", "hao", "shi", "jie")]])
    y = torch.tensor([[chars.index(c) for c in "你好世界"]])
    seen = []
    real = model.decoder_states
    monkeypatch.setattr(model, "decoder_states", lambda *a, **k: (seen.append(a[3] if len(a) > 3 else k.get("prev")),
                                                                  real(*a, **k))[1])
    objective = Objective(model)
    objective(x, y)
    assert seen == [None]  # rate 0: the reference only, one pass
    seen.clear()
    objective.sample_rate = 1.0
    objective(x, y)
    guess, prev = seen
    assert guess is None and prev is not None and prev[0, 0] == 1  # BOS first
    with torch.no_grad():
        own = model._logits(real(*model.encode(x), y), x).argmax(-1)
    assert torch.equal(prev[0, 1:], own[0, :-1])  # every later input is the model's own previous guess


def test_pretrain_runs_with_lamb_and_scheduled_sampling(cache, tmp_path):
    r = subprocess.run(pretrain_cmd(tmp_path, cache, 4, "--optimizer", "lamb", "--scheduled-sampling", "0.5"),
                       env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 4 and all(l == l for l in losses)  # four steps, no NaN
    assert json.loads((tmp_path / "config.json").read_text())["training"]["args"]["optimizer"] == "lamb"


def test_syllable_masker_masks_full_syllables_by_their_initials():
    from engine.runtime.model import input_tokens
    from trainer.pretrain import SyllableMasker

    tok = {t: i for i, t in enumerate(input_tokens())}
    x = torch.tensor([[tok["zhong"], tok["ai"], tok["g-"], tok["zho~"], 0]])
    masked, target = SyllableMasker(1.0, "cpu")(x)
    # every full syllable masked: by its initial, or by padding where it has none; the rest untouched, no target
    assert masked.tolist() == [[tok["zh-"], 0, tok["g-"], x[0, 3].item(), 0]]
    assert target.tolist() == [[tok["zhong"], tok["ai"], 0, 0, 0]]
    masked, target = SyllableMasker(0.0, "cpu")(x)
    assert torch.equal(masked, x) and not target.any()


def test_encoder_mlm_steps_train_the_encoder_alone(cache, tmp_path):
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, input_tokens
    from trainer.pretrain import Objective, SyllableMasker

    torch.manual_seed(0)
    model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=50, max_len=64, **SIZES["tiny"]))
    tok = {t: i for i, t in enumerate(input_tokens())}
    x = torch.tensor([[tok[s] for s in ("wo", "men", "shi", "peng", "you")]] * 4)
    objective = Objective(model, masker=SyllableMasker(0.5, "cpu"))
    objective.mlm = True
    first, last = train_briefly(objective, x, torch.zeros_like(x))
    assert last < first  # it learns to fill in the masked syllables
    assert model.dec_blocks[0].self_attn.q.weight.grad is None and model.char_emb.weight.grad is None
    assert model.enc_blocks[0].attn.q.weight.grad is not None
    # the loop: the first --encoder-mlm steps, then seq2seq; a finished, loadable model
    run_with_encoder_pretraining(tmp_path, cache, "--encoder-mlm")


def train_briefly(objective, x, y, steps: int = 30) -> tuple[float, float]:
    """(first loss, last loss) over ``steps`` AdamW steps of ``objective`` on one batch."""
    opt = torch.optim.AdamW(objective.model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = objective(x, y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses[0], losses[-1]


def run_with_encoder_pretraining(tmp_path, cache, option: str) -> None:
    """The loop with ``option`` (2 steps of encoder pretraining, then 2 of seq2seq) finishes with finite losses
    and records the option."""
    r = subprocess.run(pretrain_cmd(tmp_path, cache, 4, option, "2"), env=env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 4 and all(l == l for l in losses)
    name = option.lstrip("-").replace("-", "_")
    assert json.loads((tmp_path / "config.json").read_text())["training"]["args"][name] == "2"


def test_encoder_contrastive_steps_pair_each_input_with_its_own_text(cache, tmp_path):
    """``--encoder-contrastive``: the encoder's reading of each input must match its own text's characters
    better than the batch's other texts; the loss falls as it learns, reaches the encoder and the character
    embeddings but not the decoder, and the loop runs it first, then seq2seq."""
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, input_tokens
    from trainer.pretrain import Objective

    torch.manual_seed(0)
    model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=50, max_len=64, **SIZES["tiny"]))
    tok = {t: i for i, t in enumerate(input_tokens())}
    lines = [("wo", "men", "shi", "peng", "you"), ("ni", "hao"), ("zhong", "guo", "ren"), ("da", "xue", "sheng")]
    x = torch.zeros(len(lines), 5, dtype=torch.long)
    y = torch.zeros(len(lines), 5, dtype=torch.long)
    for i, syls in enumerate(lines):
        x[i, :len(syls)] = torch.tensor([tok[s] for s in syls])
        y[i, :len(syls)] = torch.arange(2 + 5 * i, 2 + 5 * i + len(syls))
    objective = Objective(model)
    objective.contrastive = True
    assert objective.pretraining_encoder
    first, last = train_briefly(objective, x, y)
    assert last < 0.5 * first  # each input picks out its own text
    assert model.dec_blocks[0].self_attn.q.weight.grad is None
    assert model.enc_blocks[0].attn.q.weight.grad is not None and model.char_emb.weight.grad is not None
    # a batch whose texts are swapped scores worse than the matched one
    assert model.contrastive_loss(x, y).item() < model.contrastive_loss(x, y.roll(1, dims=0)).item()
    run_with_encoder_pretraining(tmp_path, cache, "--encoder-contrastive")
