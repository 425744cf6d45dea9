"""Pretrain a model…: build a base model from your own corpus, in the background, without a terminal.

Choose a corpus folder (.txt, .txt.gz, .txt.xz), a model size and a device; "Estimate" counts the corpus's
characters (on a worker thread) and says how long the run will take at this machine's measured speed. "Start"
registers a job (``trainer.jobs``: its own process, detached, so it keeps training while you type and — unless
you untick it — after the window closes; after a crash, reboot or kill it resumes from its last checkpoint
when the app starts). The job list shows state, steps, tokens/s, ETA, loss and dev accuracy, with the loss and
accuracy curves of the selected job; Pause/Resume/Cancel control it; a finished model can be adopted with the
same safe checks as personalisation (``on_adopt``).
"""

from __future__ import annotations

import gzip
import lzma
import re
import threading
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox, QPushButton, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine import store
from engine.lexicon import ASSETS_DIR
from trainer import jobs

TOKENS_PER_STEP = 4096  # characters a batch (the trainer's default --tokens)
# training speed on a 2-core laptop-class CPU (benchmarks/train_throughput.py, KNOWLEDGE.md), characters/s;
# a GPU is ~100x faster — the estimate says so rather than guess a number for hardware it has not measured
CPU_SPEED = {"tiny": 15_000, "small": 3_000, "base": 1_700}
SIZES = {"tiny": "tiny (0.6 M parameters, for trying it out)", "small": "small (4.8 M, the shipped size)",
         "base": "base (9.7 M, needs a GPU to be worth it)"}
CHECK_SET = ASSETS_DIR / "personalize" / "general.tsv"  # general text held out of training: the dev curve
KEEP_SETTING = "jobs_keep_running_after_close"
_HAN = re.compile(r"[\u3400-\u9fff]")


def corpus_stats(folder: Path, stop: threading.Event | None = None) -> dict:
    """Files and 汉字 characters in a corpus folder (read once, streaming)."""
    files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name.endswith((".txt", ".txt.gz", ".txt.xz"))]
    chars = size = 0
    for p in files:
        size += p.stat().st_size
        opener = gzip.open if p.name.endswith(".gz") else lzma.open if p.name.endswith(".xz") else open
        with opener(p, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                chars += len(_HAN.findall(line))
                if stop is not None and stop.is_set():
                    return {"files": len(files), "bytes": size, "chars": chars, "partial": True}
    return {"files": len(files), "bytes": size, "chars": chars}


def estimate_text(stats: dict, size: str, device: str, steps: int) -> str:
    tokens = steps * TOKENS_PER_STEP
    passes = tokens / max(1, stats["chars"])
    text = (f"{stats['files']} files, {stats['chars'] / 1e6:.1f} M characters of 汉字. {steps:,} steps × "
            f"{TOKENS_PER_STEP:,} characters = {tokens / 1e6:.0f} M characters ({passes:.1f} passes over the corpus). ")
    if stats["chars"] < 100_000:
        text += "That is little text: the model will mostly memorise it. "
    hours = tokens / CPU_SPEED[size] / 3600
    if device in ("cpu", "auto"):
        text += f"On a 2-core CPU about {hours:.1f} h" + ("; with a GPU (auto) far less." if device == "auto" else ".")
    else:
        text += f"On a GPU roughly {hours / 100 * 60:.0f}–{hours / 30 * 60:.0f} min (about {hours:.0f} h on a CPU)."
    return text


class _Stats(QObject):
    done = Signal(dict)


class CurvePlot(QWidget):
    """Loss (left axis, blue) and dev sentence accuracy (right axis, green) against training characters."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.loss: list = []
        self.dev: list = []

    def set_curves(self, loss: list, dev: list) -> None:
        self.loss, self.dev = list(loss), list(dev)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = self.rect().adjusted(40, 10, -40, -20)
        p.fillRect(self.rect(), QColor("#ffffff"))
        p.setPen(QColor("#bbbbbb"))
        p.drawRect(r)
        if not self.loss and not self.dev:
            p.setPen(QColor("#777777"))
            p.drawText(r, Qt.AlignCenter, "curves appear as the job trains")
            return
        xs = [x for x, _ in self.loss + self.dev]
        x0, x1 = min(xs), max(xs) or 1
        span = max(1, x1 - x0)

        def draw(points, lo, hi, color, label, right):
            if not points:
                return
            path = QPainterPath()
            for i, (x, y) in enumerate(points):
                pt = QPointF(r.left() + (x - x0) / span * r.width(), r.bottom() - (y - lo) / max(1e-9, hi - lo) * r.height())
                path.moveTo(pt) if i == 0 else path.lineTo(pt)
            p.setPen(QPen(QColor(color), 2))
            p.drawPath(path)
            p.setPen(QColor(color))
            where = r.right() + 4 if right else 2
            p.drawText(where, r.top() + 10, f"{hi:.2f}" if not right else f"{hi:.0%}")
            p.drawText(where, r.bottom(), f"{lo:.2f}" if not right else f"{lo:.0%}")
            p.drawText(r.left() + (r.width() - 120 if right else 6), r.top() + 14, label)

        if self.loss:
            ys = [y for _, y in self.loss]
            draw(self.loss, min(ys), max(ys), "#2f6fd6", "loss", False)
        if self.dev:
            draw(self.dev, 0.0, max(0.05, max(y for _, y in self.dev)), "#2a9d3a", "dev accuracy", True)
        p.setPen(QColor("#555555"))
        p.drawText(r.left(), self.height() - 4, f"{x0 / 1e6:.1f} M")
        p.drawText(r.right() - 60, self.height() - 4, f"{x1 / 1e6:.1f} M characters")


class PretrainDialog(QDialog):
    def __init__(self, db, home: Path, on_adopt: Callable[[Path], None] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.db, self.home, self.on_adopt = db, Path(home), on_adopt
        self.extra_args: list[str] = []  # more `pinyin-ime pretrain` options (tests use it for tiny runs)
        self.setWindowTitle("Pretrain a model")
        self.resize(760, 600)
        self.corpus = QLineEdit()
        self.corpus.setPlaceholderText("a folder of .txt / .txt.gz / .txt.xz files")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.corpus, 1)
        row.addWidget(browse)
        self.size_box = QComboBox()
        for key, label in SIZES.items():
            self.size_box.addItem(label, key)
        self.size_box.setCurrentIndex(1)
        self.device = QComboBox()
        for key, label in [("auto", "auto (a GPU when there is one)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"),
                           ("mps", "Apple GPU (MPS)")]:
            self.device.addItem(label, key)
        self.steps = QSpinBox()
        self.steps.setRange(10, 10_000_000)
        self.steps.setSingleStep(1000)
        self.steps.setValue(20_000)
        self.keep = QCheckBox("Keep training after the window closes")
        self.keep.setChecked(bool(store.get_setting(db, KEEP_SETTING, True)))
        self.keep.toggled.connect(lambda on: self.db is not None and store.set_setting(self.db, KEEP_SETTING, on))
        self.estimate = QLabel("Choose a corpus folder, then Estimate.")
        self.estimate.setWordWrap(True)
        estimate = QPushButton("Estimate")
        estimate.clicked.connect(self.start_estimate)
        start = QPushButton("Start training")
        start.clicked.connect(lambda: self.start_job())
        form = QFormLayout()
        form.addRow("Corpus", row)
        form.addRow("Model size", self.size_box)
        form.addRow("Device", self.device)
        form.addRow("Steps", self.steps)
        form.addRow("", self.keep)
        buttons = QHBoxLayout()
        buttons.addWidget(estimate)
        buttons.addWidget(start)
        buttons.addStretch(1)

        self.table = QTableWidget(0, 8)
        self.table.setHorizontalHeaderLabels(["Job", "State", "Step", "Tokens/s", "ETA", "Loss", "Dev acc.", "Folder"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(7, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self.refresh)
        self.plot = CurvePlot()
        controls = QHBoxLayout()
        self.pause_button, self.resume_button = QPushButton("Pause"), QPushButton("Resume")
        self.cancel_button, self.adopt_button = QPushButton("Cancel job"), QPushButton("Evaluate and use…")
        for b, slot in [(self.pause_button, self.pause), (self.resume_button, self.resume),
                        (self.cancel_button, self.cancel), (self.adopt_button, self.adopt)]:
            b.clicked.connect(lambda _=False, slot=slot: slot())
            controls.addWidget(b)
        controls.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.estimate)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Jobs (they run in their own processes; typing is never slowed by them)"))
        layout.addWidget(self.table)
        layout.addWidget(self.plot)
        layout.addLayout(controls)
        self._stats, self._stop_stats = None, threading.Event()
        self.timer = QTimer(self)  # polls the store while the dialog is shown
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.refresh()

    def set_store(self, db) -> None:
        """Use another store connection: after "Delete all my data" the window opens a fresh store (an empty
        job list). None while there is none: polling stops (the old connection is about to be closed)."""
        self.db = db
        if db is None:
            self.timer.stop()
            return
        self.keep.blockSignals(True)
        self.keep.setChecked(bool(store.get_setting(db, KEEP_SETTING, True)))
        self.keep.blockSignals(False)
        self.refresh()
        if self.isVisible():
            self.timer.start()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.db is not None:
            self.timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802 (also Esc, which hides without a closeEvent)
        self.timer.stop()
        super().hideEvent(event)

    # -- new job -------------------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Corpus folder")
        if folder:
            self.corpus.setText(folder)

    def start_estimate(self) -> None:
        folder = Path(self.corpus.text().strip())
        if not folder.is_dir():
            self.estimate.setText(f"{folder} is not a folder: choose the folder that holds your .txt files.")
            return
        self.estimate.setText("Counting characters…")
        relay = _Stats()
        relay.done.connect(self._show_estimate)
        self._stats = relay
        threading.Thread(target=lambda: relay.done.emit(corpus_stats(folder, self._stop_stats)), daemon=True).start()

    def _show_estimate(self, stats: dict) -> None:
        if not stats["files"]:
            self.estimate.setText("No .txt, .txt.gz or .txt.xz files there.")
            return
        self.estimate.setText(estimate_text(stats, self.size_box.currentData(), self.device.currentData(), self.steps.value()))

    def job_args(self) -> list[str]:
        args = ["--corpus", self.corpus.text().strip(), "--size", self.size_box.currentData(),
                "--device", self.device.currentData(), "--max-steps", str(self.steps.value())]
        if CHECK_SET.exists():
            args += ["--eval-file", str(CHECK_SET), "--eval-lines", "300"]
        return args + self.extra_args

    def start_job(self) -> int | None:
        folder = Path(self.corpus.text().strip())
        if not folder.is_dir():
            QMessageBox.warning(self, "No corpus", "Choose the folder that holds your .txt files first.")
            return None
        try:
            id = jobs.create(self.db, self.home, self.job_args())
            jobs.start(self.db, self.home, id)
        except (ValueError, OSError, SystemExit) as e:
            QMessageBox.warning(self, "Not started", f"The job could not start: {e}")
            return None
        self.refresh()
        self.select(id)
        return id

    # -- jobs ----------------------------------------------------------------------------------------------
    def select(self, id: int) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.UserRole) == id:
                self.table.selectRow(r)

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.db is None:
            return None
        return store.get_job(self.db, self.table.item(rows[0].row(), 0).data(Qt.UserRole))

    def refresh(self) -> None:
        if self.db is None:  # between closing the old store and opening the new one
            return
        jobs.reconcile(self.db, self.home)
        listed = store.list_jobs(self.db)
        chosen = self.selected()
        self.table.blockSignals(True)
        self.table.setRowCount(len(listed))
        self.progress: dict[int, dict] = {}
        for i, job in enumerate(listed):
            p = jobs.progress(job)
            self.progress[job["id"]] = p
            cells = [str(job["id"]), job["state"], f"{p.get('step', 0):,}/{p.get('max_steps', 0):,}",
                     f"{p['tokens_per_s']:,.0f}" if "tokens_per_s" in p else "",
                     f"{p['eta_s'] / 60:.0f} min" if "eta_s" in p and job["state"] == "running" else "",
                     f"{p['loss']:.3f}" if "loss" in p else "",
                     f"{p['dev_sent_acc']:.1%}" if "dev_sent_acc" in p else "", job["message"] or job["out_dir"]]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, job["id"])
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)
        if chosen is not None:
            self.select(chosen["id"])
        elif listed and not self.table.selectionModel().selectedRows():
            self.table.selectRow(len(listed) - 1)
        job = self.selected()
        p = self.progress.get(job["id"], {}) if job else {}
        self.plot.set_curves(p.get("loss_curve", []), p.get("dev_curve", []))
        state = job["state"] if job else ""
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state in ("paused", "interrupted", "failed"))
        self.cancel_button.setEnabled(state in ("running", "paused", "interrupted", "failed", "queued"))
        self.adopt_button.setEnabled(state == "done" and self.on_adopt is not None)

    def pause(self) -> None:
        self._on_selected(jobs.pause)

    def resume(self) -> None:
        job = self.selected()
        if job:
            try:
                jobs.resume(self.db, self.home, job["id"])
            except ValueError as e:
                QMessageBox.warning(self, "Not resumed", str(e))
            self.refresh()

    def cancel(self) -> None:
        self._on_selected(jobs.cancel)

    def _on_selected(self, action) -> None:
        """``action(db, job id)`` on the selected job, then the list shown again."""
        job = self.selected()
        if job:
            action(self.db, job["id"])
            self.refresh()

    def adopt(self) -> None:
        job = self.selected()
        if job and job["state"] == "done" and self.on_adopt is not None:
            self.on_adopt(Path(job["out_dir"]))

    def closeEvent(self, event) -> None:  # noqa: N802
        self._stop_stats.set()
        self.timer.stop()
        super().closeEvent(event)
