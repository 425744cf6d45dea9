"""Held-out assets and clauses (trainer.held_out), and the reading prior they feed (engine.lexicon)."""

import numpy as np

from engine.lexicon import Lexicon
from trainer.corpus import Corpus
from trainer.held_out import held_out_clauses, reading_counts, recount_chars
from engine.pinyin import SYLLABLES

SYL = {s: i for i, s in enumerate(SYLLABLES)}


def corpus_of(clauses, sources=None):
    """clauses: [(text, [syllables])]; sources: shard index per clause."""
    cps = np.array([ord(c) for t, _ in clauses for c in t], dtype=np.uint32)
    syls = np.array([SYL[s] for _, ss in clauses for s in ss], dtype=np.uint16)
    offsets = np.zeros(len(clauses) + 1, dtype=np.int64)
    np.cumsum([len(t) for t, _ in clauses], out=offsets[1:])
    src = np.array(sources or [0] * len(clauses), dtype=np.uint16)
    return Corpus(cps, syls, offsets, src, ["a.txt.xz", "b.txt.xz"])


def test_reading_counts_and_recount(tmp_path):
    corpus = corpus_of([("是的", ["shi", "de"]), ("目的", ["mu", "di"]), ("的确", ["di", "que"])])
    counts = reading_counts(corpus)
    assert counts[("的", "de")] == 1 and counts[("的", "di")] == 2 and counts[("是", "shi")] == 1
    tsv = tmp_path / "chars.tsv"
    tsv.write_text("的\tde\t99\n的\tdi\t1\n是\tshi\t5\n是\tti\t0\n", encoding="utf-8")
    rows = recount_chars(tsv, corpus)
    assert rows == ["的\tdi\t2", "的\tde\t1", "是\tshi\t1", "是\tti\t0"]  # same readings, counts from the corpus


def test_unused_readings_are_pruned_unless_the_character_is_never_seen():
    chars = {"shi": [("是", 10)], "ti": [("是", 0), ("提", 4)], "zha": [("楂", 0)], "cha": [("楂", 0)]}
    lex = Lexicon(chars, [])
    assert lex.readings["是"] == ("shi",)  # 是 ti: pypinyin lists it, the corpus never reads it so
    assert [c for c, _ in lex.chars_for("ti")] == ["提"]
    assert set(lex.readings["楂"]) == {"zha", "cha"}  # never seen at all: every reading stays, or it is untypeable
    assert set(lex.all_readings["是"]) == {"shi", "ti"}
    assert set(Lexicon(chars, [], prune_readings=False).readings["是"]) == {"shi", "ti"}


def test_held_out_clauses_come_from_the_shard_and_occur_once():
    clauses = [("我们去吃饭吧", ["wo", "men", "qu", "chi", "fan", "ba"]),  # in both shards: never held out
               ("我们去吃饭吧", ["wo", "men", "qu", "chi", "fan", "ba"]),
               ("明天下午开会", ["ming", "tian", "xia", "wu", "kai", "hui"]),
               ("好", ["hao"]),  # too short
               ("今天天气很好", ["jin", "tian", "tian", "qi", "hen", "hao"]),
               ("北京大学很大", ["bei", "jing", "da", "xue", "hen", "da"])]
    corpus = corpus_of(clauses, [0, 1, 1, 1, 1, 0])
    got = held_out_clauses(corpus, "b", 2)
    assert sorted(t for t, _ in got) == ["今天天气很好", "明天下午开会"]
    assert dict(got)["明天下午开会"] == ["ming", "tian", "xia", "wu", "kai", "hui"]
    assert held_out_clauses(corpus, "b", 1, exclude={"明天下午开会"})[0][0] == "今天天气很好"


def test_factory_without_a_shard_is_a_model_folder_the_converter_uses(tmp_path, monkeypatch):
    """A real (tiny) corpus of two shards: the folder's LMs and counts leave shard b out, the converter
    finds them there, and a second call builds nothing."""
    from engine.ime.converter import Converter
    from engine.lexicon import lexicon_for
    from trainer.held_out import factory_without

    monkeypatch.setenv("PINYIN_IME_CACHE", str(tmp_path / "cache"))
    clauses = [("我们喜欢唱歌", ["wo", "men", "xi", "huan", "chang", "ge"]), ("他们是学生", ["ta", "men", "shi", "xue", "sheng"]),
               ("这个问题很难", ["zhe", "ge", "wen", "ti", "hen", "nan"]), ("你好", ["ni", "hao"])]
    corpus = corpus_of(clauses, [0, 0, 1, 1])
    folder = factory_without("b", tmp_path / "work", corpus, log=lambda m: None)
    for name in ("char_lm.safetensors", "word_lm.safetensors", "chars.tsv", "words.tsv", "model.safetensors"):
        assert (folder / name).exists(), name
    counts = {tuple(line.split("\t")[:2]): int(line.split("\t")[2])
              for line in (folder / "chars.tsv").read_text(encoding="utf-8").splitlines()}
    assert counts[("我", "wo")] == 1 and counts[("题", "ti")] == 0  # shard b's 问题 was not counted
    assert lexicon_for(folder).readings["题"]  # a character with no count left keeps its readings
    conv = Converter.load(folder, runtime="onnx")
    assert conv.word_lm is not None and conv.char_lm is not None
    assert conv.convert_segmented("wo men", 3)
    stamp = (folder / "char_lm.safetensors").stat().st_mtime_ns
    factory_without("b", tmp_path / "work", corpus, log=lambda m: None)
    assert (folder / "char_lm.safetensors").stat().st_mtime_ns == stamp
