"""Personalize model: fine-tune on what this user typed, in a separate process, with progress and a verdict.

The run is ``pinyin-ime finetune --home HOME --progress-json`` (``trainer.finetune``, the same code as the
CLI) started with ``QProcess``: its JSON lines drive the dialog (phase, step, loss, ETA, device), typing goes
on in the window meanwhile, Cancel drops a stop file the trainer checks (the current model stays active).
When the run ends, ``finished_run`` carries its "done" event: accepted or not and why, accuracy before/after
on the user's held-out text and on the general check set, and the time. The window then hot-swaps the model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from trainer.jobs import cli_command

PHASES = {"check-current": "measuring the current model on your text…", "train": "training…",
          "export": "exporting the new model…", "check-new": "measuring the new model…"}


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

    def __init__(self, home: Path, new_text: dict | None = None, extra_args: list[str] | None = None,
                 env: dict | None = None, parent=None) -> None:
        super().__init__(parent)
        self.home, self.extra_args, self.env = Path(home), list(extra_args or []), dict(env or {})
        self.setWindowTitle("Personalize model")
        self.resize(520, 260)
        new = new_text or {}
        intro = QLabel(f"Fine-tunes the model on what you typed ({new.get('commits', 0):,} new commits, "
                       f"{new.get('chars', 0):,} characters since the last run), here on this computer. The new "
                       "model is used only if it does better on a held-out part of your text and no worse on "
                       "general text. Keep typing meanwhile.")
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
        for w in (intro, self.phase, self.bar, self.detail, self.verdict):
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

    def start(self) -> None:
        self.stop_file.parent.mkdir(parents=True, exist_ok=True)
        program, *args = cli_command("finetune", "--home", str(self.home), "--progress-json",
                                     "--stop-file", str(self.stop_file), *self.extra_args)
        environment = QProcessEnvironment.systemEnvironment()
        for k, v in self.env.items():
            environment.insert(k, v)
        self.process.setProcessEnvironment(environment)
        self.process.setProcessChannelMode(QProcess.SeparateChannels)
        self.process.start(program, args)

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
            self.detail.setText(f"device {self.device}, method {e.get('method', '?')}, "
                                f"{e.get('train_lines', e.get('lines', '?'))} lines of your text")
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
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.phase.setText("finished" if self.outcome.get("accepted") else "no change")
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
