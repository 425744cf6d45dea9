"""Background training jobs: one registry in the user store, shared by the app and ``pinyin-ime jobs``.

A job is a row of the store's ``jobs`` table (state, pid, the pretraining arguments, its folder) plus its
folder: ``metrics.jsonl`` (progress, written by the trainer), ``log.txt`` (its output), ``checkpoint-*``
(written atomically every few minutes) and, once done, the model (``model.safetensors`` + ``config.json``).

    create → start: a detached process (``pinyin-ime jobs run ID``) that survives the window closing
    running → pause (or cancel): a ``STOP`` file in the folder; the trainer checkpoints at the next step and
              exits; the runner records ``paused`` (``cancelled``)
    paused/interrupted → resume: start again; ``--resume`` continues exactly from the last checkpoint
    running, but its process is gone (crash, reboot, SIGKILL) → ``reconcile`` marks it ``interrupted`` and,
              asked to, resumes it (the app does this when it starts)

Control goes through files and the store, not signals, so it works the same on Linux, macOS, Windows and in a
frozen app. The training loop itself never touches the store: progress is read from ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from engine import store
ACTIVE = ("running", "pausing", "cancelling")
STOP_FILE = "STOP"


def job_dir(home: Path, id: int) -> Path:
    return Path(home) / "jobs" / f"job-{id}"


def create(db, home: Path, args: list[str]) -> int:
    """Register a pretraining job (``args``: ``pinyin-ime pretrain`` options without ``--out``)."""
    if "--out" in args:
        raise ValueError("a job's output folder is its own (under the data folder): leave --out out")
    from trainer.options import build_args

    options = build_args(args + ["--out", "x"])  # bad options fail now, with argparse's message, not in the background
    check_corpus(options.corpus)
    id = store.add_job(db, "pretrain", list(args), "")
    out = job_dir(home, id)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)  # (inside the 0700 data folder)
    store.update_job(db, id, out_dir=out)
    return id


def check_corpus(corpus: Path) -> None:
    """Refuse a corpus the trainer could not read, before anything is registered or started: the trainer reads
    it first thing, but in the background, where a wrong path would only show up as a failed job after the
    command had said "started"."""
    from trainer.corpus import TEXT_SUFFIXES, corpus_files

    kinds = "/".join(TEXT_SUFFIXES)
    corpus = Path(corpus)
    if not corpus.exists():
        raise FileNotFoundError(f"corpus {corpus} does not exist; nothing was started. Pass --corpus with the "
                                f"folder that holds your training text ({kinds} files), or one such file")
    try:
        corpus_files(corpus)
    except FileNotFoundError:
        raise FileNotFoundError(f"corpus folder {corpus} has no text files ({kinds}); nothing was started. Pass "
                                f"--corpus with a folder that holds them, or one such file") from None


def bundled_cli() -> Path | None:
    """The bundled ``pinyin-ime`` executable next to a frozen app (None when running from source)."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).with_name("pinyin-ime" + (".exe" if os.name == "nt" else ""))
    return None


def runner_command(id: int, home: Path) -> list[str]:
    """The job process's argv: this module's ``run`` (from source), or the bundle's ``pinyin-ime jobs run``."""
    exe = bundled_cli()
    args = ["jobs", "run", str(id), "--home", str(home)]
    return [str(exe), *args] if exe is not None else [sys.executable, "-m", "trainer.jobs", *args[1:]]


def start(db, home: Path, id: int) -> int:
    """Start (or restart) job ``id`` in its own detached process; returns its pid."""
    job = _job(db, id)
    if job["state"] in ACTIVE and _alive(job["pid"]):
        raise ValueError(f"job {id} is already running (pid {job['pid']})")
    if job["state"] in ("done", "cancelled"):
        raise ValueError(f"job {id} is {job['state']}; create a new one")
    out = Path(job["out_dir"])
    (out / STOP_FILE).unlink(missing_ok=True)
    log = open(out / "log.txt", "ab")
    kwargs: dict = {"stdout": log, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL, "cwd": str(out)}
    if os.name == "nt":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
    else:
        kwargs["start_new_session"] = True  # not killed with the window or its terminal
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(Path(__file__).resolve().parent.parent),
                                                     env.get("PYTHONPATH", "")] if p)
    proc = subprocess.Popen(runner_command(id, home), env=env, **kwargs)
    log.close()
    store.update_job(db, id, state="running", pid=proc.pid, message="")
    return proc.pid


def pause(db, id: int) -> None:
    _stop(db, id, "pause", "pausing", "paused")


def cancel(db, id: int) -> None:
    _stop(db, id, "cancel", "cancelling", "cancelled")


def kill_running(db, timeout: float = 10.0) -> None:
    """Kill every live job runner now (SIGTERM to its process group, which holds any worker processes it
    started) and wait up to ``timeout`` seconds for them to go: for when their folders and records are about
    to be deleted, so the cooperative ``pause``/``cancel`` cannot be waited for."""
    import signal
    import time

    pids = [job["pid"] for job in store.list_jobs(db) if job["state"] in ACTIVE and job["pid"]]
    pids = [pid for pid in pids if _alive(pid)]  # (a live runner: its command line says so)
    for pid in pids:
        try:  # a job runs in its own session (POSIX): its group holds any worker processes it started
            os.killpg(pid, signal.SIGTERM)
        except (AttributeError, OSError):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.05)


def resume(db, home: Path, id: int) -> int:
    job = _job(db, id)
    if job["state"] not in ("paused", "interrupted", "failed", "queued"):
        raise ValueError(f"job {id} is {job['state']}; only a paused, interrupted or failed job resumes")
    return start(db, home, id)


def _stop(db, id: int, why: str, stopping: str, stopped: str) -> None:
    job = _job(db, id)
    if job["state"] in ACTIVE and _alive(job["pid"]):
        (Path(job["out_dir"]) / STOP_FILE).write_text(why)
        store.update_job(db, id, state=stopping)
    elif job["state"] not in ("done", "cancelled"):
        store.update_job(db, id, state=stopped, pid=None)


def reconcile(db, home: Path, restart: bool = False) -> list[int]:
    """Jobs marked running whose process is gone become ``interrupted`` (or, for a pause/cancel that was on its
    way, ``paused``/``cancelled``); with ``restart`` interrupted jobs resume. Returns the interrupted ids."""
    found = []
    for job in store.list_jobs(db):
        if job["state"] in ACTIVE and not _alive(job["pid"]):
            state = {"pausing": "paused", "cancelling": "cancelled"}.get(job["state"], "interrupted")
            if store.update_job(db, job["id"], state=state, pid=None, expect=(job["state"],)) and state == "interrupted":
                found.append(job["id"])
    if restart:
        for id in found:
            start(db, home, id)
    return found


def progress(job: dict) -> dict:
    """The latest training metrics of a job: step, loss, tokens/s, ETA, dev accuracy, and the curves."""
    path = Path(job["out_dir"]) / "metrics.jsonl"
    out: dict = {"loss_curve": [], "dev_curve": []}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            m = json.loads(line)
        except ValueError:
            continue  # a line being written
        if "loss" in m:
            out.update({k: m[k] for k in ("step", "loss", "tokens", "tokens_per_s", "eta_s", "elapsed") if k in m})
            out["loss_curve"].append((m["tokens"], m["loss"]))
        if "dev_sent_acc" in m:
            out["dev_sent_acc"] = m["dev_sent_acc"]
            out["dev_curve"].append((m["tokens"], m["dev_sent_acc"]))
    try:
        args = job["args"]
        out["max_steps"] = int(args[args.index("--max-steps") + 1]) if "--max-steps" in args else 20000
    except (ValueError, IndexError):
        pass
    return out


def run(db, home: Path, id: int) -> int:
    """The job process: train (resuming from the last checkpoint), then record how it ended."""
    from trainer import pretrain

    job = _job(db, id)
    out = Path(job["out_dir"])
    store.update_job(db, id, state="running", pid=os.getpid())
    try:
        pretrain.main(job["args"] + ["--out", str(out), "--resume", "--stop-file", str(out / STOP_FILE)])
    except BaseException as e:  # noqa: BLE001 - recorded, then re-raised for the log
        store.update_job(db, id, state="failed", pid=None, message=f"{type(e).__name__}: {e}"[:2000])
        raise
    stop = out / STOP_FILE
    if stop.exists():
        why = stop.read_text().strip()
        stop.unlink(missing_ok=True)
        store.update_job(db, id, state="cancelled" if why == "cancel" else "paused", pid=None)
    else:
        store.update_job(db, id, state="done", pid=None, message=f"model written to {out}")
    return 0


def _job(db, id: int) -> dict:
    job = store.get_job(db, id)
    if job is None:
        raise ValueError(f"no job {id}: see `pinyin-ime jobs list`")
    return job


def _alive(pid: int | None) -> bool:
    """Is ``pid`` a live job runner? (A reused pid after a reboot is not: its command line must match.)"""
    if not pid:
        return False
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return False  # a zombie: finished, not yet reaped
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"jobs" in cmdline and b"run" in cmdline
    except OSError:
        return True  # no /proc (macOS): the pid answered


def main(argv: list[str] | None = None) -> int:
    """``pinyin-ime jobs list | start PRETRAIN-OPTIONS | pause|resume|cancel ID`` (``run ID`` is what ``start``
    spawns)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["start"]:  # everything after it is for the trainer, except our --home
        rest, home_arg = argv[1:], None
        if "--home" in rest:
            i = rest.index("--home")
            home_arg, rest = rest[i + 1], rest[:i] + rest[i + 2:]
        home = store.home_dir(home_arg)
        db = store.open_store(home)
        id = create(db, home, rest)
        print(f"job {id} started (pid {start(db, home, id)}); follow it with `pinyin-ime jobs list`")
        return 0
    ap = argparse.ArgumentParser(prog="pinyin-ime jobs", description="Background training jobs.",
                                 epilog="start takes `pinyin-ime pretrain` options (without --out), e.g. "
                                        "pinyin-ime jobs start --corpus DIR --size small --max-steps 20000")
    ap.add_argument("action", choices=["list", "start", "pause", "resume", "cancel", "run"])
    ap.add_argument("id", nargs="?", type=int)
    ap.add_argument("--home", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    home = store.home_dir(args.home)
    db = store.open_store(home)
    if args.action == "list":
        reconcile(db, home)
        jobs = [{**j, "progress": {k: v for k, v in progress(j).items() if not k.endswith("_curve")}}
                for j in store.list_jobs(db)]
        if args.json:
            print(json.dumps(jobs, ensure_ascii=False))
        for j in [] if args.json else jobs:
            p = j["progress"]
            line = f"{j['id']:4d}  {j['state']:<11} step {p.get('step', 0)}/{p.get('max_steps', '?')}"
            if "loss" in p:
                line += f"  loss {p['loss']:.3f}  {p.get('tokens_per_s', 0):,.0f} tok/s  eta {p.get('eta_s', 0) / 60:.0f} min"
            if "dev_sent_acc" in p:
                line += f"  dev {p['dev_sent_acc']:.1%}"
            print(line + (f"  ({j['message']})" if j["message"] else "") + f"  {j['out_dir']}")
        return 0
    if args.id is None:
        raise ValueError(f"give the job id: pinyin-ime jobs {args.action} ID (see `pinyin-ime jobs list`)")
    if args.action == "run":
        return run(db, home, args.id)
    if args.action == "resume":
        reconcile(db, home)
        print(f"job {args.id} resumed (pid {resume(db, home, args.id)})")
    else:
        (pause if args.action == "pause" else cancel)(db, args.id)
        print(f"job {args.id}: {store.get_job(db, args.id)['state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
