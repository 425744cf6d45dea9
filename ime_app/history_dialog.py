""""Your data": what was committed and what was learned, from the user store, with the controls over it.

Two tabs. History: the commits (newest first), search, delete selected or all, pause recording, export (JSON
with everything, or plain text one commit a line) and import (the same two formats, size-limited and
validated before anything is written). Learned phrases: search, edit text/pinyin, pin (always first), delete
selected or all. Every change calls ``on_change`` so the running engine reloads what it learned. Nothing
leaves this computer, and the dialog says so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QFileDialog, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QLineEdit, QMessageBox, QPushButton, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from engine import store
SHOWN = 500  # rows listed at once (search narrows it down)
MAX_IMPORT_BYTES = 50 * 1024 * 1024
PRIVACY = "Everything here stays on this computer: nothing you type is sent anywhere."


def export_history(db, path: str | Path) -> int:
    """JSON (``.json``: commits and phrases, the CLI's format) or plain text (one commit a line)."""
    path = Path(path)
    data = store.export_data(db)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, ensure_ascii=False, indent=1)
    else:
        text = "".join(c["text"].replace("\n", " ") + "\n" for c in data["commits"])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return len(data["commits"])


def import_history(db, path: str | Path) -> dict:
    """Import a file written by ``export_history`` (JSON or plain text); raises StoreError/ValueError with a
    message for the user and writes nothing when the file is invalid."""
    path = Path(path)
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise ValueError(f"{path.name} is over {MAX_IMPORT_BYTES // 2**20} MB: split it before importing")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8 text: export it again as .json or .txt") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path.name} is not valid JSON ({e})") from None
    else:
        now = time.time()
        data = {"commits": [{"text": line.strip(), "source": "import", "created_at": now}
                            for line in text.splitlines() if line.strip()]}
    return store.import_data(db, data)


class HistoryDialog(QDialog):
    def __init__(self, db, on_change: Callable[[], None] = lambda: None, parent: QWidget | None = None,
                 where: str = "") -> None:
        super().__init__(parent)
        self.db, self.on_change = db, on_change
        self.setWindowTitle("Your data — history and learned phrases")
        self.resize(640, 460)
        tabs = QTabWidget()
        tabs.addTab(self._history_tab(), "History")
        tabs.addTab(self._phrases_tab(), "Learned phrases")
        privacy = QLabel(PRIVACY + (f" Stored in {where}." if where else ""))
        privacy.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(privacy)
        self.tabs = tabs
        self.refresh()

    # -- history -------------------------------------------------------------------------------------------
    def _history_tab(self) -> QWidget:
        self.history_search = QLineEdit(placeholderText="Search what you typed…")
        self.history_search.textChanged.connect(self.refresh_history)
        self.history = _table(["When", "Text", "Pinyin"])
        self.pause = QCheckBox("Pause recording (nothing is kept or learned)")
        self.pause.setChecked(store.is_recording_paused(self.db))
        self.pause.toggled.connect(self._set_paused)
        buttons = _buttons([("Delete selected", self.delete_selected_commits), ("Delete all…", self.delete_all_commits),
                            ("Export…", self._export), ("Import…", self._import)])
        return _page(self.history_search, self.history, self.pause, buttons)

    def refresh_history(self) -> None:
        rows = store.list_commits(self.db, search=self.history_search.text().strip() or None, limit=SHOWN)
        _fill(self.history, rows, lambda r: [time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
                                             r["text"], r["pinyin"] or ""])

    def delete_selected_commits(self) -> None:
        for id in _selected_ids(self.history):
            store.delete_commit(self.db, id)
        self._changed()

    def delete_all_commits(self, confirm: bool = True) -> None:
        if confirm and not _ask(self, "Delete all history?", "Every committed text is deleted from this computer. "
                                "Learned phrases stay (delete them on the other tab)."):
            return
        store.delete_all_commits(self.db)
        self._changed()

    def _set_paused(self, paused: bool) -> None:
        store.set_recording_paused(self.db, paused)
        self.on_change()

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export history", "pinyin-ime-history.json",
                                              "JSON, everything (*.json);;Plain text, one commit a line (*.txt)")
        if path:
            try:
                n = export_history(self.db, path)
            except OSError as e:
                QMessageBox.warning(self, "Export failed", f"Could not write {path}: {e}. Choose another folder.")
                return
            QMessageBox.information(self, "Exported", f"{n} commits written to {path}.")

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import history", "", "History (*.json *.txt)")
        if path:
            try:
                result = import_history(self.db, path)
            except (ValueError, OSError) as e:  # StoreError is a ValueError
                QMessageBox.warning(self, "Nothing imported", str(e))
                return
            self._changed()
            QMessageBox.information(self, "Imported", f"{result['commits']} commits and {result.get('phrases', 0)} "
                                    "phrases added.")

    # -- phrases -------------------------------------------------------------------------------------------
    def _phrases_tab(self) -> QWidget:
        self.phrase_search = QLineEdit(placeholderText="Search learned phrases…")
        self.phrase_search.textChanged.connect(self.refresh_phrases)
        self.phrases = _table(["Phrase", "Pinyin", "Picked", "Pinned"])
        self.phrases.doubleClicked.connect(lambda _: self.edit_selected_phrase())
        buttons = _buttons([("Edit…", self.edit_selected_phrase), ("Pin / unpin", self.toggle_pin),
                            ("Delete selected", self.delete_selected_phrases), ("Delete all…", self.delete_all_phrases)])
        hint = QLabel("A phrase you picked twice comes first for its pinyin; a pinned one always does.")
        return _page(self.phrase_search, self.phrases, hint, buttons)

    def refresh_phrases(self) -> None:
        rows = store.list_phrases(self.db, search=self.phrase_search.text().strip() or None, limit=SHOWN)
        _fill(self.phrases, rows, lambda r: [r["text"], r["pinyin"], str(r["count"]), "📌" if r["pinned"] else ""])

    def edit_selected_phrase(self, text: str | None = None, pinyin: str | None = None) -> None:
        ids = _selected_ids(self.phrases)
        if not ids:
            return
        row = self.phrases.item(self.phrases.currentRow(), 0)
        old_text, old_pinyin = row.text(), self.phrases.item(self.phrases.currentRow(), 1).text()
        if text is None:
            text, ok = QInputDialog.getText(self, "Edit phrase", "Phrase:", text=old_text)
            if not ok:
                return
        if pinyin is None:
            pinyin, ok = QInputDialog.getText(self, "Edit phrase", "Pinyin (syllables with spaces):", text=old_pinyin)
            if not ok:
                return
        try:
            store.update_phrase(self.db, ids[0], text=text, pinyin=pinyin)
        except ValueError as e:
            QMessageBox.warning(self, "Not changed", str(e))
            return
        self._changed()

    def toggle_pin(self) -> None:
        for r in self.phrases.selectionModel().selectedRows():
            id = self.phrases.item(r.row(), 0).data(Qt.UserRole)
            pinned = bool(self.phrases.item(r.row(), 3).text())
            store.update_phrase(self.db, id, pinned=not pinned)
        self._changed()

    def delete_selected_phrases(self) -> None:
        for id in _selected_ids(self.phrases):
            store.delete_phrase(self.db, id)
        self._changed()

    def delete_all_phrases(self, confirm: bool = True) -> None:
        if confirm and not _ask(self, "Delete all learned phrases?", "Candidates go back to the model's order."):
            return
        store.delete_all_phrases(self.db)
        store.delete_all_pairs(self.db)
        self._changed()

    # -- common --------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.refresh_history()
        self.refresh_phrases()

    def _changed(self) -> None:
        self.refresh()
        self.on_change()


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
    return table


def _fill(table: QTableWidget, rows: list[dict], cells: Callable[[dict], list[str]]) -> None:
    table.setRowCount(len(rows))
    for i, r in enumerate(rows):
        for j, value in enumerate(cells(r)):
            item = QTableWidgetItem(value)
            item.setData(Qt.UserRole, r["id"])
            table.setItem(i, j, item)


def _selected_ids(table: QTableWidget) -> list[int]:
    return [table.item(r.row(), 0).data(Qt.UserRole) for r in table.selectionModel().selectedRows()]


def _buttons(specs: list[tuple[str, Callable]]) -> QHBoxLayout:
    row = QHBoxLayout()
    for label, slot in specs:
        b = QPushButton(label)
        b.clicked.connect(lambda _=False, slot=slot: slot())
        row.addWidget(b)
    row.addStretch(1)
    return row


def _page(*parts) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    for p in parts:
        layout.addLayout(p) if isinstance(p, QHBoxLayout) else layout.addWidget(p)
    return page


def _ask(parent: QWidget, title: str, text: str) -> bool:
    return QMessageBox.question(parent, title, text, QMessageBox.Yes | QMessageBox.No,
                                QMessageBox.No) == QMessageBox.Yes
