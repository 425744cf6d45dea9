"""The editor's text: Save / Open / Copy all and the question before unsaved text is lost (real window, offscreen)."""

import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from ime_app.document import DocumentError, load_text, save_text
from ime_app.window import MainWindow


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    f = tmp_path / "a.txt"
    save_text(f, "你好")
    assert f.read_text(encoding="utf-8") == "你好" and load_text(f) == "你好"
    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DocumentError, match="unchanged"):
        save_text(f, "新的")
    assert f.read_text(encoding="utf-8") == "你好"  # the old file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp file left behind


def test_load_reads_gb18030_and_refuses_binary(tmp_path):
    (tmp_path / "gb.txt").write_bytes("中文".encode("gb18030"))
    assert load_text(tmp_path / "gb.txt") == "中文"
    (tmp_path / "bin").write_bytes(b"\xff\xff\xff\x00")
    with pytest.raises(DocumentError, match="neither"):
        load_text(tmp_path / "bin")
    with pytest.raises(DocumentError, match="could not open"):
        load_text(tmp_path / "missing.txt")


@pytest.fixture
def win(qtbot, tmp_path):
    w = MainWindow(home=tmp_path / "home", ask_unsaved=True)  # closed below, not by qtbot (it would ask)
    w.show()
    w.editor.setFocus()
    assert w.wait_idle(60), "the model did not load"
    yield w
    w.editor.document().setModified(False)
    w.close()
    w.db.close()


def typed(win, keys, *finish):
    QTest.keyClicks(win.editor, keys)
    for k in finish:
        QTest.keyClick(win.editor, k)
    assert win.wait_idle()


def test_typed_text_is_saved_opened_copied_and_not_lost_on_close(win, tmp_path, monkeypatch):
    typed(win, "nihao", Qt.Key_Space)
    assert win.editor.toPlainText() == "你好" and win.windowTitle().startswith("untitled*")
    f = tmp_path / "mine.txt"
    assert win.save_document(f)
    assert f.read_text(encoding="utf-8") == "你好" and win.windowTitle().startswith("mine.txt —")
    win.copy_all()
    assert QApplication.clipboard().text() == "你好"

    typed(win, "zhongguo", Qt.Key_Space)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.Cancel)
    win.close()
    assert asked and win.isVisible()  # Cancel: the window stays, the text too
    assert win.editor.toPlainText() == "你好中国"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Save)
    assert win.open_document(f)  # Save first (to mine.txt), then open it again
    assert f.read_text(encoding="utf-8") == "你好中国" and win.editor.toPlainText() == "你好中国"
    assert not win.editor.document().isModified()


def test_a_failed_save_says_so_and_keeps_the_text(win, tmp_path, monkeypatch):
    typed(win, "nihao", Qt.Key_Space)
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    assert not win.save_document(tmp_path / "no-such-folder" / "x.txt")
    assert warned and "still in the window" in warned[0]
    assert win.editor.toPlainText() == "你好" and win.editor.document().isModified()
