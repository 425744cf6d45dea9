"""F7 in the real window (offscreen): the selection is checked on the worker thread, the popup proposes the
correction, Enter takes it as one undoable edit, Escape leaves the text alone, no proposal says so."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor


def _select(editor, start, end):
    cursor = editor.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.KeepAnchor)
    editor.setTextCursor(cursor)


def _check(qtbot, editor):
    qtbot.keyClick(editor, Qt.Key_F7)
    qtbot.waitUntil(lambda: editor.correction_popup.isVisible(), timeout=30000)
    return editor.correction_popup


def test_enter_accepts_the_proposal_and_undo_restores(qtbot, open_window, tmp_path):
    w = open_window(tmp_path)
    ed = w.editor
    ed.setPlainText("今天很好。我们一起去公圆，OK？")
    ed.document().setModified(False)
    _select(ed, 5, 12)
    popup = _check(qtbot, ed)
    assert popup.proposing and "我们一起去公圆 → 我们一起去公园" in popup.message
    qtbot.keyClick(ed, Qt.Key_Return)
    assert ed.toPlainText() == "今天很好。我们一起去公园，OK？"
    assert not popup.isVisible() and ed.document().isModified()
    ed.undo()
    assert ed.toPlainText() == "今天很好。我们一起去公圆，OK？"
    assert not ed.document().isModified()  # back to the saved text
    ed.redo()
    assert ed.toPlainText() == "今天很好。我们一起去公园，OK？"


def test_escape_dismisses_and_nothing_changes(qtbot, open_window, tmp_path):
    w = open_window(tmp_path)
    ed = w.editor
    ed.setPlainText("我们一起去公圆")
    _select(ed, 0, 7)
    popup = _check(qtbot, ed)
    assert popup.proposing
    qtbot.keyClick(ed, Qt.Key_Escape)
    assert not popup.isVisible() and ed.toPlainText() == "我们一起去公圆"
    assert ed.textCursor().selectedText() == "我们一起去公圆"  # Escape went to the popup, not the editor


def test_without_a_selection_the_sentence_before_the_cursor_is_checked(qtbot, open_window, tmp_path):
    w = open_window(tmp_path)
    ed = w.editor
    ed.setPlainText("今天天气很好。我们一起去公圆。")
    ed.moveCursor(QTextCursor.End)
    assert ed.check_range() == (7, 15)
    _check(qtbot, ed)
    qtbot.keyClick(ed, Qt.Key_Tab)
    assert ed.toPlainText() == "今天天气很好。我们一起去公园。"


def test_correct_text_says_no_change_and_the_message_goes_away(qtbot, open_window, tmp_path):
    w = open_window(tmp_path)
    ed = w.editor
    ed.setPlainText("我们一起去公园")
    _select(ed, 0, 7)
    popup = _check(qtbot, ed)
    assert not popup.proposing and popup.message == "no change proposed"
    qtbot.keyClick(ed, Qt.Key_Return)  # a message takes no keys: Enter edits the text as usual
    assert ed.toPlainText() == "\n"
    qtbot.waitUntil(lambda: not popup.isVisible(), timeout=5000)


def test_the_context_menu_offers_the_check(qtbot, open_window, tmp_path):
    w = open_window(tmp_path)
    ed = w.editor
    assert ed.correct_action in ed.actions() and ed.correct_action.text() == "Check selection (F7)"
    assert ed.correct_action.shortcut().toString() == "F7"


def test_the_edit_menu_offers_the_check_and_triggering_it_checks(qtbot, open_window, tmp_path):
    w = open_window(tmp_path)
    ed = w.editor
    edit = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Edit")
    assert ed.correct_action in edit.actions()
    ed.setPlainText("我们一起去公圆")
    _select(ed, 0, 7)
    ed.correct_action.trigger()  # as a click on the menu entry does
    qtbot.waitUntil(lambda: ed.correction_popup.isVisible(), timeout=30000)
    assert ed.correction_popup.proposing and "公园" in ed.correction_popup.message
