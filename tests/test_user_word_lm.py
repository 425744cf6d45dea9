"""The word LM adapted to the user's text (engine.lm.user_word_lm): their words count, words they typed
character by character become words, single characters keep the factory's probabilities."""

import numpy as np
import pytest

from engine.lm.user_word_lm import UserWordLM
from engine.lm.word_lm import WordLM
from tests.test_held_out import corpus_of
from trainer import word_ngram

TEXTS = ["我们的市场很大", "市场很好", "我们去市场", "他们喜欢音乐", "音乐很长", "市场很长", "我们的音乐很好", "他的市场"]
WORDS = {"我们": 30, "他们": 10, "喜欢": 20, "市场": 25, "时长": 2, "音乐": 12, "很好": 6, "很大": 3}


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("words")
    chars = sorted({c for t in TEXTS for c in t} | set("许巍她视频这个"))
    counts = {c: 5 for c in chars}
    counts.update(WORDS)
    words = ["<pad>", "<bos>"] + sorted(counts)
    corpus = corpus_of([(t, ["a"] * len(t)) for t in TEXTS])
    words, built = word_ngram.build(corpus, order=2, min_count=[1], cache_dir=tmp, workers=1, log=lambda m: None,
                                    vocab=(words, counts))
    word_ngram.save(tmp / "word_lm.safetensors", words, built)
    return WordLM.load(tmp / "word_lm.safetensors")


def test_a_word_the_user_writes_gains_over_its_homophone(factory):
    user = UserWordLM(factory)
    texts = ["音乐的时长很长", "音乐的市场很长"]
    before = user.score(texts)
    assert before[1] > before[0]  # the corpus writes 市场 far more often
    for _ in range(20):
        user.add("视频的时长很长，音乐的时长很长")
    after = user.score(texts)
    assert after[0] > after[1]
    assert user.segment("音乐的时长") == ["音乐", "的", "时长"]
    # the factory LM itself is untouched
    assert np.allclose(factory.score(texts), before)


def test_characters_typed_one_by_one_become_a_word(factory):
    user = UserWordLM(factory)
    assert user.segment("许巍") == ["许", "巍"]
    user.add("我们喜欢许巍")
    assert "许巍" not in user.index  # once is not enough
    (once,) = user.score(["许巍很好"])
    user.add("许巍的音乐")
    assert user.segment("许巍") == ["许巍"] and user.index["许巍"] >= user.vocab
    (twice,) = user.score(["许巍很好"])
    assert twice > once + factory.penalty / 2  # one word now, not two characters each charged a word
    # a pair of characters never typed together stays two words
    assert user.segment("巍许") == ["巍", "许"]


def test_single_characters_keep_the_factory_probabilities(factory):
    user = UserWordLM(factory)
    for _ in range(30):
        user.add("他的音乐很好")
    he, of = user.index["他"], user.index["的"]
    ctx = np.array([[1], [1]])  # after the start of a sentence
    assert np.allclose(user.pair_logprobs(ctx, np.array([he, of])), factory.pair_logprobs(ctx, np.array([he, of])))


def test_scores_follow_what_is_learned_later(factory):
    """Scores kept between calls are dropped when the user's counts change (a commit while typing)."""
    user = UserWordLM(factory)
    texts = ["音乐的时长很长", "音乐的市场很长"]
    first = user.score(texts)
    for _ in range(20):
        user.add("视频的时长")
    assert not np.allclose(user.score(texts), first)
    user.clear()
    assert not user and np.allclose(user.score(texts), first)


def test_the_ranker_keeps_it_with_the_store(factory, tmp_path):
    """Built from the history, taught by each commit, silent while recording is paused, and forgetting what the
    user deletes (``UserRanker.reload`` after the history is cleared)."""
    from engine import store
    from engine.ime.learning import UserRanker
    from engine.lexicon import default_lexicon

    db = store.open_store(tmp_path)
    store.record_commit(db, "视频的时长很长", pinyin="", keys="")
    ranker = UserRanker(db, default_lexicon())
    words = ranker.word_model(factory)
    assert words.base is factory and words.total > 0 and ranker.word_model(factory) is words
    seen = words.total
    store.set_recording_paused(db, True)
    ranker.learn("音乐的时长", [], "")
    assert words.total == seen
    store.set_recording_paused(db, False)
    ranker.learn("音乐的时长", [], "")
    assert words.total > seen
    store.delete_all_commits(db)
    ranker.reload()
    assert not words and ranker.word_model(factory) is words
    db.close()
