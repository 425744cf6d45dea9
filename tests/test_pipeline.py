"""The assembled pipeline with the shipped model: what the app runs on every keystroke."""

import pytest

from engine.ime.pipeline import build_pipeline
from engine.ime.session import Session


@pytest.fixture(scope="module")
def pipe():
    return build_pipeline()


def type_keys(s, keys):
    for k in keys:
        s.press(k)


def test_typing_key_by_key_gives_the_sentence(pipe):
    s = Session(pipe)
    type_keys(s, "womenyiqiquchifanba")
    assert s.candidates[0].text == "我们一起去吃饭吧"
    assert s.candidates[0].consumed == len("womenyiqiquchifanba")
    kinds = [c.source for c in s.all_candidates]
    first_prefix = next(i for i, c in enumerate(s.all_candidates) if c.consumed < len(s.keys))
    assert all(c.consumed == len(s.keys) for c in s.all_candidates[:first_prefix])  # sentences first
    assert "char" in kinds and kinds.index("char") > first_prefix  # single characters last
    texts = [(c.text, c.consumed) for c in s.all_candidates]
    assert len(texts) == len(set(texts))  # no duplicates


def test_backspace_and_retyping_come_back_to_the_same_candidates(pipe):
    s = Session(pipe)
    type_keys(s, "zhongguorenmin")
    before = [c.text for c in s.candidates]
    for _ in range(3):
        s.press("backspace")
    type_keys(s, "min")
    assert [c.text for c in s.candidates] == before


def test_long_input_is_windowed_and_commits_in_parts(pipe):
    s = Session(pipe)
    keys = "womenzaizheliyiqixuexizhongwen" * 4  # 44 syllables
    type_keys(s, keys)
    first = s.candidates[0]
    assert first.source == "sentence" and 0 < first.consumed < len(keys)
    assert len(first.text) == 24  # the window
    s.press("space")
    assert s.converted == first.text and s.keys == keys[first.consumed:]
    while s.composing:
        s.press("space")
    assert s.committed == ["我们在这里一起学习中文" * 4]


def test_without_a_model_the_lexicon_still_works(tmp_path):
    pipe = build_pipeline(model_dir=tmp_path)  # an empty folder: no model there
    assert "lexicon only" in pipe.status
    assert pipe("nihao")[0].text == "你好"


def test_abbreviations_rank_common_words_first(pipe):
    assert pipe("srf")[0].text == "输入法"  # the model alone preferred 虽然发
    assert pipe("bjdx")[0].text == "北京大学"
    assert pipe("zhongguor")[0].text == "中国人"  # an unfinished syllable is not an abbreviation


def test_prefix_words_that_begin_a_model_sentence_reach_the_first_page(pipe):
    """laoshiganggangbuzhilezuoye → 老师刚刚不值了作业: after picking 老师 and 刚刚, 布置 must be on the
    first page for what is left (the lexicon alone ranks it behind five other words read buzhi)."""
    cands = pipe("buzhilezuoye")
    assert [c.source for c in cands[:3]] == ["sentence"] * 3  # the whole-line sentences still lead
    first_page = [(c.text, c.consumed) for c in cands[:9]]
    assert ("布置", 5) in first_page
    words = [c.text for c in cands if c.source == "prefix-word"]
    assert len(words) > 5 and len(set(words)) == len(words)


def test_typing_with_a_slip_still_gives_the_sentence_and_exact_keys_are_untouched(pipe):
    from engine.pinyin import NO_FUZZY

    s = Session(pipe)  # the app's pipeline reads one-slip typos by default
    type_keys(s, "woshenemdoubuzhidao")  # me typed as em
    assert s.candidates[0].text == "我什么都不知道"
    assert s.display[0].startswith("wo'shen'em")  # the preedit splits where the typo reading does
    s.press("escape")
    type_keys(s, "zhognguoren")
    assert s.candidates[0].text == "中国人"
    s.press("escape")
    exact = [c.text for c in pipe("womenyiqiquchifanba")]
    pipe.fuzzy = NO_FUZZY
    try:
        assert [c.text for c in pipe("womenyiqiquchifanba")] == exact  # typo tolerance changes nothing here
        assert pipe("zhognguoren")[0].text != "中国人"  # off: read as typed, zh'o'g'n'guo'ren
    finally:
        pipe.fuzzy = build_pipeline.__defaults__[-1]


def test_fuzzy_pairs_reach_the_model_not_only_the_lexicon(pipe):
    """With z=zh on, zongguoren means 中国人 as much as 总过人: the model decodes the other spelling too
    (it reads one spelling per token), so the sentence wins on its score; off, the keys are read as typed."""
    from engine.pinyin import FuzzyOptions

    before = pipe.fuzzy
    plain = [c.text for c in pipe("womenyiqiquchifanba")]
    try:
        assert pipe("zongguoren")[0].text != "中国人"  # z=zh off
        pipe.fuzzy = FuzzyOptions.of("z=zh", typos=True)
        s = Session(pipe)
        type_keys(s, "zongguoren")
        assert s.candidates[0].text == "中国人"
        assert [c.text for c in pipe("womenyiqiquchifanba")] == plain  # no z/zh in it: nothing changes
    finally:
        pipe.fuzzy = before
