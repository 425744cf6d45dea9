"""The corpus character n-gram model: counting, Kneser-Ney estimation, the backoff lookup, fusion."""

import numpy as np
import pytest

from engine.lm.char_lm import CharLM
from trainer import ngram
from trainer.corpus import Corpus

CHARS = ["<pad>", "<bos>"] + list("我们是中国人你好学生的老师")
TEXTS = ["我们是中国人", "你好", "我们是学生", "你是老师", "我是中国的学生", "你们好", "我们是老师的学生",
         "中国人好", "我好", "你们是中国人"]


def corpus_of(texts):
    cps = np.array([ord(c) for t in texts for c in t], dtype=np.uint32)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    return Corpus(cps, np.zeros(len(cps), np.uint16), offsets, np.zeros(len(texts), np.uint16), ["t"])


def load(tmp_path, texts=TEXTS, order=4, min_count=1, chars=CHARS, model_chars=CHARS, **kw):
    built = ngram.build(chars, corpus_of(texts), order, min_count, log=lambda m: None)
    path = tmp_path / "lm.safetensors"
    ngram.save(path, chars, built)
    return CharLM.load(path, model_chars, **kw), built


def ids(text, chars=CHARS):
    return [chars.index(c) for c in text]


def test_keys_stay_inside_clauses():
    seq = ngram.token_ids(corpus_of(["我们", "你好"]), CHARS)
    assert seq.tolist() == [1] + ids("我们") + [1] + ids("你好")
    two = ngram.ngram_keys(seq, 2)
    pairs = {((k >> ngram.BITS), k & ((1 << ngram.BITS) - 1)) for k in two.tolist()}
    assert pairs == {(1, ids("我")[0]), (ids("我")[0], ids("们")[0]), (1, ids("你")[0]), (ids("你")[0], ids("好")[0])}
    assert (ids("们")[0], 1) not in pairs and (ids("们")[0], ids("你")[0]) not in pairs  # no n-gram across clauses


@pytest.mark.parametrize("history", ["", "我", "我们", "我们是", "你们是中", "好好好"])
def test_distribution_sums_to_one_over_the_vocabulary(tmp_path, history):
    lm, _ = load(tmp_path)
    allowed = np.arange(2, len(CHARS))
    p = np.exp(lm.logprobs(np.array([ids(history)], dtype=np.int64).reshape(1, -1), allowed)[0].astype(np.float64))
    assert p.sum() == pytest.approx(1.0, abs=0.01)  # float16 storage: about 3 significant digits
    assert (p > 0).all()


def test_context_decides(tmp_path):
    lm, _ = load(tmp_path)
    allowed = np.array(ids("国人学"))
    after_zhong = lm.logprobs(np.array([ids("是中")]), allowed)[0]
    assert after_zhong.argmax() == 0  # 中 → 国
    after_shi = lm.logprobs(np.array([ids("我们是")]), np.array(ids("中学老")))[0]
    assert after_shi.argmax() in (0, 1, 2) and np.isfinite(after_shi).all()


def test_a_beam_of_hypotheses_gets_each_ones_own_answer(tmp_path):
    """Hypotheses that share their last characters are looked up once; every row still gets its own context."""
    lm, _ = load(tmp_path)
    allowed = np.arange(2, len(CHARS))
    texts = ["我们是中", "你们是中", "我们是学", "你是老师", "我们是中", "中国人好"]  # rows 0, 1, 4 share 们是中
    beam = lm.logprobs(np.array([ids(t) for t in texts]), allowed)
    for row, text in zip(beam, texts):
        assert np.array_equal(row, lm.logprobs(np.array([ids(text)]), allowed)[0])
    distinct = ["我们是中", "你是老师", "中国人好"]  # all different: the rows come back in their own order
    for order in (distinct, distinct[::-1]):  # (one of the two is not in the contexts' sorted order)
        for row, text in zip(lm.logprobs(np.array([ids(t) for t in order]), allowed), order):
            assert np.array_equal(row, lm.logprobs(np.array([ids(text)]), allowed)[0])


def test_pruning_keeps_probabilities_finite_and_smaller(tmp_path):
    _, full = load(tmp_path, min_count=1)
    lm, pruned = load(tmp_path, min_count=2)
    assert pruned["stats"]["kept"][4] < full["stats"]["kept"][4]
    out = lm.logprobs(np.array([ids("你们是中")]), np.arange(2, len(CHARS)))
    assert np.isfinite(out).all()


def test_fuse_reorders_within_allowed_and_maps_other_vocabularies(tmp_path):
    # the model's vocabulary differs from the LM's (another order, an extra character): mapped by character
    model_chars = ["<pad>", "<bos>"] + list("人国中是们我你好学生的老师") + ["猫"]
    lm, _ = load(tmp_path, model_chars=model_chars, weight=1.0)
    allowed = np.array(sorted(model_chars.index(c) for c in "国过猫"[:1] + "猫"), dtype=np.int64)
    hyps = np.array([[model_chars.index("中")]], dtype=np.int64)
    logp = np.log(np.full((1, allowed.size), 1.0 / allowed.size, dtype=np.float32))
    fused = lm.fuse(hyps, allowed, logp)
    assert fused[0, list(allowed).index(model_chars.index("国"))] > fused[0, list(allowed).index(model_chars.index("猫"))]
    assert np.isfinite(fused).all()


def test_rejects_other_files(tmp_path):
    from safetensors.numpy import save_file

    bad = tmp_path / "x.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(bad), metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="not a character LM"):
        CharLM.load(bad, CHARS)


def test_held_out_clauses_are_left_out():
    corpus = corpus_of(["我们是中国人", "你好", "我们是学生", "你好"])
    cps, offsets, dropped = ngram.without(corpus, ["你好", "不在"])
    assert dropped == 2
    assert "".join(map(chr, cps.tolist())) == "我们是中国人我们是学生"
    assert offsets.tolist() == [0, 6, 11]


def test_personal_models_find_their_base_lm_and_a_damaged_one_is_skipped(tmp_path):
    import json

    from engine.lm import char_lm
    base = tmp_path / "factory"
    base.mkdir()
    built = ngram.build(CHARS, corpus_of(TEXTS), 3, 1, log=lambda m: None)
    ngram.save(base / char_lm.FILE_NAME, CHARS, built)
    personal = tmp_path / "v1"
    personal.mkdir()
    (personal / "config.json").write_text(json.dumps({"finetune": {"base": str(base)}}))
    assert char_lm.find(personal) == base / char_lm.FILE_NAME
    assert char_lm.find(tmp_path / "unrelated") is None
    lm, note = char_lm.load_for(personal, CHARS)
    assert lm is not None and lm.order == 3 and note == ""
    (base / char_lm.FILE_NAME).write_bytes(b"\x00" * 64)  # damaged: the model decodes alone, and says so
    lm, note = char_lm.load_for(personal, CHARS)
    assert lm is None and "could not be read" in note


def test_whole_shards_can_be_left_out():
    texts = ["我们是中国人", "你好", "我们是学生"]
    corpus = corpus_of(texts)
    corpus.source = np.array([0, 1, 0], dtype=np.uint16)
    corpus.sources = ["a.txt.xz", "b.txt.xz"]
    kept = ngram.without_sources(corpus, ["a"])
    assert "".join(map(chr, kept.chars.tolist())) == "你好" and kept.offsets.tolist() == [0, 2]


def test_sequence_logprobs_add_up_what_fuse_adds_position_by_position(tmp_path):
    lm, _ = load(tmp_path, weight=0.8)
    ys = np.array([ids("我们是中国人"), ids("你们是老师的")])
    allowed = np.arange(2, len(CHARS))
    total = np.zeros(2)
    for t in range(ys.shape[1]):
        step = lm.fuse(ys[:, :t], allowed, np.zeros((2, allowed.size), dtype=np.float32))
        total += step[np.arange(2), ys[:, t] - 2]
    assert np.allclose(lm.sequence_logprobs(ys), total, atol=1e-4)


def test_answers_kept_between_steps_are_the_answers_looked_up_afresh(tmp_path, monkeypatch):
    """A keystroke decodes the same beams again: the kept answers must equal fresh lookups, per allowed set,
    and the cache must empty itself when it is full (and still answer right after)."""
    from engine.lm import char_lm
    lm, _ = load(tmp_path)
    fresh, _ = load(tmp_path)
    sets = [np.arange(2, len(CHARS)), np.array(ids("国人学")), np.array(ids("中学老"))]
    monkeypatch.setattr(char_lm, "CACHE_ROWS", 6)
    for _ in range(2):  # the second round is answered from what the first kept (until the cache is emptied)
        for text in ["", "我", "我们是", "你们是中", "好好好", "我们是中国人"]:
            hyps = np.array([ids(text), ids(text)[::-1]], dtype=np.int64).reshape(2, -1)
            for allowed in sets:
                fresh._row_cache.clear()
                assert np.array_equal(lm.logprobs(hyps, allowed), fresh.logprobs(hyps, allowed))
    assert lm._cached_rows <= 6 + 2
