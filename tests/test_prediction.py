"""The predictor over the shipped character LM and lexicon, with and without a user's n-gram cache."""

import json
import time

import pytest

from engine.lm.char_lm import CharLM
from engine.lexicon import ASSETS_DIR, default_lexicon
from engine.ime.prediction import MAX_LEN, Predictor
from engine.lm.user_lm import UserLM

MODEL = ASSETS_DIR / "model"


@pytest.fixture(scope="module")
def parts():
    chars = json.loads((MODEL / "config.json").read_text(encoding="utf-8"))["chars"]
    return CharLM.load(MODEL / "char_lm.safetensors", chars), chars, default_lexicon()


@pytest.fixture(scope="module")
def predictor(parts):
    return Predictor(*parts)


def test_predicts_what_the_corpus_says_comes_next(predictor):
    assert "共和国" in predictor("中华人民")[:3]
    assert "怎么" in predictor("今天天气") and "大学" in predictor("北京")
    out = predictor("我们")
    assert 1 <= len(out) <= 9 and len(set(out)) == len(out)
    assert all(1 <= len(p) <= MAX_LEN and all(ch in predictor.lexicon.readings for ch in p) for p in out)


def test_limit_and_context_cut_at_punctuation(predictor):
    assert len(predictor("我们", limit=3)) == 3
    assert predictor("好的，我们") == predictor("我们")  # the LM knows 汉字 only: the context starts after ，


@pytest.mark.parametrize("context", ["", "。", "好的！", "你好？", "，", "hello", "2024", "中国 "])
def test_nothing_after_punctuation_latin_or_nothing(predictor, context):
    assert predictor(context) == []


def test_the_users_habit_comes_first(parts):
    lm, chars, lexicon = parts
    user = UserLM(chars)
    plain = Predictor(lm, chars, lexicon, user)
    before = plain("单元")
    assert "测试" not in before[:1]
    for _ in range(5):
        user.add("单元测试通过了")
    after = plain("单元")
    assert after[0] in ("测试", "测试通过", "测")
    assert any(p.startswith("测试") for p in after[:3])
    assert "测试通过" in after  # the user's own continuation, followed while it dominates


def test_fast(predictor):
    contexts = ["我们", "中华人民", "今天天气", "虽然经过", "谢谢", "北京", "我想喝", "这个方法"] * 10
    times = []
    for c in contexts:
        t0 = time.perf_counter()
        predictor(c)
        times.append(time.perf_counter() - t0)
    times.sort()
    assert times[len(times) // 2] < 0.01  # ~1.3 ms here (benchmarks/prediction.py); generous for slow CI


def test_for_pipeline_needs_a_character_lm():
    from engine.ime.pipeline import build_pipeline

    assert Predictor.for_pipeline(build_pipeline(model_dir=None)) is None  # lexicon only: nothing to predict from


def test_benchmark_scores_hits_and_keystroke_saving(predictor, monkeypatch):
    monkeypatch.syspath_prepend(str(ASSETS_DIR.parent))  # the repository: benchmarks/ is not installed
    from benchmarks.prediction import evaluate, words_of

    words = frozenset({"中华", "人民", "共和国"})
    assert words_of("中华人民共和国好", words) == [2, 4, 7, 8]
    r = evaluate(predictor, ["中华人民共和国", "今天天气怎么样"], page=5)
    assert r["positions"] > 0 and 0 <= r["hit@1"] <= r["hit@5"] <= 1
    assert r["keystroke_saving"] > 0  # 共和国 after 中华人民 is on the first page
    assert r["calls"] >= r["positions"] and r["p95_ms"] >= r["p50_ms"] > 0
