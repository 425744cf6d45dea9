"""Personalize model: fine-tune on what this user typed, in a separate process, with progress and a verdict.

The run is ``pinyin-ime finetune --home HOME --progress-json`` (``trainer.finetune``, the same code as the
CLI) started with ``QProcess``: its JSON lines drive the dialog (phase, step, loss, ETA, device), typing goes
on in the window meanwhile, Cancel drops a stop file the trainer checks (the current model stays active).
When the run ends, ``finished_run`` carries its "done" event: accepted or not and why, accuracy before/after
on the user's held-out text and on the general check set, and the time. The window then hot-swaps the model.

How much of the user's text there is comes from one function, ``user_text``, for the toolbar button's label and
for this dialog: it counts lines the way the trainer reads them (``trainer.user_text.lines_from_store``). With
fewer than the trainer needs (``--min-lines``, 100) the dialog says so up front — how much there is, how much is
needed — and starts no run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from engine import store
from engine.personal import runs
from trainer.finetune import FinetuneConfig
from trainer.jobs import bundled_cli
from trainer.user_text import commit_lines

PHASES = {"check-current": "measuring the current model on your text…", "train": "training…",
          "export": "exporting the new model…", "check-new": "measuring the new model…"}


def _cli_command(*args: str) -> list[str]:
    """``pinyin-ime ARGS`` as an argv: the CLI module from source, or the bundled executable."""
    exe = bundled_cli()
    return [str(exe), *args] if exe is not None else [sys.executable, "-m", "ime_app.cli", *args]


_LINES_CACHE: dict[tuple, tuple[int, int]] = {}  # (text, pinyin) of a commit → (lines, 汉字) as the trainer reads it


def min_lines(extra_args: list[str] | None = None) -> int:
    """The fewest lines of the user's text a run trains on: the trainer's ``--min-lines`` (its default, or
    the value among ``extra_args``)."""
    args = list(extra_args or [])
    for i, arg in enumerate(args):
        try:
            if arg == "--min-lines" and i + 1 < len(args):
                return int(args[i + 1])
            if arg.startswith("--min-lines="):
                return int(arg.split("=", 1)[1])
        except ValueError:
            break
    return FinetuneConfig.min_lines


def user_text(db, needed: int | None = None) -> dict:
    """How much of the user's own text personalization has: lines and 汉字 as the trainer reads them (its
    ``lines_from_store``: the newest ``FinetuneConfig.max_lines`` commits, each cut into clauses of 汉字; a
    commit of only letters or punctuation is no line), in all and since the last run, and the lines needed.
    {"lines", "chars", "new_lines", "new_chars", "needed", "enough"}. Each commit is read once (cached)."""
    needed = FinetuneConfig.min_lines if needed is None else needed
    last = store.get_setting(db, runs.LAST_RUN_KEY, None) or {}
    after = int(last.get("commit_id", 0)) if isinstance(last, dict) else 0
    rows = store.newest_commits(db, FinetuneConfig.max_lines)
    lines = chars = new_lines = new_chars = 0
    seen = {}
    for row in rows:
        id, text, pinyin = row["id"], row["text"], row["pinyin"]
        key = (text, pinyin or "")
        counted = _LINES_CACHE.get(key)
        if counted is None:
            read = commit_lines(text, pinyin or "")
            counted = (len(read), sum(len(t) for t, _ in read))
        seen[key] = counted
        lines, chars = lines + counted[0], chars + counted[1]
        if id > after:
            new_lines, new_chars = new_lines + counted[0], new_chars + counted[1]
    if len(_LINES_CACHE) > 4 * FinetuneConfig.max_lines:
        _LINES_CACHE.clear()
    _LINES_CACHE.update(seen)
    return {"lines": lines, "chars": chars, "new_lines": new_lines, "new_chars": new_chars, "needed": needed,
            "enough": lines >= needed}


def describe(text: dict) -> str:
    """The user's text in words (the dialog's first line)."""
    new = (f", {text['new_lines']:,} of them new since the last run" if text["new_lines"] != text["lines"]
           else "")
    return (f"Your own text: {text['lines']:,} lines, {text['chars']:,} characters of 汉字{new}. "
            f"Personalization needs at least {text['needed']:,} lines.")


def summary(done: dict) -> str:
    """The verdict in words."""
    def acc(d: dict | None) -> str:
        return f"{d['sent_acc']:.1%}" if isinstance(d, dict) and "sent_acc" in d else "?"

    lines = [("Accepted: now using your personal model " + str(done.get("version") or "") + ".") if done.get("accepted")
             else "Not accepted: " + str(done.get("reason", "the run did not finish")) + " The current model stays."]
    if done.get("before") or done.get("after"):
        lines.append(f"Sentences right on your held-out text: {acc(done.get('before'))} → {acc(done.get('after'))}.")
    if done.get("general_before") or done.get("general_after"):
        lines.append(f"On general text: {acc(done.get('general_before'))} → {acc(done.get('general_after'))}.")
    if done.get("accepted") and done.get("reason"):
        lines.append(str(done["reason"]))
    if "seconds" in done:
        lines.append(f"Took {done['seconds']:.0f} s" + (f" on {done['device']}." if done.get("device") else "."))
    return "\n".join(lines)


class PersonalizeDialog(QDialog):
    finished_run = Signal(dict)  # the run's "done" event (also when it failed or was cancelled)

    def __init__(self, home: Path, text: dict | None = None, extra_args: list[str] | None = None,
                 env: dict | None = None, parent=None) -> None:
        """``text``: ``user_text(db, min_lines(extra_args))``, what the toolbar's label said too."""
        super().__init__(parent)
        self.home, self.extra_args, self.env = Path(home), list(extra_args or []), dict(env or {})
        self.setWindowTitle("Personalize model")
        self.resize(520, 260)
        self.text = text
        self.amount = QLabel(describe(text) if text else "")
        self.amount.setWordWrap(True)
        intro = QLabel("Fine-tunes the model on what you typed, here on this computer. The new model is used only "
                       "if it does better on a held-out part of your text and no worse on general text. Keep "
                       "typing meanwhile.")
        intro.setWordWrap(True)
        # (not "done"/"result": those are QDialog's own virtual methods)
        self.phase, self.detail, self.verdict = QLabel("starting…"), QLabel(""), QLabel("")
        self.verdict.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.cancel_button, self.close_button = QPushButton("Cancel"), QPushButton("Close")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.close_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        for w in (self.amount, intro, self.phase, self.bar, self.detail, self.verdict):
            layout.addWidget(w)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.events: list[dict] = []
        self.outcome: dict | None = None
        self._buffer = b""
        self.stop_file = self.home / "tmp" / f"finetune-stop-{time.time_ns()}"
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)

    def start(self) -> bool:
        """Start the run; with too little text say so instead (how much there is, how much is needed), start
        nothing and end at once (``finished_run`` with ``too_little``). False when no run started."""
        if self.text is not None and not self.text["enough"]:
            more = self.text["needed"] - self.text["lines"]
            self.outcome = {"event": "done", "accepted": False, "too_little": True,
                            "reason": f"too little of your own text yet: {self.text['lines']:,} lines, at least "
                                      f"{self.text['needed']:,} needed. Type about {more:,} more lines (sentences "
                                      "of 汉字) and try again."}
            self.bar.hide()
            self.detail.hide()
            self.phase.setText("not started: too little text")
            reason = self.outcome["reason"]
            self.verdict.setText(reason[0].upper() + reason[1:] + " The current model stays.")
            self.cancel_button.setEnabled(False)
            self.close_button.setEnabled(True)
            self.finished_run.emit(self.outcome)
            return False
        self.stop_file.parent.mkdir(parents=True, exist_ok=True)
        program, *args = _cli_command("finetune", "--home", str(self.home), "--progress-json",
                                     "--stop-file", str(self.stop_file), *self.extra_args)
        environment = QProcessEnvironment.systemEnvironment()
        for k, v in self.env.items():
            environment.insert(k, v)
        self.process.setProcessEnvironment(environment)
        self.process.setProcessChannelMode(QProcess.SeparateChannels)
        self.process.start(program, args)
        return True

    def abort(self, reason: str) -> None:
        """Stop a run now (the user deleted all their data): the process is killed, the verdict says why."""
        if self.process.state() != QProcess.NotRunning:
            self.outcome = {"event": "done", "accepted": False, "reason": reason}
            self.process.kill()
            self.process.waitForFinished(10_000)

    def cancel(self) -> None:
        """The trainer notices the stop file within a step; the current model stays active."""
        if self.process.state() != QProcess.NotRunning:
            self.stop_file.write_text("cancel")
            self.phase.setText("cancelling…")
            self.cancel_button.setEnabled(False)

    def _read(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.append(event)
                self._show(event)

    def _show(self, e: dict) -> None:
        kind = e.get("event")
        if kind == "start":
            self.device = e.get("device", "")
            self.detail.setText(f"device {self.device}, method {e.get('method', '?')}, {e.get('lines', '?')} lines "
                                f"of your text: {e.get('train_lines', '?')} to train on, "
                                f"{e.get('held_out_lines', '?')} held out to check")
        elif kind == "phase":
            self.phase.setText(PHASES.get(e.get("phase"), str(e.get("phase"))))
        elif kind == "progress":
            self.phase.setText(PHASES["train"])
            steps = max(1, int(e.get("steps") or 1))
            self.bar.setRange(0, steps)
            self.bar.setValue(min(steps, int(e.get("step", 0))))
            self.detail.setText(f"step {e.get('step')}/{steps} · loss {e.get('loss', 0):.3f} · about "
                                f"{e.get('eta_s', 0):.0f} s left · {e.get('device', getattr(self, 'device', ''))}")
        elif kind == "done":
            self.outcome = e

    def _finished(self, code: int, _status) -> None:
        self._read()
        self.stop_file.unlink(missing_ok=True)
        if self.outcome is None:
            err = bytes(self.process.readAllStandardError()).decode("utf-8", "replace").strip().splitlines()
            self.outcome = {"event": "done", "accepted": False,
                         "reason": f"the training process ended (exit code {code}) without a result"
                                   + (f": {err[-1]}" if err else "") + "."}
        self.outcome.setdefault("device", getattr(self, "device", ""))
        trained = any(e.get("event") == "progress" for e in self.events)
        if trained:  # the bar was counting steps: it ends full
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
        else:  # it never trained: no bar pretending it did
            self.bar.hide()
        self.phase.setText("finished" if self.outcome.get("accepted") else "no change" if trained
                           else "stopped before training: no change")
        self.verdict.setText(summary(self.outcome))
        self.cancel_button.setEnabled(False)
        self.close_button.setEnabled(True)
        self.finished_run.emit(self.outcome)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.process.state() != QProcess.NotRunning:
            self.cancel()
            event.ignore()  # it closes once the run has stopped and the old model is safe
            return
        super().closeEvent(event)
