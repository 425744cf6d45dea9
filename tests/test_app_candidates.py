"""The candidate window on its own (a real widget, offscreen): long candidates wrap onto more rows and one wider
than the screen is elided, so the window is never wider than the screen and every candidate stays visible."""

from PySide6.QtCore import QRect
from PySide6.QtWidgets import QApplication

from ime_app.candidate_window import CandidateWindow

SENTENCE = "我们今天下午在北京大学图书馆门口见面然后一起"  # 21 characters: a 21-syllable sentence candidate


def _shown(window, qtbot, preedit, texts, page=0, page_count=1):
    window.set_candidates(preedit, texts, 0, page, page_count)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    return window.shown_labels


def _check_inside(window, widgets):
    inside = window.rect()
    for w in widgets:
        assert w.isVisible(), w.text()
        assert inside.contains(w.geometry()), (w.text(), w.geometry(), inside)
        assert w.width() >= w.sizeHint().width(), w.text()  # not squeezed: all its text is drawn
    for a in widgets:  # none covers another
        for b in widgets:
            assert a is b or not a.geometry().intersects(b.geometry()), (a.text(), b.text())


def test_nine_long_candidates_wrap_within_the_screen_width(qtbot):
    window = CandidateWindow()
    qtbot.addWidget(window)
    window.set_max_width(1600)  # the screen of the report: a 1,873 px window had candidates 6-9 off screen
    texts = tuple(SENTENCE[:21 - i] for i in range(9))
    labels = _shown(window, qtbot, "wo'men'jin'tian'xia'wu'zai'bei'jing'da'xue", texts, 0, 4)
    assert len(labels) == 9 and [label.text() for label in labels] == [f"{i + 1}.{t}" for i, t in enumerate(texts)]
    assert window.width() <= 1600 and len(window.rows) > 1
    _check_inside(window, labels + [w for w in (window.prev, window.pager, window.next) if w.isVisible()])
    assert window.pager.text() == "1/4" and window.next.isVisible()

    window.set_candidates("nihao", ("你好", "你", "尼"), 1, 0, 1)  # a short page goes back to one row
    QApplication.processEvents()
    assert [label.text() for label in window.shown_labels] == ["1.你好", "2.你", "3.尼"]
    assert window.width() < 400 and len({label.y() for label in window.shown_labels}) == 1
    _check_inside(window, window.shown_labels)


def test_a_candidate_wider_than_the_screen_is_elided_with_its_text_in_the_tooltip(qtbot):
    window = CandidateWindow()
    qtbot.addWidget(window)
    window.set_max_width(300)
    labels = _shown(window, qtbot, "wo'men" * 20, (SENTENCE * 2, "我们", "我"))
    assert window.width() <= 300
    first = labels[0]
    assert first.text() != f"1.{SENTENCE * 2}" and "…" in first.text() and first.toolTip() == SENTENCE * 2
    assert labels[1].text() == "2.我们" and not labels[1].toolTip()
    _check_inside(window, labels)
    assert "…" in window.preedit.text() and window.rect().contains(window.preedit.geometry())
