"""The main window: the IME editor, a toolbar (中/En, your data, pause recording), a first-run hint and a status
bar (active model and its accuracy, device, last conversion time, mode).

The engine runs on the composer's worker thread with its own store connection (``ime_app.composer``); this
window's connection serves the data dialog. ``home`` is the user data folder (None: keep nothing, learn
nothing — the self-test and tests use a temporary one).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QFont, QPainter, QPixmap
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPushButton, QToolBar,
                               QVBoxLayout, QWidget)

from engine import privacy, store
from engine.learning import UserRanker
from engine.pipeline import MODEL_DIR, build_pipeline
from ime_app.composer import Composer, Snapshot
from ime_app.editor import ImeEditor
from ime_app.history_dialog import PRIVACY, HistoryDialog
from ime_app.pretrain_dialog import KEEP_SETTING, PretrainDialog
from trainer import jobs

HINT = ("Type pinyin (nihao, or initials: bjdx). Space or 1–9 picks, ↑/↓ move the highlight, -/= or PageUp/PageDown "
        "page, Enter types the letters, Esc cancels, Backspace edits; a tap on Shift switches 中/En. "
        "Your picks teach it; everything stays on this computer.")


def model_summary(model_dir: Path) -> str:
    """What the badge says about a model: its version (the recorded one, else the weights' checksum from the
    ONNX export) and its recorded dev accuracy, if any."""
    parts = []
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    version = config.get("version") if isinstance(config, dict) else None
    if not version:
        try:
            version = json.loads((Path(model_dir) / "onnx" / "export.json").read_text())["model"][:8]
        except (OSError, ValueError, KeyError, TypeError):
            version = None
    if version:
        parts.append(f"version {version}")
    try:
        parts.append(f"dev sentence accuracy {config['training']['dev']['sent_acc']:.1%}")
    except (KeyError, TypeError, ValueError):
        pass
    return ", ".join(parts)


class MainWindow(QMainWindow):
    def __init__(self, home: str | Path | None = None, model_dir: Path | None = MODEL_DIR,
                 keep_data: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("拼音 IME")
        self.home = store.home_dir(home) if keep_data else None
        self.model_dir = model_dir
        self.db, self.store_error = None, ""
        if self.home is not None:
            try:
                self.db = store.open_store(self.home)
                if self.db.recovered_from is not None:
                    self.store_error = (f"Your data file was damaged ({self.db.recovery_reason}). It was kept as "
                                        f"{self.db.recovered_from.name} in {self.home} and a fresh one started; "
                                        "the app works as before, with an empty history.")
            except (store.StoreError, OSError, sqlite3.Error) as e:
                self.store_error = (f"Your data could not be opened ({e}); typing works but nothing is kept or "
                                    "learned this time. Fix the folder's permissions or start with --home DIR.")
        home_ok = self.db is not None
        self.composer = Composer(lambda: build_pipeline(model_dir, db=store.open_store(self.home) if home_ok else None))
        self.editor = ImeEditor(self.composer)
        self.editor.setFont(QFont("WenQuanYi Micro Hei", 14))
        self.editor.mode_toggled.connect(self._show_mode)
        self.editor.snapshot_applied.connect(self._on_snapshot)
        self.composer.ready.connect(self._on_ready)

        self.model_status, self.model_quality, self.last_ms = "", "", 0.0
        self._closed = False
        self.paused = self.db is not None and store.is_recording_paused(self.db)
        self._build_toolbar()
        self.hint = self._build_hint()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        if self.store_error:
            warning = QLabel(self.store_error)
            warning.setWordWrap(True)
            warning.setStyleSheet("color: #a00;")
            layout.addWidget(warning)
        layout.addWidget(self.hint)
        layout.addWidget(self.editor)
        self.setCentralWidget(central)

        self.mode_label, self.model_label, self.time_label = QLabel(), QLabel("loading the model…"), QLabel()
        self.statusBar().addWidget(self.mode_label)
        self.statusBar().addWidget(self.model_label, 1)
        self.statusBar().addPermanentWidget(self.time_label)
        self._show_mode(True)
        self.resize(760, 460)
        self.composer.start()
        self.editor.setFocus()
        if self.db is not None:
            QTimer.singleShot(0, self._resume_interrupted_jobs)

    # -- parts ---------------------------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("IME")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.mode_action = QAction("中", self, checkable=True, checked=True)
        self.mode_action.setToolTip("Chinese / English (or tap Shift)")
        self.mode_action.toggled.connect(self.editor.set_chinese)
        self.data_action = QAction("History && phrases…", self)
        self.data_action.triggered.connect(self.open_history)
        self.pause_action = QAction("Pause recording", self, checkable=True)
        self.pause_action.setToolTip("While paused nothing you type is kept or learned")
        self.pause_action.toggled.connect(self.set_recording_paused)
        self.delete_action = QAction("Delete all my data…", self)
        self.delete_action.setToolTip("History, learned phrases, personal models and caches, from this computer")
        self.delete_action.triggered.connect(lambda: self.delete_all_data())
        self.pretrain_action = QAction("Pretrain a model…", self)
        self.pretrain_action.setToolTip("Build a base model from your own corpus, in the background")
        self.pretrain_action.triggered.connect(lambda: self.open_pretrain())
        for action in (self.mode_action, self.data_action, self.pause_action, self.pretrain_action,
                       self.delete_action):
            bar.addAction(action)
        if self.db is None:
            for action in (self.data_action, self.pause_action, self.pretrain_action, self.delete_action):
                action.setEnabled(False)
        else:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(self.paused)
            self.pause_action.blockSignals(False)
        self.toolbar = bar

    def _build_hint(self) -> QFrame:
        frame = QFrame()
        frame.setObjectName("hint")
        frame.setStyleSheet("#hint { background: #fff8d8; border: 1px solid #e0d090; border-radius: 4px; }")
        text = QLabel(HINT)
        text.setWordWrap(True)
        ok = QPushButton("Got it")
        ok.clicked.connect(self.dismiss_hint)
        row = QHBoxLayout(frame)
        row.addWidget(text, 1)
        row.addWidget(ok)
        frame.setVisible(self.db is None or not store.get_setting(self.db, "hint_dismissed", False))
        return frame

    # -- actions -------------------------------------------------------------------------------------------
    def dismiss_hint(self) -> None:
        self.hint.hide()
        if self.db is not None:
            store.set_setting(self.db, "hint_dismissed", True)
        self.editor.setFocus()

    def set_recording_paused(self, paused: bool) -> None:
        if self.db is not None and store.is_recording_paused(self.db) != paused:
            store.set_recording_paused(self.db, paused)
        self.paused = paused
        self.composer.post("reload")
        self._show_status()

    def open_history(self) -> HistoryDialog | None:
        if self.db is None:
            return None
        dialog = HistoryDialog(self.db, on_change=self._data_changed, parent=self, where=str(self.home))
        dialog.show()
        self.history_dialog = dialog
        return dialog

    def delete_all_data(self, confirm: bool = True) -> list[Path]:
        """One action: close the store on both threads, delete the data (``engine.privacy``), start fresh."""
        if self.db is None:
            return []
        if confirm and QMessageBox.question(
                self, "Delete all my data?", f"Everything this app kept in {self.home} — history, learned phrases, "
                "personal models, training jobs — and its caches is deleted from this computer. This cannot be "
                "undone. The text in the editor stays.", QMessageBox.Yes | QMessageBox.No,
                QMessageBox.No) != QMessageBox.Yes:
            return []
        if getattr(self, "history_dialog", None) is not None:
            self.history_dialog.close()
            self.history_dialog = None
        self.db.close()
        removed: list = []
        home = self.home

        def wipe(pipeline) -> None:  # on the worker thread, which holds the other connection
            ranker = pipeline.ranker
            if ranker is not None:
                ranker.db.close()
            removed.extend(privacy.delete_all_data(home))
            if ranker is not None:
                pipeline.ranker = UserRanker(store.open_store(home), pipeline.lexicon)

        self.composer.post("call", wipe)
        self.wait_idle()
        self.db = store.open_store(home)
        self.hint.setVisible(True)
        self._data_changed()
        self.statusBar().showMessage(f"Deleted {len(removed)} items: your data is gone from this computer.", 15000)
        return removed

    def open_pretrain(self) -> PretrainDialog | None:
        if self.db is None:
            return None
        dialog = PretrainDialog(self.db, self.home, on_adopt=self.adopt_model, parent=self)
        dialog.show()
        self.pretrain_dialog = dialog
        return dialog

    def adopt_model(self, model_dir: Path) -> None:
        QMessageBox.information(self, "Model ready", f"The model is in {model_dir}.")

    def _resume_interrupted_jobs(self) -> None:
        """A job whose process died (crash, reboot, kill) goes on from its last checkpoint."""
        if self._closed:
            return
        try:
            resumed = jobs.reconcile(self.db, self.home, restart=True)
        except (ValueError, OSError) as e:
            self.statusBar().showMessage(f"A training job could not be resumed: {e}", 15000)
            return
        if resumed:
            self.statusBar().showMessage(f"Resumed training job(s) {', '.join(map(str, resumed))} from the last "
                                         "checkpoint.", 15000)

    def _data_changed(self) -> None:
        self.composer.post("reload")  # the worker's ranker re-reads phrases; paused state is read per commit
        self.paused = store.is_recording_paused(self.db)
        self.pause_action.blockSignals(True)
        self.pause_action.setChecked(self.paused)
        self.pause_action.blockSignals(False)
        self._show_status()

    # -- status --------------------------------------------------------------------------------------------
    def _on_ready(self, status: str) -> None:
        self.model_status = status
        self.model_quality = model_summary(self.model_dir) if self.model_dir else ""
        self._show_status()

    def _on_snapshot(self, snap: Snapshot) -> None:
        if snap.translate_ms:
            self.last_ms = snap.translate_ms
        if snap.error:
            self.statusBar().showMessage(snap.error[0].upper() + snap.error[1:] + ".", 15000)
        self._show_status()

    def _show_mode(self, chinese: bool) -> None:
        self.mode_label.setText("中" if chinese else "En")
        self.mode_action.blockSignals(True)
        self.mode_action.setChecked(chinese)
        self.mode_action.setText("中" if chinese else "En")
        self.mode_action.blockSignals(False)

    def _show_status(self) -> None:
        parts = [self.model_status or "loading the model…"]
        if self.model_quality:
            parts.append(self.model_quality)
        if self.paused:
            parts.append("recording paused")
        self.model_label.setText(" · ".join(parts))
        self.model_label.setToolTip(PRIVACY)
        self.time_label.setText(f"last conversion {self.last_ms:.1f} ms" if self.last_ms else "")

    # -- for tests and the self-test -----------------------------------------------------------------------
    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Process events until the worker has handled every key posted (and the model is loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            QCoreApplication.processEvents()
            if self.composer.session is not None and not self.composer.busy and self.model_status:
                QCoreApplication.processEvents()
                return True
            time.sleep(0.002)
        return False

    def candidate_texts(self) -> tuple[str, ...]:
        return self.composer.last.candidates

    def screenshot(self) -> QPixmap:
        """The window with the candidate popup (a separate top-level window) drawn where it floats."""
        shot = self.grab()
        popup = self.editor.popup
        if not popup.isVisible():
            return shot
        offset = popup.pos() - self.mapToGlobal(QPoint(0, 0))
        width = max(shot.width(), offset.x() + popup.width())
        height = max(shot.height(), offset.y() + popup.height())
        canvas = QPixmap(width, height)
        canvas.fill(Qt.white)
        painter = QPainter(canvas)
        painter.drawPixmap(0, 0, shot)
        painter.drawPixmap(offset, popup.grab())
        painter.end()
        return canvas

    def closeEvent(self, event) -> None:  # noqa: N802
        self._closed = True
        if self.db is not None and not store.get_setting(self.db, KEEP_SETTING, True):
            for job in store.list_jobs(self.db):
                if job["state"] == "running":
                    jobs.pause(self.db, job["id"])  # the user chose: no training once the window is closed
        self.editor.popup.hide()
        self.composer.stop()
        self.editor.snapshot_applied.disconnect(self._on_snapshot)
        super().closeEvent(event)
