"""The composition session, key by key, with the real lexicon (and the real model where it matters)."""

import pytest

from engine.lexicon import default_lexicon
from engine.ime.session import Session
from engine.ime.translator import translate


@pytest.fixture
def session():
    lex = default_lexicon()
    commits = []
    s = Session(lambda keys: translate(keys, lex), on_commit=lambda *a: commits.append(a))
    s.commits = commits
    return s


def type_keys(s, keys):
    for k in keys:
        assert s.press(k)


def texts(s):
    return [c.text for c in s.all_candidates]


def pick_text(s, text):
    idx = texts(s).index(text)
    while s.page < idx // s.page_size:
        s.press("pagedown")
    s.pick(idx % s.page_size)


def test_space_commits_first_candidate_and_reports_the_pick(session):
    type_keys(session, "nihao")
    assert session.preedit == "nihao" and session.candidates[0].text == "你好"
    session.press("space")
    assert session.committed == ["你好"] and not session.composing
    (text, picks, keys), = session.commits
    assert text == "你好" and [p.text for p in picks] == ["你好"] and picks[0].syllables == ("ni", "hao")
    assert keys == "nihao"


def test_prefix_pick_keeps_composing_and_backspace_undoes_it(session):
    type_keys(session, "zhongguoren")
    pick_text(session, "中国")
    assert session.converted == "中国" and session.keys == "ren" and session.preedit == "中国ren"
    assert session.committed == [] and session.commits == []
    for _ in range(3):
        session.press("backspace")
    assert session.keys == "" and session.converted == "中国" and session.composing
    session.press("backspace")  # into the prefix-committed part: its keys come back
    assert session.keys == "zhongguo" and session.converted == "" and session.caret == len("zhongguo")
    assert session.candidates[0].text == "中国"


def test_prefix_pick_then_rest_commits_both_as_one(session):
    type_keys(session, "zhongguoren")
    pick_text(session, "中国")
    session.press("1")
    assert session.committed == ["中国" + session.commits[0][1][1].text]
    assert [p.text for p in session.commits[0][1]][0] == "中国"
    assert session.commits[0][2] == "zhongguoren"


def test_enter_escape_digits_paging(session):
    type_keys(session, "women")
    session.press("enter")
    assert session.committed == ["women"] and session.commits[-1][1] == []  # raw letters: no picks
    type_keys(session, "shi")
    session.press("escape")
    assert not session.composing and session.committed == ["women"]
    type_keys(session, "shi")
    first_page = [c.text for c in session.candidates]
    assert session.press("=") and session.page == 1
    assert [c.text for c in session.candidates] != first_page
    assert session.press("pagedown") and session.page == 2
    session.press("pageup"); session.press("-")
    assert session.page == 0
    session.press("-")  # already on the first page
    assert session.page == 0
    session.press("3")
    assert session.committed[-1] == first_page[2]


def test_paging_stops_at_the_last_page(session):
    type_keys(session, "zhuang")
    for _ in range(session.page_count + 3):
        session.press("pagedown")
    assert session.page == session.page_count - 1 and session.candidates
    assert not session.press("9") or True  # a digit past the page's end is ignored, not an error
    assert session.composing


def test_arrows_move_the_highlight_and_space_picks_it(session):
    type_keys(session, "shi")
    all_texts = texts(session)
    session.press("down"); session.press("down"); session.press("up"); session.press("down")
    assert session.highlight == 2
    for _ in range(session.page_size):  # down past the page's end turns the page
        session.press("down")
    assert session.page == 1 and session.highlight == 2 + session.page_size
    session.press("space")
    assert session.committed == [all_texts[2 + session.page_size]]


def test_caret_moves_and_edits_in_the_middle(session):
    type_keys(session, "nihao")
    session.press("left"); session.press("left"); session.press("left")
    assert session.caret == 2
    session.press("backspace")  # removes the i
    assert session.keys == "nhao" and session.caret == 1
    session.press("i")
    assert session.keys == "nihao" and session.caret == 2
    session.press("home")
    session.press("delete")
    assert session.keys == "ihao" and session.caret == 0
    session.press("end")
    assert session.caret == 4
    session.press("right")
    assert session.caret == 4


def test_display_shows_syllable_separators_and_caret(session):
    type_keys(session, "zhongguoren")
    assert session.display == ("zhong'guo'ren", len("zhong'guo'ren"))
    session.press("left"); session.press("left"); session.press("left")
    text, caret = session.display
    assert text == "zhong'guo'ren" and text[caret:] == "ren"
    session.press("escape")
    type_keys(session, "xi'an")
    assert session.display[0] == "xi'an"
    session.press("escape")
    type_keys(session, "bjdx")
    assert session.display[0] == "b'j'd'x"


def test_apostrophe_separates_syllables(session):
    type_keys(session, "xian")
    assert texts(session)[0] == "先" or "先" in texts(session)[:5]
    session.press("escape")
    type_keys(session, "xi'an")
    assert "西安" in texts(session)[:3]


def test_abbreviations_and_ambiguity(session):
    type_keys(session, "bjdx")
    assert "北京大学" in texts(session)[:3]
    session.press("escape")
    type_keys(session, "fangan")  # fang'an and fan'gan are both readings
    top = texts(session)[:10]
    assert "方案" in top and "反感" in top


def test_punctuation_when_idle_and_while_composing(session):
    assert session.press(",") and session.committed == ["，"]
    type_keys(session, "nihao")
    session.press("?")  # finishes the composition with the first candidate, then the mark
    assert session.committed == ["，", "你好", "？"]
    session.press('"'); session.press('"'); session.press("\\")
    assert session.committed[-3:] == ["“", "”", "、"]
    session.press("'"); session.press("'")  # not composing: the apostrophe is a Chinese single quote
    assert session.committed[-2:] == ["‘", "’"]


def test_english_mode_passes_everything_through(session):
    type_keys(session, "ni")
    session.set_chinese(False)
    assert session.committed == ["ni"] and not session.composing
    assert not session.press("h") and not session.press(",")
    session.set_chinese(True)
    assert session.press("h")


def test_keys_not_for_the_session_pass_through(session):
    assert not session.press("space") and not session.press("backspace") and not session.press("tab")
    assert not session.press("1") and not session.press("left") and not session.press("enter")


def test_bad_keys_give_no_candidates_but_keep_the_input(session):
    type_keys(session, "iiii")
    assert session.composing and session.all_candidates == []
    session.press("space")  # nothing to pick: nothing happens, nothing is lost
    assert session.keys == "iiii" and session.committed == []
    session.press("enter")
    assert session.committed == ["iiii"]


from hypothesis import given, settings
from hypothesis import strategies as st

KEYS = list("abcdefghijklmnopqrstuvwxyz'") * 3 + ["backspace", "delete", "left", "right", "home", "end", "up",
                                                   "down", "space", "enter", "escape", "pageup", "pagedown",
                                                   "1", "5", "9", "-", "=", ",", ".", '"', "?", "\x00", "é", "中", "@", ":", "w"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(KEYS), max_size=60))
def test_any_key_sequence_keeps_the_state_consistent(keys):
    lex = default_lexicon()
    s = Session(lambda k: translate(k, lex))
    committed = 0
    for k in keys:
        s.press(k)
        assert s.preedit == s.converted + s.keys
        assert 0 <= s.caret <= len(s.keys)
        assert 0 <= s.highlight < max(1, len(s.all_candidates))
        assert len(s.committed) >= committed
        committed = len(s.committed)
    assert all(isinstance(c, str) and c for c in s.committed)


def test_ten_thousand_keys_stay_bounded(session):
    import random

    rng = random.Random(1)
    syllables = ["zhong", "guo", "ren", "min", "ni", "hao", "shi", "jie", "xue", "xi"]
    typed = ""
    while len(typed) < 10_000:
        typed += rng.choice(syllables)
    for k in typed:
        session.press(k)
        assert len(session.keys) <= session.max_keys
    while session.composing:
        session.press("space")
    assert len("".join(session.committed)) > 1000  # everything became text; nothing was dropped


def test_a_point_or_comma_after_a_digit_stays_latin(session):
    """3.5, 1,000 and 12:30 as fcitx5 types them; after letters or alone they are Chinese marks."""
    s = session
    typed = []
    for key in "3.5,1,000:":
        if not s.press(key):
            typed.append(key)
        typed.extend(s.committed)
        s.committed.clear()
    assert "".join(typed) == "3.5,1,000:"
    for key in "ni":
        s.press(key)
    s.press("space")
    assert s.press(".") and s.committed[-1] == "。"


@pytest.mark.parametrize("typed, end, text", [
    ("www.example.com", "space", "www.example.com"),
    ("https://github.com/a_b?x=1&y=2#top", "enter", "https://github.com/a_b?x=1&y=2#top"),
    ("ftp.gnu.org", "space", "ftp.gnu.org"),
    ("mailto:li@163.com", "space", "mailto:li@163.com"),
    ("zhang.san@mail.cn", "space", None),  # letters then '.': 。 (a sentence end), not a Latin run
    ("zhangsan@mail.cn", "space", "zhangsan@mail.cn"),
])
def test_urls_and_mail_addresses_stay_latin_and_are_not_learned(session, typed, end, text):
    """librime's url/email recognizers: www. http: ftp. mailto: at the start, or @ after letters."""
    s = session
    for k in typed:
        assert s.press(k)
    s.press(end)
    if text is None:
        assert "。" in "".join(s.committed)
        return
    assert s.committed == [text] and not s.composing and not s.latin
    (committed, picks, keys), = s.commits
    assert committed == text and picks == []  # raw: the ranker learns no phrase from it


def test_a_latin_run_edits_and_cancels(session):
    s = session
    type_keys(s, "www.a")
    assert s.latin and s.preedit == "www.a" and texts(s) == ["www.a"] and s.display == ("www.a", 5)
    type_keys(s, ["backspace", "backspace", "left", "x"])
    assert s.preedit == "wwxw"
    type_keys(s, ["escape"])
    assert not s.composing and not s.latin and not s.committed
    type_keys(s, "www")  # a fresh composition is pinyin again
    assert not s.latin and texts(s) and texts(s)[0] != "www"


def test_a_closing_single_quote_is_not_taken_as_a_separator(session):
    s = session
    type_keys(s, ["'", "n", "i", "'", "h", "a", "o", "'", "space"])  # the inner ' separates, the last closes
    assert "".join(s.committed) == "‘你好’"
    s.committed.clear()
    type_keys(s, ["x", "i", "'", "a", "n", "space"])  # no quote open: ' only separates
    assert s.committed == ["西安"]
    type_keys(s, ["'", "y", "'", ","])
    assert "".join(s.committed[1:]).endswith("’，") and "".join(s.committed[1:]).startswith("‘")


def test_the_preedit_splits_keys_as_the_engine_reads_them():
    from engine.pinyin import FuzzyOptions

    s = Session(lambda keys: [], fuzzy=FuzzyOptions(typos=True))
    for k in "zhognguo":
        s.press(k)
    assert s.display[0] == "zhogn'guo"  # the typo reading's split, not zh'o'g'n'guo
    s.fuzzy = FuzzyOptions()
    assert s.display[0] == "zh'o'g'n'guo"


# -- prediction after a commit (the shipped character LM and lexicon) ----------------------------------------
@pytest.fixture(scope="module")
def shipped_predictor():
    import json

    from engine.lm.char_lm import CharLM
    from engine.lexicon import ASSETS_DIR
    from engine.ime.prediction import Predictor

    model = ASSETS_DIR / "model"
    chars = json.loads((model / "config.json").read_text(encoding="utf-8"))["chars"]
    return Predictor(CharLM.load(model / "char_lm.safetensors", chars), chars, default_lexicon())


@pytest.fixture
def predicting(shipped_predictor):
    lex = default_lexicon()
    commits = []
    s = Session(lambda keys: translate(keys, lex), on_commit=lambda *a: commits.append(a),
                predictor=shipped_predictor)
    s.commits = commits
    type_keys(s, "zhonghuarenmin")
    s.press("space")
    assert s.committed == ["中华人民"]
    return s


def test_a_commit_is_followed_by_predictions_and_a_digit_picks_one(predicting):
    s = predicting
    assert s.predicting and not s.composing and s.preedit == ""
    assert "共和国" in texts(s) and all(c.source == "prediction" for c in s.all_candidates)
    assert s.press(str(texts(s).index("共和国") + 1))
    assert s.committed == ["中华人民", "共和国"]
    assert s.commits[-1] == ("共和国", [], "")  # recorded, but no phrase taught: no pinyin was typed for it
    assert s.predicting and texts(s)  # and it predicts again after the pick


def test_escape_dismisses_and_arrows_move(predicting):
    s = predicting
    assert s.press("down") and s.highlight == 1 and s.predicting
    assert s.press("up") and s.highlight == 0
    assert s.press("pagedown") and s.predicting  # one page only: stays
    assert s.press("escape") and not s.predicting and s.all_candidates == []
    assert s.committed == ["中华人民"] and len(s.commits) == 1
    assert not s.press("1")  # no predictions: the digit is the editor's again


def test_a_letter_dismisses_and_starts_composing(predicting):
    s = predicting
    assert s.press("n") and s.composing and not s.predicting and s.keys == "n"
    assert all(c.source != "prediction" for c in s.all_candidates)
    type_keys(s, "ihao")
    s.press("space")
    assert s.committed[-1] == "你好" and s.predicting


@pytest.mark.parametrize("key", ["space", "enter", "backspace", "left"])
def test_other_keys_dismiss_and_go_to_the_editor(predicting, key):
    assert not predicting.press(key) and not predicting.predicting
    assert predicting.committed == ["中华人民"]


def test_a_digit_past_the_predictions_is_typed(predicting):
    s = predicting
    s.page_size = 3
    s.highlight = 0
    assert len(s.candidates) == 3 and s.page_count > 1
    assert not s.press("7") and not s.predicting


def test_no_predictions_when_off_after_raw_letters_or_punctuation(shipped_predictor):
    lex = default_lexicon()
    s = Session(lambda keys: translate(keys, lex), predictor=shipped_predictor, prediction=False)
    type_keys(s, "nihao")
    s.press("space")
    assert s.committed == ["你好"] and not s.predicting
    s.prediction = True
    type_keys(s, "nihao")
    s.press("enter")  # raw letters
    assert not s.predicting
    type_keys(s, "nihao")
    s.press(".")  # the candidate, then 。: nothing is predicted after a full stop
    assert s.committed[-2:] == ["你好", "。"] and not s.predicting


def test_deferred_prediction_waits_for_predict_now(shipped_predictor):
    lex = default_lexicon()
    s = Session(lambda keys: translate(keys, lex), predictor=shipped_predictor, defer_prediction=True)
    type_keys(s, "nihao")
    s.press("space")
    assert s.prediction_pending and not s.predicting
    s.predict_now()
    assert s.predicting and not s.prediction_pending
    s.press("escape")
    type_keys(s, "nihao")
    s.press("space")
    assert s.prediction_pending
    assert s.press("w") and not s.prediction_pending  # a key came first: those predictions are never shown
    s.predict_now()
    assert not s.predicting and s.composing


def test_replay_types_reference_lines_through_the_session_as_a_user_would():
    """``engine.ime.replay`` (``convert --learn``, the personalization benchmark): the keys pressed, then the
    candidates that spell the line picked with digits, paging down when one is further on; the commit reaches
    the pipeline's learning. A line no candidate spells is cancelled and nothing is committed."""
    from engine import store
    from engine.ime.pipeline import build_pipeline
    from engine.ime.replay import Typist

    db = store.open_memory_store()
    typist = Typist(build_pipeline(model_dir=None, db=db))  # the lexicon alone: 涵 is on the second page for han
    pressed = []
    press = typist.session.press
    typist.session.press = lambda key: pressed.append(key) or press(key)
    assert typist.type("张子涵来了", "zhang zi han lai le".split())
    assert "".join(pressed).startswith("zhang'zi'han'lai'le") and "pagedown" in pressed
    assert not typist.type("你好", ["zai", "jian"]) and not typist.session.composing
    assert [(r["text"], r["pinyin"]) for r in store.list_commits(db)] == [("张子涵来了", "zhang zi han lai le")]
    assert "张子涵来了" in {p["text"] for p in store.list_phrases(db)}  # learned, as from the app's commits
