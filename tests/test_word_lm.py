"""The word n-gram: segmenting a corpus into lexicon words, Kneser-Ney over them, scoring candidate sentences."""

import numpy as np

from engine.runtime.model_spec import BOS
from engine.lm.word_lm import WordLM
from tests.test_held_out import corpus_of
from trainer import word_ngram

TEXTS = ["我们喜欢唱片", "唱片店很大", "我们去唱片店", "他们喜欢音乐", "音乐很好听", "我们的音乐", "唱片很好"]
WORDS = {"我们": 30, "他们": 10, "喜欢": 20, "唱片": 15, "音乐": 12, "好听": 6, "很大": 3}


def vocab():
    chars = sorted({c for t in TEXTS for c in t} | set("点电"))
    counts = {c: 5 for c in chars}
    counts.update(WORDS)
    return ["<pad>", "<bos>"] + sorted(counts), counts


def corpus():
    return corpus_of([(t, ["a"] * len(t)) for t in TEXTS])


def test_segmentation_prefers_the_likelier_words(tmp_path):
    words, counts = vocab()
    seq = word_ngram.segment(corpus(), words, counts, workers=1, log=lambda m: None)
    starts = np.flatnonzero(seq == BOS)
    assert len(starts) == len(TEXTS)
    first = [words[i] for i in seq[starts[0] + 1:starts[1]]]
    assert first == ["我们", "喜欢", "唱片"]
    second = [words[i] for i in seq[starts[1] + 1:starts[2]]]
    assert second == ["唱片", "店", "很大"]


def test_scores_follow_the_corpus_and_segment_unseen_text(tmp_path):
    words, built = word_ngram.build(corpus(), order=3, min_count=[1, 1], cache_dir=tmp_path, workers=1,
                                    log=lambda m: None, vocab=vocab())
    path = tmp_path / "word_lm.safetensors"
    word_ngram.save(path, words, built)
    lm = WordLM.load(path)
    assert lm.order == 3
    good, bad = lm.score(["我们去唱片店", "我们去唱片点"])
    assert good > bad
    # a sentence never seen whole still gets a finite score from its words
    (unseen,) = lm.score(["他们喜欢唱片"])
    assert np.isfinite(unseen) and unseen > lm.score(["他们喜点唱电"])[0]
    # the batched pair lookup agrees with a bigram that was counted and a backoff that was not
    we, like, shop = lm.index["我们"], lm.index["喜欢"], lm.index["店"]
    lp = lm.pair_logprobs(np.array([[0, BOS], [0, BOS]]), np.array([we, shop]))
    assert lp[0] > lp[1]


def test_excluding_a_shard_leaves_its_words_out(tmp_path):
    words, counts = vocab()
    c = corpus_of([(t, ["a"] * len(t)) for t in TEXTS], [0, 1, 1, 0, 0, 0, 0])
    _, with_all = word_ngram.build(c, order=2, min_count=[1], cache_dir=tmp_path, workers=1, log=lambda m: None,
                                   vocab=(words, counts))
    _, without = word_ngram.build(c, order=2, min_count=[1], exclude_sources=["b"], cache_dir=tmp_path, workers=1,
                                  log=lambda m: None, vocab=(words, counts))
    assert without["stats"]["kept"][2] < with_all["stats"]["kept"][2]


def test_the_word_lattice_proposes_lexicon_words_the_head_alone_would_not(tmp_path):
    """Per character the head prefers 唱片点 (点 over 店), but 店 after 唱片 is what the corpus's words say."""
    from engine.runtime import two_pass, word_proposals
    from engine.lexicon import Lexicon
    from engine.runtime.model_spec import input_tokens

    words, built = word_ngram.build(corpus(), order=2, min_count=[1], cache_dir=tmp_path, workers=1,
                                    log=lambda m: None, vocab=vocab())
    word_ngram.save(tmp_path / "w.safetensors", words, built)
    lm = WordLM.load(tmp_path / "w.safetensors")
    chars = ["<pad>", "<bos>", "唱", "片", "店", "点", "电", "场"]
    char_index = {c: i for i, c in enumerate(chars)}
    lexicon = Lexicon({"chang": [("唱", 5), ("场", 9)], "pian": [("片", 5)], "dian": [("点", 9), ("店", 5), ("电", 7)]},
                      sorted(["cpd\tchang pian dian\t唱片店\t4", "cp\tchang pian\t唱片\t9"]))
    tok = {t: i for i, t in enumerate(input_tokens())}
    x = [tok["chang"], tok["pian"], tok["dian"]]
    emissions = [(np.array([2, 7]), np.log(np.array([0.4, 0.6]))), (np.array([3]), np.zeros(1)),
                 (np.array([4, 5, 6]), np.log(np.array([0.2, 0.5, 0.3])))]
    out = word_proposals.propose(x, emissions, lexicon, lm, chars, char_index, head_weight=0.4)
    texts = ["".join(chars[c] for c in h) for h in out]
    assert texts[0] == "唱片店"
    assert "场片点" in texts or len(texts) <= word_proposals.TOP
    # proposals not in a position's allowed set never come out, and the prior of given sequences adds up
    ys = np.array([[2, 3, 4], [2, 3, 1]])
    prior = two_pass.prior_of(ys, emissions)
    assert prior[0] == 0 and prior[1] == -np.inf


def test_scores_kept_between_calls_equal_scores_from_scratch(tmp_path, monkeypatch):
    """Typing scores texts that extend the last keystroke's: the states kept for their prefixes must give
    exactly the scores a fresh search gives, also after the cache emptied itself."""
    from engine.lm import word_lm
    words, built = word_ngram.build(corpus(), order=3, min_count=[1, 1], cache_dir=tmp_path, workers=1,
                                    log=lambda m: None, vocab=vocab())
    path = tmp_path / "word_lm.safetensors"
    word_ngram.save(path, words, built)
    kept, fresh = WordLM.load(path), WordLM.load(path)
    monkeypatch.setattr(word_lm, "CACHE_PREFIXES", 12)
    for sentence in ["我们去唱片店很大", "他们喜欢音乐很好听", "我们喜欢唱片"]:
        for n in range(1, len(sentence) + 1):
            texts = [sentence[:n], sentence[:n][::-1], sentence[: n - 1] + "点"]
            fresh.clear_cache()
            assert np.array_equal(kept.score(texts), fresh.score(texts))
    assert len(kept._caches[kept.penalty][0]) < 12 + 40
    # another penalty keeps states of its own: scores with it equal a fresh search's, and the first cache stays
    before = kept.score(["我们去唱片店很大"])
    assert np.array_equal(kept.score(["我们去唱片店很大"], penalty=1.5), fresh.score(["我们去唱片店很大"], penalty=1.5))
    assert np.array_equal(kept.score(["我们去唱片店很大"]), before)


def test_the_per_word_penalty_is_charged_on_the_best_segmentation(tmp_path):
    """score = max over segmentations of log p(words) - penalty · (number of words): every segmentation pays
    per word, so where the best segmentation without a penalty is also the one with the fewest words, the
    score drops by exactly the penalty times that count."""
    words, built = word_ngram.build(corpus(), order=2, min_count=[1], cache_dir=tmp_path, workers=1,
                                    log=lambda m: None, vocab=vocab())
    word_ngram.save(tmp_path / "w.safetensors", words, built)
    plain, charged = WordLM.load(tmp_path / "w.safetensors", penalty=0.0), WordLM.load(tmp_path / "w.safetensors",
                                                                                       penalty=3.0)
    texts = ["我们喜欢唱片", "我喜唱片点"]
    drop = plain.score(texts) - charged.score(texts)
    # 我们|喜欢|唱片: the only cut into 3 words (none into fewer), and the best one without a penalty
    assert abs(drop[0] - 9.0) < 1e-9
    # 我|喜|唱片|点: no cut into fewer than 4 pieces exists (喜 alone is not a word with 我 or 唱)
    assert abs(drop[1] - 12.0) < 1e-9
    # a one-word text pays the penalty once
    (one,) = charged.score(["唱片"])
    (p_one,) = plain.score(["唱片"])
    assert abs((p_one - one) - 3.0) < 1e-9
