"""The user's n-gram cache (engine.lm.user_lm): its numbers, and its effect through the real pipeline, store and
(tiny, untrained) model in both runtimes."""

import math

import numpy as np
import pytest

from engine import store
from engine.ime.converter import segmentation_tokens
from engine.pinyin import parse
from engine.ime.pipeline import build_pipeline
from engine.lm.user_lm import UserLM

CHARS = ["<pad>", "<bos>", "子", "自", "集", "己", "空", "非"]


def ids(text):
    return [CHARS.index(c) for c in text]


def test_counts_are_restricted_to_what_the_pinyin_allows_and_backed_off():
    lm = UserLM(CHARS, order=3)
    for _ in range(3):
        lm.add("非空子集")
    lm.add("自己，x子")  # punctuation and unknown characters break the context
    allowed = np.array(ids("子自"))  # zi
    p, seen = lm.distribution(ids("非空"), allowed)
    assert seen == 5  # 子 ×4, 自 ×1 typed for zi anywhere
    assert p[0] > 0.9 and p.sum() == pytest.approx(1.0)  # after 非空 the user wrote 子
    p0, _ = lm.distribution([], allowed)
    assert p0 == pytest.approx([0.8, 0.2])
    assert lm.distribution([], np.array(ids("集己"))) is not None
    assert lm.distribution([], np.array([0])) is None  # never typed


def test_bonus_is_never_negative_bounded_and_grows_with_evidence():
    allowed = np.array(ids("子自"))
    logp = np.log(np.array([[0.1, 0.9]], dtype=np.float32))
    hyps = np.array([ids("非空")])
    few, many = UserLM(CHARS), UserLM(CHARS)
    few.add("子")
    for _ in range(100):
        many.add("非空子")
    b_few = few.fuse(hyps, allowed, logp) - logp
    b_many = many.fuse(hyps, allowed, logp) - logp
    cap = many.weight * math.log1p(1 / many.floor)
    assert (b_few >= 0).all() and (b_many >= 0).all() and b_many.max() <= cap + 1e-5
    assert b_many[0, 0] > b_few[0, 0] > 0 and b_many[0, 1] == 0  # 自 never typed: no bonus, no malus
    assert np.array_equal(UserLM(CHARS).fuse(hyps, allowed, logp), logp)  # nothing typed: the model alone
    assert np.array_equal(many.fuse(hyps, np.array(ids("集")), logp[:, :1]), logp[:, :1])  # pinyin never typed


def test_clear_and_version():
    lm = UserLM(CHARS)
    v = lm.version
    lm.add("子集")
    assert lm and lm.version > v
    lm.clear()
    assert not lm and lm.distribution([], np.array(ids("子"))) is None


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_committed_words_win_inside_new_sentences(tiny, tmp_path, runtime):
    db = store.open_store(tmp_path)
    pipe = build_pipeline(tiny, db=db, reuse=None, runtime=runtime)
    conv = pipe.translator.converter
    conv.user_lm.weight = 3.0  # an untrained model's random preferences are steep; the tuned weight is for a real one
    keys = "wo'men'qu'chi'fan"
    before = pipe(keys)[0].text
    for _ in range(5):
        pipe.commit("我们一起去吃饭", [], "")  # raw commits: no learned phrase, only the cache learns
    after = [c for c in pipe(keys) if c.consumed == len(keys)]
    assert before != "我们去吃饭" and after[0].text == "我们去吃饭"  # a sentence never typed as a whole
    # teacher-forced scoring (lexicon proposals) sees the same mixed numbers as the beam search
    tokens = segmentation_tokens(parse(keys).best())
    assert conv.score_texts(tokens, ["我们去吃饭"])[0] == pytest.approx(after[0].score, abs=1e-2)  # int8 vs fp32

    pipe.use_ranker(None)  # no learning: the model alone again
    assert pipe(keys)[0].text == before


def test_paused_recording_teaches_nothing_and_deleting_history_forgets(tiny, tmp_path):
    db = store.open_store(tmp_path)
    pipe = build_pipeline(tiny, db=db, reuse=3)
    lm = pipe.translator.converter.user_lm
    store.set_recording_paused(db, True)
    pipe.commit("我们一起去吃饭", [], "")
    assert not lm
    store.set_recording_paused(db, False)
    pipe.commit("我们一起去吃饭", [], "")
    assert lm.chars_seen == 7
    store.delete_all_commits(db)
    pipe.ranker.reload()
    assert not lm and pipe.translator.converter.user_lm is lm


def test_history_is_read_at_start_and_survives_a_model_swap(tiny, tmp_path):
    db = store.open_store(tmp_path)
    for _ in range(5):
        store.record_commit(db, "我们一起去吃饭")
    pipe = build_pipeline(tiny, db=db, reuse=3)
    lm = pipe.translator.converter.user_lm
    assert lm.chars_seen == 35
    lm.weight = 3.0
    assert pipe("wo'men'qu'chi'fan")[0].text == "我们去吃饭"
    pipe.swap_model(tiny)
    assert pipe.translator.converter.user_lm is lm
    assert pipe("wo'men'qu'chi'fan")[0].text == "我们去吃饭"


def test_mix_into_the_corpus_lm_keeps_its_mass_and_moves_towards_the_user():
    lm = UserLM(CHARS, order=3, mix=0.5, mix_evidence=0, tau=0.0)  # order 0 alone
    for _ in range(3):
        lm.add("非空子集")
    allowed = np.array(ids("子自"))
    corpus = np.log(np.array([[0.01, 0.09]], dtype=np.float32))  # the corpus LM prefers 自, mass 0.1 on zi
    out = lm.mix(np.array([ids("非空")]), allowed, corpus)
    assert np.exp(out).sum() == pytest.approx(0.1, rel=1e-4)  # the position as a whole is as likely as before
    assert out[0, 0] > out[0, 1]  # the user only ever wrote 子 for zi: it now wins
    assert np.exp(out[0, 0]) == pytest.approx(0.1 * (0.5 * 0.1 + 0.5 * 1.0), rel=1e-3)
    untouched = np.log(np.array([[0.2]], dtype=np.float32))  # never typed anything that fits: unchanged
    assert lm.mix(np.array([[]], dtype=np.int64), np.array(ids("己")), untouched) is untouched


def test_adaptation_after_contexts_the_user_wrote_follows_their_counts():
    lm = UserLM(CHARS, order=3, mix=0.0, tau=3.0, tau_mass=0.0)
    for _ in range(3):
        lm.add("非空子集")
    allowed = np.array(ids("子自"))
    corpus = np.log(np.array([[0.01, 0.09], [0.01, 0.09]], dtype=np.float32))
    hyps = np.array([ids("非空"), ids("子集")])  # the user wrote zi after 非空, never after 子集
    out = np.exp(lm.mix(hyps, allowed, corpus))
    assert out.sum(axis=1) == pytest.approx([0.1, 0.1], rel=1e-4)  # the position keeps its mass
    # after 空: (3 · [1, 0] + 3 · [0.1, 0.9]) / 6, then after 非空 the same again
    assert out[0] / 0.1 == pytest.approx([0.775, 0.225], rel=1e-3)
    assert out[1] == pytest.approx([0.01, 0.09], rel=1e-4)  # no context the user wrote: the corpus LM's
    for _ in range(27):
        lm.add("非空子集")
    assert np.exp(lm.mix(hyps[:1], allowed, corpus[:1]))[0, 0] > out[0, 0]  # more evidence, closer to the user
    assert UserLM(CHARS, mix=0.0, tau=0.0).mix(hyps, allowed, corpus) is corpus  # both off: untouched


def test_after_two_characters_the_user_wrote_the_position_as_a_whole_follows_them_too():
    lm = UserLM(CHARS, order=3, mix=0.0, tau=3.0, tau_mass=30.0)
    for _ in range(3):
        lm.add("非空子集")
    lm.add("非空")  # once more, followed by nothing
    allowed = np.array(ids("子自"))
    corpus = np.log(np.array([[0.01, 0.09]] * 3, dtype=np.float32))  # mass 0.1 on zi
    hyps = np.array([ids("非空"), ids("子集"), ids("集空")])
    out = np.exp(lm.mix(hyps, allowed, corpus))
    # after 非空 the user wrote 3 characters, all of them zi: (3 + 30 · 0.1) / (3 + 30)
    assert out[0].sum() == pytest.approx(6 / 33, rel=1e-4)
    assert out[0] / out[0].sum() == pytest.approx([0.775, 0.225], rel=1e-3)  # reordered as before
    assert out[1] == pytest.approx([0.01, 0.09], rel=1e-4)  # never wrote anything after 集: the corpus LM's
    # wrote 空 after 集 never, but 空 four times (followed by zi three times): one character moves no mass
    assert out[2].sum() == pytest.approx(0.1, rel=1e-4)
    lm.add("集空空")  # after 集空 once, followed by something that is not zi: less likely than the corpus says
    assert np.exp(lm.mix(hyps[2:], allowed, corpus[2:])).sum() == pytest.approx(30 * 0.1 / 31, rel=1e-3)
