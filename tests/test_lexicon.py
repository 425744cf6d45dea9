import time

import pytest

from engine.lexicon import Lexicon, default_lexicon
from engine.pinyin import parse


@pytest.fixture(scope="module")
def lex():
    return default_lexicon()


def test_covers_gb2312_and_frequent_gbk(lex):
    assert len(lex.characters) >= 7000
    for ch in "的一是中国人们银行重庆绿略女":
        assert ch in lex.characters


def test_every_reading_of_polyphones(lex):
    assert {"hang", "xing"} <= set(lex.readings["行"])
    assert {"zhong", "chong"} <= set(lex.readings["重"])
    assert lex.readings["的"][0] == "de"  # most frequent reading first
    assert lex.has_reading("绿", "lv") and lex.has_reading("略", "lve")


def test_chars_for_syllable_initial_and_prefix(lex):
    zhong = [c for c, _ in lex.chars_for("zhong", limit=5)]
    assert "中" in zhong[:3]
    counts = [n for _, n in lex.chars_for("shi")]
    assert counts == sorted(counts, reverse=True)
    # an initial typed alone and an unfinished syllable expand to their syllables' characters
    z_initial = parse("z").best().tokens[0]
    chars = {c for c, _ in lex.chars_for(z_initial.syllables, limit=50)}
    assert {"在", "这"} <= chars  # z alone stands for z and zh
    zh_initial = parse("zh").best().tokens[0]
    assert "在" not in {c for c, _ in lex.chars_for(zh_initial.syllables)}
    zho = parse("zho").best().tokens[0]
    assert {"中", "周"} <= {c for c, _ in lex.chars_for(zho.syllables)}


def test_words_exact_and_frequencies(lex):
    words = [w for w, _ in lex.words(["zhong", "guo"])]
    assert words[0] == "中国"
    assert lex.word_count("银行", ["yin", "hang"]) > lex.word_count("银行", ["yin", "xing"])
    assert lex.words(["xi", "an"]) and lex.words(["xi", "an"])[0][0] == "西安"


def test_words_for_abbreviations(lex):
    def best(keys):
        return [e.text for e in lex.words_matching([t.syllables for t in parse(keys).best().tokens], limit=5)]

    assert best("bjdx")[0] == "北京大学"
    assert "中国" in best("zg")
    assert [e.text for e in lex.words_matching([t.syllables for t in parse("zgr").best().tokens])][0] == "中国人"
    assert best("zhongg")[0] == "中国"
    assert best("nih")[0] == "你好"


def test_spelled_spans_are_exactly_the_spans_with_words(lex):
    """The lattice asks the lexicon only about spans ``spelled_spans`` names: it must name every span some word
    reads (and only those), a position that is no full syllable (None) never inside one."""
    line = "wo men qu chang pian dian mai le yi zhang zhong guo ren min yin hang de ka".split()
    for syllables in (line, line[:5] + [None] + line[6:], [None, "zhong", "guo"], ["xi"], []):
        spans = lex.spelled_spans(syllables, longest=6)
        assert len(spans) == len(syllables)
        for i in range(len(syllables)):
            want = [j for j in range(i + 2, min(len(syllables), i + 6) + 1)
                    if None not in syllables[i:j] and lex.words(syllables[i:j])]
            assert spans[i] == want, (syllables, i)
    assert 4 in lex.spelled_spans(line)[2]  # chang pian: 唱片


def test_load_is_fast_and_missing_files_say_what_to_do(tmp_path):
    t0 = time.perf_counter()
    Lexicon.load()
    assert time.perf_counter() - t0 < 2.0  # generous for slow CI; the benchmark reports the real figure
    with pytest.raises(FileNotFoundError, match="build_lexicon"):
        Lexicon.load(tmp_path)


def test_tiny_lexicon_from_files(tmp_path):
    (tmp_path / "chars.tsv").write_text("中\tzhong\t10\n重\tzhong\t3\n重\tchong\t5\n国\tguo\t7\n", encoding="utf-8")
    # unsorted on purpose: loading sorts a hand-edited file
    (tmp_path / "words.tsv").write_text("zg\tzhong guo\t中国\t9\nzc\tzhong cheng\t重成\t1\n", encoding="utf-8")
    lex = Lexicon.load(tmp_path)
    assert lex.readings["重"] == ("chong", "zhong")
    assert lex.words(["zhong", "guo"]) == [("中国", 9)]
    assert [e.text for e in lex.words_matching([{"zhong", "zhi"}, {"guo", "gu"}])] == ["中国"]
