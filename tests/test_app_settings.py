"""The Settings dialog, driven through its real widgets (offscreen) in the app's window with the shipped model and
a real store: each change applies to typing at once and is there again in a new window on the same data."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from engine import store
from engine.pinyin import FUZZY_NAMES, FuzzyOptions
from ime_app.settings import DEFAULTS, KEYS, Settings, load_settings


def close_window(w):
    w.close()
    w.db.close()


@pytest.fixture
def win(open_window, tmp_path):
    w = open_window(tmp_path)
    yield w
    close_window(w)


def typed(win, keys):
    """The candidates for ``keys`` (then the composition is cancelled)."""
    QTest.keyClicks(win.editor, keys)
    assert win.wait_idle()
    snap = win.composer.last
    QTest.keyClick(win.editor, Qt.Key_Escape)
    assert win.wait_idle()
    return snap.candidates


def settings_from_menu(win):
    action = next(a for a in win.menuBar().actions()[0].menu().actions() if a.text() == "Settings…")
    action.trigger()
    dialog = win.settings_dialog
    assert dialog.isVisible()
    return dialog


def test_defaults_typos_on_no_fuzzy_nine_per_page(win):
    assert load_settings(win.db) == DEFAULTS
    assert win.composer.pipeline.fuzzy == FuzzyOptions(typos=True)
    assert win.composer.session.page_size == 9
    dialog = settings_from_menu(win)
    assert dialog.typos.isChecked() and not any(box.isChecked() for box in dialog.fuzzy.values())
    assert list(dialog.fuzzy) == list(FUZZY_NAMES)
    assert dialog.page_size.value() == 9 and dialog.horizontal.isChecked()


def test_fuzzy_pair_applies_live(win):
    assert "中国" not in typed(win, "zongguo")
    dialog = settings_from_menu(win)
    dialog.fuzzy["z=zh"].click()
    assert store.get_setting(win.db, KEYS["fuzzy"]) == ["z=zh"]
    assert win.wait_idle()
    assert win.composer.pipeline.fuzzy == FuzzyOptions.of("z=zh", typos=True)
    # the engine ranks fuzzy readings after the exact ones (总国, 宗国 …), on the first page
    assert "中国" in typed(win, "zongguo")
    dialog.fuzzy["z=zh"].click()
    assert win.wait_idle() and "中国" not in typed(win, "zongguo")


def test_typo_tolerance_off_applies_live(win):
    assert typed(win, "zhognguo")[0] == "中国"
    dialog = settings_from_menu(win)
    dialog.typos.click()
    assert store.get_setting(win.db, KEYS["typos"]) is False
    assert win.wait_idle()
    assert "中国" not in typed(win, "zhognguo")
    dialog.typos.click()
    assert win.wait_idle() and typed(win, "zhognguo")[0] == "中国"


def test_a_change_while_composing_translates_again(win):
    QTest.keyClicks(win.editor, "zongguo")
    assert win.wait_idle() and "中国" not in win.candidate_texts()
    settings_from_menu(win).fuzzy["z=zh"].click()
    assert win.wait_idle() and "中国" in win.candidate_texts()


def test_page_size_and_font_size_apply_live(win):
    dialog = settings_from_menu(win)
    dialog.page_size.setValue(5)
    assert win.wait_idle()
    QTest.keyClicks(win.editor, "shi")
    assert win.wait_idle()
    snap = win.composer.last
    popup = win.editor.popup
    assert len(snap.candidates) == 5 and snap.page_count > 1
    assert len(popup.shown_labels) == 5 and popup.shown_labels[-1].text().startswith("5.")
    QTest.keyClick(win.editor, Qt.Key_PageDown)  # the next page starts at the 6th candidate
    assert win.wait_idle() and win.composer.last.page == 1 and len(win.composer.last.candidates) == 5
    before = popup.shown_labels[0].sizeHint().height()
    dialog.font_size.setValue(24)
    assert popup.shown_labels[0].font().pointSize() == 24 and popup.shown_labels[0].sizeHint().height() > before
    assert popup.preedit.font().pointSize() == 21
    dialog.page_size.setValue(3)  # while composing: the page holds 3 at once
    assert win.wait_idle()
    QTest.keyClick(win.editor, Qt.Key_Down)
    assert win.wait_idle() and len(win.composer.last.candidates) == 3 and len(popup.shown_labels) == 3
    assert store.get_setting(win.db, KEYS["page_size"]) == 3 and store.get_setting(win.db, KEYS["font_size"]) == 24


def test_vertical_orientation_puts_candidates_in_a_column(win):
    QTest.keyClicks(win.editor, "shi")
    assert win.wait_idle()
    popup = win.editor.popup
    labels = popup.shown_labels
    assert len(labels) == 9 and len({label.y() for label in labels}) == 1  # one row
    dialog = settings_from_menu(win)
    dialog.vertical.click()
    labels = popup.shown_labels
    assert len(popup.rows) >= 9
    assert len({label.x() for label in labels}) == 1  # one column, in order
    ys = [label.y() for label in labels]
    assert ys == sorted(ys) and len(set(ys)) == 9
    assert popup.height() > popup.width() / 2
    assert store.get_setting(win.db, KEYS["vertical"]) is True
    dialog.horizontal.click()
    assert len({label.y() for label in popup.shown_labels}) == 1


def test_settings_survive_a_restart(open_window, tmp_path):
    w = open_window(tmp_path)
    dialog = settings_from_menu(w)
    dialog.typos.click()
    dialog.fuzzy["in=ing"].click()
    dialog.fuzzy["z=zh"].click()
    dialog.page_size.setValue(4)
    dialog.font_size.setValue(18)
    dialog.vertical.click()
    close_window(w)

    again = open_window(tmp_path)
    try:
        expected = Settings(typos=False, fuzzy=("z=zh", "in=ing"), page_size=4, font_size=18, vertical=True)
        assert again.settings == expected
        assert again.composer.pipeline.fuzzy == FuzzyOptions.of("z=zh", "in=ing", typos=False)
        assert again.composer.session.page_size == 4
        assert again.editor.popup.vertical and again.editor.popup.font_size == 18
        assert "中国" in typed(again, "zongguo") and "中国" not in typed(again, "zhognguo")
        QTest.keyClicks(again.editor, "shi")
        assert again.wait_idle() and len(again.composer.last.candidates) == 4
        dialog = settings_from_menu(again)
        assert (not dialog.typos.isChecked() and dialog.fuzzy["in=ing"].isChecked()
                and dialog.page_size.value() == 4 and dialog.vertical.isChecked())
        dialog.defaults_button.click()  # back to the defaults, live and kept
        assert again.wait_idle() and load_settings(again.db) == DEFAULTS
        assert again.composer.pipeline.fuzzy == FuzzyOptions(typos=True) and not again.editor.popup.vertical
    finally:
        close_window(again)


def test_bad_stored_values_read_as_the_defaults(tmp_path):
    db = store.open_store(tmp_path)
    store.set_setting(db, KEYS["typos"], "yes")
    store.set_setting(db, KEYS["fuzzy"], ["z=zh", "q=x", 3])
    store.set_setting(db, KEYS["page_size"], 42)
    store.set_setting(db, KEYS["font_size"], "big")
    assert load_settings(db) == Settings(fuzzy=("z=zh",), page_size=9)
    db.close()
    assert load_settings(None) == DEFAULTS


def test_deleting_all_data_resets_the_settings(win):
    dialog = settings_from_menu(win)
    dialog.page_size.setValue(5)
    dialog.fuzzy["l=n"].click()
    assert win.wait_idle() and win.composer.session.page_size == 5
    win.delete_all_data(confirm=False)
    assert win.wait_idle()
    assert win.settings == DEFAULTS and win.composer.session.page_size == 9
    assert win.composer.pipeline.fuzzy == FuzzyOptions(typos=True)
    again = settings_from_menu(win)  # a new dialog on the fresh store
    assert again is not dialog and again.page_size.value() == 9
    again.page_size.setValue(6)
    assert store.get_setting(win.db, KEYS["page_size"]) == 6


# -- prediction and traditional output -----------------------------------------------------------------------
def test_predictions_show_after_a_commit_and_a_digit_commits_one(win):
    assert win.settings.prediction and not win.settings.traditional
    QTest.keyClicks(win.editor, "zhonghuarenmin")
    QTest.keyClick(win.editor, Qt.Key_Space)
    assert win.wait_idle()
    snap = win.composer.last
    assert win.editor.toPlainText() == "中华人民"
    assert snap.predicting and not snap.composing and "共和国" in snap.candidates
    popup = win.editor.popup
    assert popup.isVisible() and popup.predicting and popup.preedit.text() == "联想"
    QTest.keyClick(win.editor, Qt.Key_1 + snap.candidates.index("共和国"))
    assert win.wait_idle()
    assert win.editor.toPlainText() == "中华人民共和国"
    assert [c["text"] for c in store.list_commits(win.db, limit=5)][:2] == ["共和国", "中华人民"]
    QTest.keyClick(win.editor, Qt.Key_Escape)  # dismissed: the next digit is typed into the editor
    assert win.wait_idle() and not win.composer.last.predicting and not popup.isVisible()
    QTest.keyClick(win.editor, Qt.Key_1)
    assert win.wait_idle() and win.editor.toPlainText() == "中华人民共和国1"


def test_a_key_while_predicting_is_typed_as_usual(win):
    QTest.keyClicks(win.editor, "nihao")
    QTest.keyClick(win.editor, Qt.Key_Space)
    assert win.wait_idle() and win.composer.last.predicting
    QTest.keyClick(win.editor, Qt.Key_Return)  # dismisses and reaches the editor
    QTest.keyClicks(win.editor, "women")
    assert win.wait_idle() and win.composer.last.composing and win.composer.last.candidates[0] == "我们"
    QTest.keyClick(win.editor, Qt.Key_Space)
    assert win.wait_idle() and win.editor.toPlainText() == "你好\n我们"


def test_prediction_off_applies_live_and_is_kept(win):
    dialog = settings_from_menu(win)
    assert dialog.prediction.isChecked()
    dialog.prediction.click()
    assert store.get_setting(win.db, KEYS["prediction"]) is False and win.wait_idle()
    QTest.keyClicks(win.editor, "nihao")
    QTest.keyClick(win.editor, Qt.Key_Space)
    assert win.wait_idle() and not win.composer.last.predicting and not win.composer.last.candidates
    QTest.keyClick(win.editor, Qt.Key_1)
    assert win.wait_idle() and win.editor.toPlainText() == "你好1"
    assert load_settings(win.db) == Settings(prediction=False)


def test_traditional_output_commits_traditional_and_records_simplified(win):
    dialog = settings_from_menu(win)
    dialog.traditional.click()
    assert store.get_setting(win.db, KEYS["traditional"]) is True and win.wait_idle()
    QTest.keyClicks(win.editor, "zhongguo")
    assert win.wait_idle() and win.composer.last.candidates[0] == "中國"
    QTest.keyClick(win.editor, Qt.Key_Space)
    assert win.wait_idle()
    assert win.editor.toPlainText() == "中國"
    assert store.list_commits(win.db, limit=1)[0]["text"] == "中国"  # the engine keeps simplified
    assert all(t == win.composer._script(t) for t in win.composer.last.candidates)  # predictions too
    dialog.traditional.click()
    assert win.wait_idle()
    QTest.keyClick(win.editor, Qt.Key_Escape)
    QTest.keyClicks(win.editor, "zhongguo")
    QTest.keyClick(win.editor, Qt.Key_Space)
    assert win.wait_idle() and win.editor.toPlainText() == "中國中国"


def test_output_settings_survive_a_restart(open_window, tmp_path):
    w = open_window(tmp_path)
    dialog = settings_from_menu(w)
    dialog.prediction.click()
    dialog.traditional.click()
    close_window(w)
    again = open_window(tmp_path)
    try:
        assert again.settings == Settings(prediction=False, traditional=True)
        assert not again.composer.session.prediction and again.composer._script is not None
        dialog = settings_from_menu(again)
        assert not dialog.prediction.isChecked() and dialog.traditional.isChecked()
    finally:
        close_window(again)
