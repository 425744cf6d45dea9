"""Personalization end to end with a tiny model: the real CLI on a real store, acceptance, atomic install,
a killed or cancelled run, revert/factory, hot swap in a running pipeline."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import store
from engine.lexicon import ENV_FACTORY
from engine.runtime.model_spec import read_meta
from engine.personal import files, loading, runs, versions

REPO = Path(__file__).resolve().parent.parent
@pytest.fixture
def factory(tiny, monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    return tiny


def finetune_cmd(home: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ime_app.cli", "finetune", "--home", str(home), "--json", "--lr", "1e-2",
            "--max-epochs", "5", "--batch-tokens", "128", "--patience", "8", "--replay-ratio", "0.2",
            "--min-lines", "50", "--general-lines", "200", "--max-seconds", "100", *extra]


def env(factory_dir: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **{ENV_FACTORY: str(factory_dir)})


def copy_model(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def install_copy(db, home: Path, tiny: Path, metrics: dict | None = None) -> str:
    version = versions.next_version(db, home)
    staged = files.new_staging_dir(home)
    staged.rmdir()
    copy_model(tiny, staged)
    files.write_meta(staged, {"kind": "personal", "version": version})
    versions.install(db, home, staged, version, metrics or {})
    return version


@pytest.fixture(scope="module")
def personalized(tiny, typed_home, tmp_path_factory):
    """A user data folder with typed text and the CLI's finetune run on it: (home, its stdout)."""
    home = typed_home(tmp_path_factory.mktemp("personalized") / "home")
    r = subprocess.run(finetune_cmd(home), env=env(tiny), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return home, r.stdout


def test_cli_finetune_installs_a_better_model_that_hot_swaps(factory, personalized):
    from engine.ime.pipeline import build_pipeline
    from engine.ime.session import Session

    home, stdout = personalized
    events = [json.loads(line) for line in stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds and "eval" in kinds
    start, done = events[0], events[-1]
    assert start["device"] == "cpu" and start["lines"] == 6 * 20 + 1 + 1  # 好的 and 明天见: two clauses
    progress = next(e for e in events if e["event"] == "progress")
    assert {"step", "steps", "loss", "eta_s", "device"} <= progress.keys()
    assert done["accepted"], done["reason"]
    assert done["after"]["sent_acc"] > done["before"]["sent_acc"] and done["version"] == "v1"
    model_dir = Path(done["model_dir"])
    assert (model_dir / "onnx" / "step.int8.onnx").is_file() and read_meta(model_dir)["version"] == "v1"
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".staging")]

    db = store.open_store(home)
    active = versions.resolve_active(db, home)
    assert (active.kind, active.version, active.path) == ("personal", "v1", model_dir)
    assert runs.new_text_since_last_run(db)["commits"] == 0
    store.record_commit(db, "你好", "ni hao", "nihao")
    new = runs.new_text_since_last_run(db)
    assert (new["commits"], new["chars"]) == (1, 2) and new["last_run"] is not None

    # hot swap: a session typing on the factory model goes on with the personal one, without a restart
    pipe = build_pipeline(factory, db=db)
    assert pipe.status.startswith("factory model")
    session = Session(pipe, on_commit=pipe.commit)
    for key in "womenyiqi":
        session.press(key)
    assert "personal model v1" in loading.reload_active(pipe, db, home)
    for key in "quchifan":
        session.press(key)
    assert session.candidates[0].text == "我们一起去吃饭"
    session.press("space")
    assert session.committed == ["我们一起去吃饭"]

    # the CLI lists it; revert and factory are one command each
    def run(*args):
        return subprocess.run([sys.executable, "-m", "ime_app.cli", "models", *args, "--home", str(home)],
                              env=env(factory), capture_output=True, text=True, timeout=60)

    listed = json.loads(run("list", "--json").stdout)
    assert [(v["version"], v["active"]) for v in listed["versions"]] == [("factory", False), ("v1", True)]
    assert "factory model" in run("revert").stdout
    assert versions.resolve_active(db, home).kind == "factory"
    assert "personal model v1" in run("use", "v1").stdout
    db.close()


def test_a_killed_or_cancelled_run_leaves_the_current_model_active(factory, typed_home, tmp_path):
    from engine.ime import pipeline
    home = typed_home(tmp_path / "home")
    db = store.open_store(home)
    install_copy(db, home, factory)  # v1 is active
    staging = lambda: [p for p in (home / "models").iterdir() if p.name.startswith(".staging")]  # noqa: E731

    # cancelled while training (the app's Cancel: SIGTERM): a clean stop, nothing left behind
    proc = subprocess.Popen(finetune_cmd(home, "--max-epochs", "500"), env=env(factory), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "progress":
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    done = json.loads(out.splitlines()[-1])
    assert proc.returncode == 3 and done["event"] == "done" and "cancelled" in done["reason"]
    assert not staging() and versions.resolve_active(db, home).version == "v1"

    # killed while the new model is being written: the old one stays active and loads
    proc = subprocess.Popen(finetune_cmd(home, "--max-epochs", "1"), env=env(factory), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not staging() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert staging(), "the run ended before it wrote anything"
    active = versions.resolve_active(db, home)
    assert (active.version, active.note) == ("v1", "")
    assert "personal model v1" in pipeline.build_pipeline(active.path).status
    versions.prune(db, home)  # what the killed run left behind goes at the next install
    assert not staging()
    db.close()


def test_acceptance_rule():
    from trainer.finetune import Verdict, decide

    held = lambda s, c=0.9: {"sent_acc": s, "char_acc": c}  # noqa: E731
    assert decide(held(0.50), held(0.60), held(0.40), held(0.395), 0.01).verdict is Verdict.ACCEPTED
    not_better = decide(held(0.50), held(0.50), held(0.40), held(0.40), 0.01)  # not better: rejected
    assert not not_better.accepted and not_better.verdict is Verdict.NOT_BETTER
    assert decide(held(0.50), held(0.45), held(0.40), held(0.41), 0.01).verdict is Verdict.NOT_BETTER  # worse
    loses = decide(held(0.50), held(0.60), held(0.40), held(0.385), 0.01)  # 1.5 points lost in general
    assert not loses.accepted and loses.verdict is Verdict.LOSES_GENERAL and "general" in loses.reason
    # the verdict, not the message's wording, is what decides: another current model's label changes the text
    assert decide(held(0.5), held(0.6), held(0.4), held(0.3), 0.01, "personal model v2").verdict is Verdict.LOSES_GENERAL
    assert decide(held(0.50, 0.90), held(0.50, 0.91), held(0.4), held(0.4), 0.01).accepted  # a tie: characters decide


def test_a_worse_model_is_rejected_and_the_current_one_stays(factory, personalized, tmp_path):
    """The current model (v1) knows the sentences; a short run from the factory model learns less: its model
    beats the factory model but not v1, and is not installed."""
    import shutil

    from trainer import finetune

    home = tmp_path / "home"
    shutil.copytree(personalized[0], home)
    db = store.open_store(home)
    for m in store.list_models(db):  # the copy's records point into the copy
        if m["kind"] == "personal":
            db.conn.execute("UPDATE models SET path = ? WHERE id = ?", (str(home / "models" / m["version"]), m["id"]))
    db.conn.commit()
    cfg = finetune.FinetuneConfig(lr=3e-3, max_epochs=1, batch_tokens=128, replay_ratio=0.2,
                                  min_lines=50, general_lines=200)
    done = finetune.personalize(cfg, lambda *a, **k: None, home=home, base=factory)
    assert done["train"]["steps"] > 0 and not done["accepted"] and done["version"] is None
    assert "does not beat the personal model v1" in done["reason"], done["reason"]
    assert versions.resolve_active(db, home).version == "v1"
    assert sorted(p.name for p in (home / "models").iterdir() if p.is_dir()) == ["v1"]
    db.close()


def test_versions_prune_revert_factory_and_a_broken_model(factory, tmp_path):
    home = tmp_path / "home"
    db = store.open_store(home)
    assert versions.resolve_active(db, home).kind == "factory"
    installed = [install_copy(db, home, factory) for _ in range(4)]
    assert installed == ["v1", "v2", "v3", "v4"]
    assert [v["version"] for v in versions.list_versions(db, home)] == ["factory", "v2", "v3", "v4"]  # 3 kept
    assert not (home / "models" / "v1").exists()
    assert versions.revert_to_previous(db, home).version == "v3"
    assert versions.revert_to_previous(db, home).version == "v2"
    assert versions.revert_to_previous(db, home).kind == "factory"
    assert versions.use_version(db, home, "v4").version == "v4"
    with pytest.raises(ValueError, match="no personal model"):
        versions.use_version(db, home, "v9")
    # a damaged active model: the factory model takes over, the files are kept aside, the user is told
    (home / "models" / "v4" / "config.json").write_text("{broken")
    active = versions.resolve_active(db, home)
    assert active.kind == "factory" and "personal model v4" in active.note and "broken" in active.note
    assert [p.name.split("-")[0] for p in (home / "models" / "broken").iterdir()] == ["v4"]
    assert [v["version"] for v in versions.list_versions(db, home)] == ["factory", "v2", "v3"]
    assert versions.next_version(db, home) == "v5"  # a version name is never reused
    # a folder renamed into place whose record never got written (killed in between) is removed by prune
    (home / "models" / "v5").mkdir()
    versions.prune(db, home)
    assert not (home / "models" / "v5").exists()
    db.close()


def test_hot_swap_keeps_the_old_model_when_the_new_one_cannot_load(factory, tmp_path):
    from engine.ime.pipeline import build_pipeline

    pipe = build_pipeline(factory)
    before = pipe.translator
    with pytest.raises(FileNotFoundError):
        pipe.swap_model(tmp_path)  # an empty folder
    assert pipe.translator is before and pipe.status.startswith("factory model")
    lexicon_only = build_pipeline(tmp_path)
    assert lexicon_only.model_dir is None and "lexicon only" in lexicon_only.status
    assert lexicon_only.swap_model(factory).startswith("factory model") and lexicon_only.model_dir == factory


def test_user_lines_keep_the_picked_pinyin_or_read_the_text(tmp_path):
    from trainer.user_text import commit_lines, split_held_out

    assert commit_lines("银行", "yin hang") == [("银行", ["yin", "hang"])]
    assert commit_lines("我在银行，你呢？", "") == [("我在银行", ["wo", "zai", "yin", "hang"]),
                                                  ("你呢", ["ni", "ne"])]
    assert commit_lines("hello", "") == []
    lines = [(str(i), ["a"]) for i in range(100)]
    train, held = split_held_out(lines, every=10, minimum=20)
    assert len(held) == 20 and len(train) == 80 and not set(map(str, train)) & set(map(str, held))


def test_lora_adapters_merge_into_the_same_function():
    import torch

    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, input_tokens
    from trainer.lora import add_adapters, merge_adapters

    torch.manual_seed(0)
    model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=50, max_len=16, **SIZES["tiny"])).eval()
    x, y = torch.randint(1, 400, (2, 5)), torch.randint(2, 50, (2, 5))
    params = add_adapters(model, rank=4)
    assert all(p.requires_grad for p in params) and not any(
        p.requires_grad for n, p in model.named_parameters() if not n.endswith((".a", ".b")))
    with torch.no_grad():
        for p in params:
            p.normal_()
        adapted = model(x, y, restrict=False)
        merged = merge_adapters(model)(x, y, restrict=False)
    assert torch.allclose(adapted, merged, atol=1e-4)
    assert not any(n.endswith((".a", ".b")) for n, _ in model.named_parameters())


def test_benchmark_streams_and_typing_a_line_as_a_user_would(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # benchmarks/ is not an installed package
    from benchmarks.personalize import accuracy, type_line
    from trainer.held_out import make_stream
    from engine.ime.pipeline import build_pipeline

    data = Path(__file__).resolve().parent / "data"
    lines = make_stream("tiny_corpus", 30, start=0.5, corpus=data)
    assert len(lines) == 30 and all(4 <= len(t) <= 30 and len(t) == len(s) for t, s in lines)
    assert lines == make_stream("tiny_corpus", 30, start=0.5, corpus=data)  # the same stream every time
    db = store.open_memory_store()
    pipe = build_pipeline(reuse=None, db=db)
    assert type_line(pipe, "我想喝咖啡", "wo xiang he ka fei".split())
    assert store.list_commits(db)[0]["text"] == "我想喝咖啡"
    assert store.list_phrases(db)  # what it picked was learned
    result = accuracy(pipe, [("我想喝咖啡", "wo xiang he ka fei".split())])
    assert result["sent_acc"] in (0.0, 1.0) and 0 <= result["char_acc"] <= 1


def test_a_full_disk_while_saving_the_model_keeps_the_current_one_and_says_so(factory, typed_home, tmp_path,
                                                                             monkeypatch, capsys):
    import errno

    import engine.runtime.model
    from trainer import finetune

    home = typed_home(tmp_path / "home")
    db = store.open_store(home)
    install_copy(db, home, factory)  # v1 is active

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine.runtime.model, "save_model", full)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code = finetune.main(finetune_cmd(home, "--max-epochs", "1")[4:])
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and done["event"] == "done" and "disk is full" in done["reason"]
    assert versions.resolve_active(db, home).version == "v1"
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".staging")]  # nothing left behind
    db.close()


@pytest.mark.parametrize("method", ["full", "top"])
def test_a_model_with_an_emission_head_trains_it_on_the_users_text_when_all_weights_train(method):
    import torch

    from engine.lexicon import default_lexicon
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, allowed_matrix, char_vocab, input_tokens
    from trainer.finetune import FinetuneConfig, train
    from trainer.user_text import read_lines

    torch.manual_seed(0)
    lex = default_lexicon()
    chars = char_vocab(lex.characters)
    model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=len(chars), max_len=64,
                                    emission_head=True, **SIZES["tiny"]))
    model.set_allowed(allowed_matrix(chars, lex.readings))
    lines = read_lines(REPO / "tests" / "data" / "tiny_eval.tsv")
    before = {k: v.clone() for k, v in model.emit.state_dict().items()}
    cfg = FinetuneConfig(method=method, lr=1e-2, max_epochs=2, batch_tokens=128, noise=False)
    train(model, lines[:30], lines[30:40], [], chars, cfg, torch.device("cpu"), time.time() + 60,
          lambda *a, **k: None, lambda: False)
    changed = any(not torch.equal(before[k], v) for k, v in model.emit.state_dict().items())
    assert changed == (method == "full")  # "top" trains the top decoder layers only
