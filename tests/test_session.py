import pytest

from engine.lexicon import default_lexicon
from engine.session import Session
from engine.translator import translate


@pytest.fixture
def session():
    lex = default_lexicon()
    return Session(lambda keys: translate(keys, lex))


def type_keys(s, keys):
    for k in keys:
        assert s.press(k)


def test_space_commits_first_candidate(session):
    type_keys(session, "nihao")
    assert session.preedit == "nihao" and session.candidates[0].text == "你好"
    session.press("space")
    assert session.committed == ["你好"] and not session.composing


def test_prefix_pick_keeps_composing_and_backspace_undoes_it(session):
    type_keys(session, "zhongguoren")
    texts = [c.text for c in session._all]
    idx = texts.index("中国")
    session.page = idx // session.page_size
    session.pick(idx % session.page_size)
    assert session.converted == "中国" and session.keys == "ren" and session.preedit == "中国ren"
    assert session.committed == []
    session.press("backspace"); session.press("backspace"); session.press("backspace")
    assert session.keys == "" and session.converted == "中国"
    session.press("backspace")  # into the prefix-committed part: its keys come back
    assert session.keys == "zhongguo" and session.converted == ""


def test_enter_escape_digits_paging(session):
    type_keys(session, "women")
    session.press("enter")
    assert session.committed == ["women"]
    type_keys(session, "shi")
    session.press("escape")
    assert not session.composing and session.committed == ["women"]
    type_keys(session, "shi")
    first_page = [c.text for c in session.candidates]
    assert session.press("=") and session.page == 1
    assert [c.text for c in session.candidates] != first_page
    session.press("-")
    assert session.page == 0
    session.press("3")
    assert session.committed[-1] == first_page[2]


def test_keys_not_for_the_session_pass_through(session):
    assert not session.press("space") and not session.press("backspace") and not session.press("'")
    assert not session.press("1")
