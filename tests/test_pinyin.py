import pytest
from hypothesis import given, settings, strategies as st

from engine.pinyin import (
    FULL, INITIAL, PREFIX, SYLLABLES, FuzzyOptions, parse, split_syllables, syllables_with_prefix,
)


def top(keys, n=8, **kw):
    return [str(s) for s in parse(keys, **kw).segmentations(n)]


def test_inventory_is_complete_and_uses_v_for_u_umlaut():
    assert 410 <= len(SYLLABLES) <= 430
    for syl in ["zhuang", "lv", "nve", "lve", "er", "a", "ng", "jiong", "shei"]:
        assert syl in SYLLABLES
    assert "lü" not in SYLLABLES and "lue" not in SYLLABLES  # lue is a spelling, lve the syllable
    assert split_syllables("lue nue") == ["lve", "nve"]


def test_full_syllables_and_explicit_boundary():
    assert top("nihao")[0] == "ni'hao"
    assert top("xi'an")[0] == "xi'an"
    assert top("xi an")[0] == "xi'an"  # segmented input: space is a boundary too
    # An explicit boundary is never crossed: "xian" as one syllable is impossible here.
    assert "xian" not in top("xi'an", 50)


def test_ambiguity_is_kept_not_guessed_away():
    xian = top("xian", 20)
    assert xian[0] == "xian" and "xi'an" in xian
    fangan = top("fangan", 20)
    assert {"fang'an", "fan'gan"} <= set(fangan[:2])


def test_incomplete_last_syllable_is_a_prefix():
    best = parse("zhongg").best()
    assert [t.kind for t in best.tokens] == [FULL, INITIAL]
    assert "guo" in best.tokens[1].syllables and "zhong" in best.tokens[0].syllables
    zhon = parse("zhon").best().tokens[0]
    assert zhon.kind == PREFIX and set(zhon.syllables) == {"zhong"}
    assert set(syllables_with_prefix("zho")) == {"zhong", "zhou"}
    # "z" typed alone may still become zh…; "zh" never becomes z… (unless fuzzy).
    assert {"zi", "zhi"} <= set(syllables_with_prefix("z"))
    assert not any(s.startswith("zi") for s in syllables_with_prefix("zh"))
    assert "zi" in syllables_with_prefix("zh", FuzzyOptions.of("z=zh"))


def test_initials_only_abbreviations_anywhere():
    assert top("zgr")[0] == "z'g'r"
    assert top("bjdx")[0] == "b'j'd'x"
    assert top("zhongguor")[0] == "zhong'guo'r"
    zh = parse("zhsh").best()
    assert [t.keys for t in zh.tokens] == ["zh", "sh"] and all(t.kind == INITIAL for t in zh.tokens)
    # An initial stands for syllables with that initial; s/z/c alone also for sh/zh/ch (zgr → 中国人), not back.
    s_tok = parse("s").best().tokens[0]
    assert {"si", "shi", "sun", "shuang"} <= set(s_tok.syllables) and "xi" not in s_tok.syllables
    sh_tok = parse("sh").best().tokens[0]
    assert "shi" in sh_tok.syllables and "si" not in sh_tok.syllables


def test_full_reading_outranks_abbreviated_reading():
    for keys, want in [("women", "wo'men"), ("xianzai", "xian'zai"), ("ceshi", "ce'shi"),
                       ("zhongguorenmin", "zhong'guo'ren'min"), ("tiane", "tian'e")]:
        assert top(keys)[0] == want


def test_fuzzy_pairs_are_off_by_default_and_work_when_on():
    assert parse("zi").best().tokens[0].syllables == ("zi",)
    assert set(parse("zi", FuzzyOptions.of("z=zh")).best().tokens[0].syllables) == {"zi", "zhi"}
    assert set(parse("fan", FuzzyOptions.of("an=ang")).best().tokens[0].syllables) == {"fan", "fang"}
    assert set(parse("lan", FuzzyOptions.of("l=n")).best().tokens[0].syllables) == {"lan", "nan"}
    assert set(parse("xin", FuzzyOptions.of("in=ing")).best().tokens[0].syllables) == {"xin", "xing"}
    # A spelling that is only valid through a fuzzy pair: "tin" is no syllable, but reads as ting with in=ing.
    assert not parse("tin").ok or parse("tin").best().tokens[0].kind != FULL
    assert parse("tin", FuzzyOptions.of("in=ing")).best().tokens[0].syllables == ("ting",)
    assert parse("xiang", FuzzyOptions.of("ian=iang")).best().tokens[0].syllables == ("xian", "xiang")
    assert parse("xiang", FuzzyOptions.of("an=ang")).best().tokens[0].syllables == ("xiang",)
    assert set(parse("shuan", FuzzyOptions.all()).best().tokens[0].syllables) == {"shuan", "shuang", "suan"}


def test_unknown_fuzzy_pair_is_a_clear_error():
    import pytest
    with pytest.raises(ValueError, match="choose from"):
        FuzzyOptions.of("x=y")


def test_keys_that_are_not_pinyin_give_a_result_not_an_exception():
    for keys, pos in [("iiii", 0), ("nihaoiii", 5), ("ni3hao", 2), ("Nihao", 0), ("v", 0), ("你好", 0)]:
        r = parse(keys)
        assert not r.ok and r.error and r.error_pos == pos, (keys, r.error_pos, r.error)
        assert r.best() is None and list(r.segmentations()) == []
    empty = parse("")
    assert not empty.ok and "no keys" in empty.error
    assert not parse("'''").ok


def test_lue_nue_spellings():
    assert parse("lue").best().tokens[0].syllables == ("lve",)
    assert parse("nve").best().tokens[0].syllables == ("nve",)
    assert top("nvren")[0] == "nv'ren"


syllable_lists = st.lists(st.sampled_from(SYLLABLES), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(syllable_lists)
def test_any_concatenation_of_syllables_has_that_segmentation(syls):
    result = parse("".join(syls))
    assert result.ok
    assert result.contains(syls)
    # Enumerating the ranked segmentations reaches it too (and they come cheapest first).
    costs = []
    for seg in result.segmentations(limit=None):
        costs.append(seg.cost)
        if list(seg.syllables) == syls:
            break
    else:
        raise AssertionError(f"{syls} not enumerated")
    assert costs == sorted(costs)


@settings(max_examples=200, deadline=None)
@given(syllable_lists)
def test_with_boundaries_the_intended_segmentation_ranks_first(syls):
    best = parse("'".join(syls)).best()
    assert list(best.syllables) == syls


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parser_never_raises_on_arbitrary_text(text):
    r = parse(text)
    assert r.ok == (r.best() is not None)
    if not r.ok:
        assert r.error and 0 <= r.error_pos <= len(text)


# -- typo tolerance -----------------------------------------------------------------------------------------

TYPOS = FuzzyOptions(typos=True)


@pytest.mark.parametrize("keys, meant", [
    ("zhognguo", "zhong'guo"),  # swapped
    ("nihoa", "ni'hao"),  # swapped, where the exact reading is the strained ni'h'o'a
    ("zhongguuo", "zhong'guo"),  # doubled
    ("xhongguo", "zhong'guo"),  # a neighbouring key (x for z)
])
def test_one_slip_reads_as_the_syllable_meant(keys, meant):
    assert not parse(keys).ok or str(parse(keys).best()) != meant  # without typo tolerance: not this reading
    best = parse(keys, TYPOS).best()
    assert str(best) == meant and best.has_typo


def test_a_dropped_letter_is_among_the_readings():
    segs = [str(s) for s in parse("zhngguo", TYPOS).segmentations(6)]
    assert "zhong'guo" in segs


def test_typo_readings_never_replace_a_valid_reading():
    for keys in ("nihao", "xian", "fangan", "zhongguoren", "shiyan"):
        exact = parse(keys).best()
        segs = list(parse(keys, TYPOS).segmentations(8))
        assert segs[0] == exact and not segs[0].has_typo
        assert all(s.cost > exact.cost + 0.5 for s in segs if s.has_typo)  # beyond the decoders' cost gap


def test_abbreviations_stay_abbreviations_and_interjection_splits_cost_more():
    assert str(parse("bjdx", TYPOS).best()) == "b'j'd'x"  # bj is two initials, not a slip of bu
    assert str(parse("zgr", TYPOS).best()) == "z'g'r"
    maa = {str(s): s.cost for s in parse("maa", TYPOS).segmentations(8)}
    assert maa["ma'a"] < maa["ma"] - 0.5  # 嘛啊 as typed, not a doubled a


def test_typo_tokens_are_model_inputs():
    from engine.ime.converter import segmentation_tokens

    best = parse("zhognguo", TYPOS).best()
    assert segmentation_tokens(best) is not None and best.syllables == ("zhong", "guo")


def test_segmentations_kept_for_the_next_stage_are_the_ones_searched():
    """The pipeline's stages ask one parse for its first few segmentations in turn: a later, longer or
    shorter question gets what a fresh search gives, also after a consumer stopped early."""
    from engine.pinyin import NO_FUZZY, _parse

    keys = "xianzaizhongguoren"
    fresh = lambda n: [(s.label, s.cost) for s in _parse(keys, NO_FUZZY).segmentations(n)]  # noqa: E731
    result = parse(keys)
    assert parse(keys) is result  # kept: the preedit and the pipeline share it
    next(result.segmentations(6))  # stopped after one: nothing kept from it
    for n in (2, 5, 3, 8, 1, None, 4):
        assert [(s.label, s.cost) for s in result.segmentations(n)] == fresh(n)
