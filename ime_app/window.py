"""The main window: the IME editor, a toolbar (中/En, your data, pause recording), a first-run hint and a status
bar (active model and its accuracy, device, last conversion time, mode).

The accuracy shown is the product's — the model with its language models, as the user gets it
(``ime_app.model_quality``); the app's own window (``measure_accuracy``) measures it once in the background
when it is not known yet.

The engine runs on the composer's worker thread with its own store connection (``ime_app.composer``); this
window's connection serves the data dialog. ``home`` is the user data folder (None: keep nothing, learn
nothing — the self-test and tests use a temporary one).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QPoint, QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (QApplication, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMenu,
                               QMessageBox, QPushButton, QToolBar, QToolButton, QVBoxLayout, QWidget)

from engine.personal import privacy

from engine import store
from engine.ime.learning import UserRanker
from engine.runtime.model_spec import read_meta
from engine.personal import loading, versions
from engine.ime.pipeline import MODEL_DIR, build_pipeline
from ime_app import model_quality
from ime_app.composer import Composer, Snapshot
from ime_app.document import DocumentError, load_text, save_text
from ime_app.editor import ImeEditor
from ime_app.history_dialog import PRIVACY, HistoryDialog
from ime_app.personalize_dialog import PersonalizeDialog, describe, min_lines, user_text
from ime_app.pretrain_dialog import KEEP_SETTING, PretrainDialog
from ime_app.settings import Settings, load_settings
from ime_app.settings_dialog import SettingsDialog
from trainer import jobs

HINT = ("Type pinyin (nihao, or initials: bjdx). Space or 1–9 picks, ↑/↓ move the highlight, -/= or PageUp/PageDown "
        "page, Enter types the letters, Esc cancels, Backspace edits; a tap on Shift switches 中/En. "
        "Your picks teach it; everything stays on this computer.")


def model_summary(model_dir: Path | None, home: Path | None = None) -> str:
    """What the badge says about a model: its version (recorded, else the weights' checksum from the ONNX
    export) and its accuracy as the user gets it, with its language models (``ime_app.model_quality``): on
    general text, and for a personal model on the user's held-out text. Never the trainer's figure for the
    network alone (config.json ``training.dev``): that one is without the LMs, far below what typing gets."""
    if model_dir is None:
        return ""
    parts = []
    if read_meta(model_dir).get("kind") != "personal":  # a personal model's version is in its status
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
    accuracy = model_quality.summary(model_dir, home)
    if accuracy:
        parts.append(accuracy)
    return ", ".join(parts)


class MainWindow(QMainWindow):
    model_changed = Signal(str)  # a new model is in use (its status line)

    def __init__(self, home: str | Path | None = None, model_dir: Path | None = MODEL_DIR,
                 keep_data: bool = True, ask_unsaved: bool = False, measure_accuracy: bool = False) -> None:
        super().__init__()
        # closing (or opening a file) with unsaved text asks first; the app's window does, scripted ones (the
        # self-test, tests, benchmarks) close without a modal question
        self.ask_unsaved = ask_unsaved
        # a model whose accuracy with its LMs is not known yet is measured in a background process (the app's
        # window; scripted ones do not spend the CPU)
        self.measure_accuracy = measure_accuracy
        self.measuring: QProcess | None = None
        self._measured: set[str] = set()  # models measured (or tried) this session
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
        home = self.home
        self.composer = Composer(lambda: loading.build_user_pipeline(store.open_store(home), home) if home_ok
                                 else build_pipeline(model_dir))
        self.editor = ImeEditor(self.composer)
        self.editor.setFont(QFont("WenQuanYi Micro Hei", 14))
        self.editor.mode_toggled.connect(self._show_mode)
        self.editor.snapshot_applied.connect(self._on_snapshot)
        self.composer.ready.connect(self._on_ready)
        self.settings = load_settings(self.db)  # the user's settings, applied before the first key
        self.apply_settings(self.settings)

        self.model_status, self.model_quality, self.last_ms = "", "", 0.0
        self.personalize_args: list[str] = []  # more `pinyin-ime finetune` options (tests: tiny, fast runs)
        self.personalize_env: dict = {}
        self._commits_since_label = 0
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
    def _build_file_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.open_action = menu.addAction("Open…", QKeySequence.Open, lambda: self.open_document())
        self.save_action = menu.addAction("Save", QKeySequence.Save, lambda: self.save_document())
        self.save_as_action = menu.addAction("Save as…", QKeySequence.SaveAs, lambda: self.save_document(ask=True))
        menu.addSeparator()
        self.copy_all_action = menu.addAction("Copy all", QKeySequence("Ctrl+Shift+C"), self.copy_all)
        menu.addSeparator()
        self.settings_action = menu.addAction("Settings…", QKeySequence.Preferences, lambda: self.open_settings())
        menu.addSeparator()
        menu.addAction("Quit", QKeySequence.Quit, self.close)
        edit = self.menuBar().addMenu("&Edit")
        # the editor's own action (F7 works where the editor has focus); here it is found by looking
        edit.addAction(self.editor.correct_action)
        self.document_path: Path | None = None
        self.editor.document().modificationChanged.connect(lambda _: self._show_title())
        self._show_title()

    def _build_toolbar(self) -> None:
        self._build_file_menu()
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
        self.personalize_action = QAction("Personalize model", self)
        self.personalize_action.setToolTip("Fine-tune the model on what you typed, on this computer")
        self.personalize_action.triggered.connect(lambda: self.personalize())
        self.model_menu = QMenu("Model", self)
        self.model_menu.setToolTipsVisible(True)
        self.revert_action = self.model_menu.addAction("Revert to the previous model", self.revert_model)
        self.factory_action = self.model_menu.addAction("Use the factory model", self.use_factory_model)
        self.pretrain_action = QAction("Pretrain a model…", self)
        self.pretrain_action.setToolTip("Build a base model from your own corpus, in the background")
        self.pretrain_action.triggered.connect(lambda: self.open_pretrain())
        for action in (self.mode_action, self.data_action, self.pause_action, self.personalize_action):
            bar.addAction(action)
        model_button = QToolButton()
        model_button.setText("Model ▾")
        model_button.setMenu(self.model_menu)
        model_button.setPopupMode(QToolButton.InstantPopup)
        bar.addWidget(model_button)
        for action in (self.pretrain_action, self.delete_action):
            bar.addAction(action)
        if self.db is None:
            model_button.setEnabled(False)
            for action in (self.data_action, self.pause_action, self.pretrain_action, self.delete_action,
                           self.personalize_action):
                action.setEnabled(False)
        else:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(self.paused)
            self.pause_action.blockSignals(False)
        self.toolbar = bar
        self._update_model_actions()

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

    def open_settings(self) -> SettingsDialog:
        """The Settings dialog (one at a time): every change applies at once and is kept in the store."""
        dialog = getattr(self, "settings_dialog", None)
        if dialog is None:
            dialog = SettingsDialog(self.db, self.settings, on_change=self.apply_settings, parent=self)
            self.settings_dialog = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def apply_settings(self, settings: Settings) -> None:
        """Live: the engine's part on the composer's worker (between keys), the candidate window's here."""
        self.settings = settings
        self.composer.configure(fuzzy=settings.fuzzy_options(), page_size=settings.page_size,
                                prediction=settings.prediction, traditional=settings.traditional)
        popup = self.editor.popup
        popup.set_font_size(settings.font_size)
        popup.set_vertical(settings.vertical)
        if popup.isVisible():
            popup.place(self.editor.global_cursor_rect())

    def open_history(self) -> HistoryDialog | None:
        if self.db is None:
            return None
        dialog = HistoryDialog(self.db, on_change=self._data_changed, parent=self, where=str(self.home))
        dialog.show()
        self.history_dialog = dialog
        return dialog

    def delete_all_data(self, confirm: bool = True) -> list[Path]:
        """One action: close the store on both threads, delete the data (``engine.personal.privacy``), start fresh."""
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
        if getattr(self, "settings_dialog", None) is not None:  # it writes to the store about to be deleted
            self.settings_dialog.close()
            self.settings_dialog.deleteLater()
            self.settings_dialog = None
        pretrain = getattr(self, "pretrain_dialog", None)
        if pretrain is not None:
            pretrain.set_store(None)  # it polls the store every second: not the one about to be deleted
        self._stop_background_work("all your data was deleted")
        closing, self.db = self.db, None  # what arrives meanwhile (a model swapped in) finds no store to use
        closing.close()
        removed: list = []
        home = self.home

        def wipe(pipeline) -> None:  # on the worker thread, which holds the other connection
            ranker = pipeline.ranker
            if ranker is not None:
                ranker.db.close()
            removed.extend(privacy.delete_all_data(home))
            if ranker is not None:
                pipeline.use_ranker(UserRanker(store.open_store(home), pipeline.lexicon))
                in_use = getattr(pipeline, "model_dir", None)
                if in_use is not None and Path(home).resolve() in Path(in_use).resolve().parents:
                    # a personal model was in use: its files are gone with the rest, the factory model goes on
                    loading.reload_active(pipeline, pipeline.ranker.db, home)

        self.composer.post("call", wipe)
        self.wait_idle()
        self.db = store.open_store(home)
        self.apply_settings(load_settings(self.db))  # the settings went with the rest: the defaults again
        if pretrain is not None:
            pretrain.set_store(self.db)  # an empty job list, polled in the fresh store
        self.hint.setVisible(True)
        self._data_changed()
        self._update_personalize_label()
        self._update_model_actions()
        self.statusBar().showMessage(f"Deleted {len(removed)} items: your data is gone from this computer.", 15000)
        return removed

    def _stop_background_work(self, why: str) -> None:
        """Before the data is deleted: stop what writes into it — a personalization run, the accuracy
        measurement, and training jobs' processes (killed: their folders and records are about to go)."""
        dialog = getattr(self, "personalize_dialog", None)
        if dialog is not None:
            dialog.abort(f"stopped: {why}.")
        self._stop_measuring()
        if self.db is None:
            return
        jobs.kill_running(self.db)

    def open_pretrain(self) -> PretrainDialog | None:
        if self.db is None:
            return None
        if getattr(self, "pretrain_dialog", None) is not None:  # one dialog (one timer polling the store)
            self.pretrain_dialog.show()
            self.pretrain_dialog.raise_()
            self.pretrain_dialog.activateWindow()
            self.pretrain_dialog.refresh()
            return self.pretrain_dialog
        dialog = PretrainDialog(self.db, self.home, on_adopt=self.adopt_model, parent=self)
        dialog.show()
        self.pretrain_dialog = dialog
        return dialog

    def personalize(self, base: Path | None = None) -> PersonalizeDialog | None:
        """Fine-tune on the user's text in a separate process; an accepted model is hot-swapped in."""
        if self.db is None:
            return None
        if getattr(self, "personalize_dialog", None) is not None and self.personalize_dialog.outcome is None:
            self.personalize_dialog.show()
            return self.personalize_dialog
        extra = list(self.personalize_args) + (["--base", str(base)] if base is not None else [])
        dialog = PersonalizeDialog(self.home, user_text(self.db, min_lines(extra)), extra_args=extra,
                                   env=self.personalize_env, parent=self)
        dialog.finished_run.connect(self._personalized)
        dialog.show()
        dialog.start()
        self.personalize_dialog = dialog
        return dialog

    def adopt_model(self, model_dir: Path) -> None:
        """A model from a pretraining job goes through the same safe swap: fine-tuned on the user's text from
        it, kept only if it beats the current model on their held-out text and holds up on general text."""
        self.personalize(base=model_dir)

    def _personalized(self, done: dict) -> None:
        if self.db is None or self._closed:
            return
        self._update_personalize_label()
        if done.get("accepted"):
            self.reload_model()

    def reload_model(self) -> None:
        """Hot-swap the store's active model into the running engine (on the worker, between keys)."""
        home = self.home

        def swap(pipeline) -> None:
            loading.reload_active(pipeline, pipeline.ranker.db, home)

        self.composer.post("call", swap)

    def revert_model(self) -> None:
        """Back one version (an older personal model, else the factory model); the status bar says which."""
        if self.db is None or not self.revert_action.isEnabled():
            return
        was = versions.recorded_active(self.db, self.home).label
        now = versions.revert_to_previous(self.db, self.home)
        self.reload_model()
        self._update_model_actions()
        self.statusBar().showMessage(f"Reverted from the {was}: now using the {now.label}.", 10000)

    def use_factory_model(self) -> None:
        if self.db is None or not self.factory_action.isEnabled():
            return
        was = versions.recorded_active(self.db, self.home).label
        versions.use_factory(self.db)
        self.reload_model()
        self._update_model_actions()
        self.statusBar().showMessage(f"Now using the factory model instead of the {was} (it stays on disk).", 10000)

    def _update_model_actions(self) -> None:
        """Revert and Use factory only do something while a personal model is active: enabled just then, with
        a tooltip that says what they would do or why not."""
        if self.db is None or self._closed:
            return
        record = store.active_model(self.db)
        personal = record is not None and record["kind"] == "personal"
        self.revert_action.setEnabled(personal)
        self.factory_action.setEnabled(personal)
        if personal:
            older = versions.older_versions(self.db, record)
            target = f"personal model {older[-1]['version']}" if older else "the factory model"
            self.revert_action.setToolTip(f"From personal model {record['version']} back to {target}")
            self.factory_action.setToolTip(f"Use the factory model; personal model {record['version']} stays on disk")
        else:
            why = "You are using the factory model: there is no personal model to go back from"
            self.revert_action.setToolTip(why)
            self.factory_action.setToolTip("You are using the factory model already")

    def _update_personalize_label(self) -> None:
        """The button says how many new lines of the user's text there are, counted by ``user_text``: the
        same count the Personalize dialog shows and the trainer reads."""
        if self.db is None or self._closed:
            return
        text = user_text(self.db, min_lines(self.personalize_args))
        n = text["new_lines"]
        self.personalize_action.setText(f"Personalize model ({n:,} new line{'' if n == 1 else 's'})" if n
                                        else "Personalize model")
        self.personalize_action.setToolTip("Fine-tune the model on what you typed, on this computer. "
                                           + describe(text))

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
        if self._closed:
            return
        self.model_status = status
        pipeline = self.composer.pipeline
        model_dir = getattr(pipeline, "model_dir", None)
        self._read_quality(model_dir)
        if model_dir is not None and not model_quality.known(model_dir, self.home)["general"]:
            self._measure(Path(model_dir))
        self._update_personalize_label()
        self._update_model_actions()
        self._show_status()

    # -- the accuracy of a model not measured yet ------------------------------------------------------------
    def _measure(self, model_dir: Path) -> None:
        """Measure the model's accuracy with its LMs in a background process at the lowest priority, once
        (``ime_app.model_quality``); the status bar shows it when the process is done."""
        if (not self.measure_accuracy or self.home is None or self.db is None or self.measuring is not None
                or str(model_dir) in self._measured or not model_quality.can_measure()):
            return
        self._measured.add(str(model_dir))
        program, *args = model_quality.measure_command(model_dir, self.home)
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("OMP_NUM_THREADS", "1")  # one core at most: the other ones stay the typing's
        root = str(Path(__file__).resolve().parent.parent)  # this checkout's packages, as trainer.jobs does
        environment.insert("PYTHONPATH", os.pathsep.join(p for p in [root, environment.value("PYTHONPATH")] if p))
        process.setProcessEnvironment(environment)
        process.setStandardOutputFile(QProcess.nullDevice())
        process.setStandardErrorFile(QProcess.nullDevice())
        process.finished.connect(lambda *_: self._measured_done(process))
        self.measuring = process
        process.start(program, args)

    def _measured_done(self, process: QProcess) -> None:
        if self.measuring is process:
            self.measuring = None
        process.deleteLater()
        if self._closed or self.db is None:
            return
        self._read_quality(getattr(self.composer.pipeline, "model_dir", None))
        self._show_status()

    def _read_quality(self, model_dir) -> None:
        """The status bar's accuracy words and their tooltip, from what is known of ``model_dir``."""
        self.model_quality = model_summary(model_dir, self.home)
        self.model_quality_tip = model_quality.explanation(model_dir, self.home)

    def _stop_measuring(self) -> None:
        process, self.measuring = self.measuring, None
        if process is not None and process.state() != QProcess.NotRunning:
            process.kill()
            process.waitForFinished(5000)

    def _on_snapshot(self, snap: Snapshot) -> None:
        if snap.translate_ms:
            self.last_ms = snap.translate_ms
        if snap.status and snap.status != self.model_status:  # a model was swapped in
            self._on_ready(snap.status)
            self.model_changed.emit(snap.status)
        if any(kind == "commit" for kind, _ in snap.effects):
            self._commits_since_label += 1
            if self._commits_since_label >= 10:
                self._commits_since_label = 0
                self._update_personalize_label()
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
        if self.measuring is not None:
            parts.append("measuring its accuracy…")
        if self.paused:
            parts.append("recording paused")
        self.model_label.setText(" · ".join(parts))
        tip = getattr(self, "model_quality_tip", "")
        self.model_label.setToolTip(PRIVACY + ("\n\n" + tip if tip else ""))
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

    # -- the text in the editor --------------------------------------------------------------------------------
    def _show_title(self) -> None:
        name = self.document_path.name if self.document_path else "untitled"
        self.setWindowTitle(f"{name}{'*' if self.editor.document().isModified() else ''} — 拼音 IME")

    def save_document(self, path: Path | str | None = None, ask: bool = False) -> bool:
        """Write the editor's text (UTF-8) to ``path``, the file it came from, or one the user picks; False when
        nothing was written (cancelled, or an error the user was told of: the text stays in the window)."""
        target = Path(path) if path else (None if ask else self.document_path)
        if target is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Save the text", str(self.document_path or Path.home()),
                                                    "Text (*.txt);;All files (*)")
            if not chosen:
                return False
            target = Path(chosen)
        try:
            save_text(target, self.editor.toPlainText())
        except DocumentError as e:
            QMessageBox.warning(self, "Not saved", str(e))
            return False
        self.document_path = target
        self.editor.document().setModified(False)
        self._show_title()
        self.statusBar().showMessage(f"saved {target}", 4000)
        return True

    def open_document(self, path: Path | str | None = None) -> bool:
        """Load a text file into the editor (after asking about unsaved text); False when nothing was loaded."""
        if not self.confirm_discard():
            return False
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Open a text", str(Path.home()), "Text (*.txt);;All files (*)")
            if not chosen:
                return False
            path = chosen
        try:
            text = load_text(path)
        except DocumentError as e:
            QMessageBox.warning(self, "Not opened", str(e))
            return False
        self.editor.setPlainText(text)
        self.document_path = Path(path)
        self.editor.document().setModified(False)
        self._show_title()
        return True

    def copy_all(self) -> None:
        QApplication.clipboard().setText(self.editor.toPlainText())
        self.statusBar().showMessage(f"copied {len(self.editor.toPlainText()):,} characters", 3000)

    def confirm_discard(self) -> bool:
        """True when the editor's text may be replaced or dropped: nothing unsaved, or saved now, or the user
        chose to discard it."""
        doc = self.editor.document()
        if not self.ask_unsaved or not doc.isModified() or not self.editor.toPlainText().strip():
            return True
        answer = QMessageBox.question(self, "Unsaved text", "The text has changes that are not saved. Save them?",
                                      QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Save:
            return self.save_document()
        return answer == QMessageBox.Discard

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closed and not self.confirm_discard():
            event.ignore()
            return
        self._closed = True
        if self.db is not None and not store.get_setting(self.db, KEEP_SETTING, True):
            for job in store.list_jobs(self.db):
                if job["state"] == "running":
                    jobs.pause(self.db, job["id"])  # the user chose: no training once the window is closed
        self.editor.popup.hide()
        self._stop_measuring()
        self.composer.stop()
        self.editor.snapshot_applied.disconnect(self._on_snapshot)
        super().closeEvent(event)
