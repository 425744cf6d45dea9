"""Background pretraining jobs through the registry the app uses: SIGKILL and resume, pause, cancel, the CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import store
from trainer import jobs

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def job_args(cache: Path, steps: int) -> list[str]:
    return ["--corpus", str(DATA / "tiny_corpus.txt"), "--cache", str(cache), "--size", "tiny",
            "--max-steps", str(steps), "--tokens", "256", "--warmup", "2", "--log-every", "1",
            "--eval-every", "1000", "--eval-lines", "20", "--eval-file", str(DATA / "tiny_eval.tsv"),
            "--threads", "1", "--device", "cpu", "--checkpoint-minutes", "0", "--seed", "3"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def wait(db, id, states, timeout=180.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = store.get_job(db, id)
        if job["state"] in states:
            return job
        jobs.reconcile(db, Path(job["out_dir"]).parent.parent)
        time.sleep(0.2)
    raise AssertionError(f"job {id} stayed {store.get_job(db, id)['state']}; log: "
                         + (Path(store.get_job(db, id)["out_dir"]) / "log.txt").read_text()[-3000:])


def final_loss(job) -> tuple[int, float]:
    lines = [json.loads(l) for l in (Path(job["out_dir"]) / "metrics.jsonl").read_text().splitlines()]
    last = [m for m in lines if "loss" in m][-1]
    return last["step"], last["loss"]


def test_a_killed_job_resumes_and_finishes_like_an_uninterrupted_one(home, tmp_path):
    db = store.open_store(home)
    cache = tmp_path / "cache"
    straight = jobs.create(db, home, job_args(cache, 24))
    jobs.start(db, home, straight)
    done = wait(db, straight, ("done", "failed"))
    assert done["state"] == "done", done["message"]

    id = jobs.create(db, home, job_args(cache, 24))
    pid = jobs.start(db, home, id)
    out = Path(store.get_job(db, id)["out_dir"])
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() or final_loss(store.get_job(db, id))[0] < 8:
        assert time.time() < deadline, (out / "log.txt").read_text()[-2000:]
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # mid-run, as a crash or a reboot would
    time.sleep(0.3)
    assert jobs.reconcile(db, home) == [id] and store.get_job(db, id)["state"] == "interrupted"
    step_at_kill = final_loss(store.get_job(db, id))[0]
    assert 8 <= step_at_kill < 24
    jobs.resume(db, home, id)
    finished = wait(db, id, ("done", "failed"))
    assert finished["state"] == "done", finished["message"]
    step, loss = final_loss(finished)
    ref_step, ref_loss = final_loss(done)
    assert step == ref_step == 24
    assert loss <= ref_loss + 1e-3  # resume is exact: the same batches, optimizer and RNG state
    cfg = json.loads((Path(finished["out_dir"]) / "config.json").read_text())
    assert cfg["training"]["steps"] == 24


def test_pause_resume_and_cancel(home, tmp_path):
    db = store.open_store(home)
    cache = tmp_path / "cache"
    id = jobs.create(db, home, job_args(cache, 400))
    jobs.start(db, home, id)
    out = Path(store.get_job(db, id)["out_dir"])
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists():
        assert time.time() < deadline, (out / "log.txt").read_text()[-2000:]
        time.sleep(0.05)
    jobs.pause(db, id)
    paused = wait(db, id, ("paused",))
    assert paused["pid"] is None and not (out / "model.safetensors").exists()
    step = final_loss(paused)[0]
    assert any(out.glob("checkpoint*"))
    jobs.resume(db, home, id)
    deadline = time.time() + 120
    while final_loss(store.get_job(db, id))[0] <= step:
        assert time.time() < deadline
        time.sleep(0.05)
    jobs.cancel(db, id)
    cancelled = wait(db, id, ("cancelled",))
    assert final_loss(cancelled)[0] < 400
    with pytest.raises(ValueError, match="cancelled"):
        jobs.resume(db, home, id)


def test_the_cli_sees_the_same_jobs(home, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "ime_app.cli", "jobs"]
    r = subprocess.run(cli + ["start", *job_args(tmp_path / "cache", 3), "--home", str(home)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "job 1 started" in r.stdout, r.stderr
    db = store.open_store(home)
    wait(db, 1, ("done",))
    r = subprocess.run(cli + ["list", "--json", "--home", str(home)], env=env, capture_output=True, text=True)
    listed = json.loads(r.stdout)
    assert listed[0]["state"] == "done" and listed[0]["progress"]["step"] == 3
    r = subprocess.run(cli + ["start", "--size", "huge", "--home", str(home)], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "huge" in r.stderr  # bad options fail at once, not in the background
    r = subprocess.run(cli + ["pause", "99", "--home", str(home)], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "no job 99" in r.stderr


@pytest.mark.parametrize("corpus", ["/nonexistent", "empty"])
def test_a_job_without_a_readable_corpus_is_refused_before_it_starts(home, tmp_path, corpus):
    """It said "started" and failed later, in the background."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("not a corpus")
    corpus = corpus if corpus.startswith("/") else str(tmp_path / corpus)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "ime_app.cli", "jobs"]
    r = subprocess.run(cli + ["start", "--corpus", corpus, "--size", "tiny", "--home", str(home)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "started" not in r.stdout and "Traceback" not in r.stderr
    assert corpus in r.stderr and ("does not exist" in r.stderr or "no text files" in r.stderr)
    assert "--corpus" in r.stderr and "nothing was started" in r.stderr  # what to pass instead
    assert store.list_jobs(store.open_store(home)) == []  # nothing registered, nothing running
