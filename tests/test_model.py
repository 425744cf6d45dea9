import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.ime.converter import Converter, ConverterSettings
from engine.runtime.torch_backend import beam_search, greedy
from engine.lexicon import default_lexicon
from engine.runtime.model import (
    BOS, SIZES, ModelConfig, PinyinModel, allowed_matrix, char_vocab, input_tokens, load_model, save_model,
)

TOK = {t: i for i, t in enumerate(input_tokens())}


@pytest.fixture(scope="module")
def vocab():
    lex = default_lexicon()
    chars = char_vocab(lex.characters)
    return chars, allowed_matrix(chars, lex.readings)


@pytest.fixture
def model(vocab):
    torch.manual_seed(0)
    chars, allowed = vocab
    m = PinyinModel(ModelConfig(n_inputs=len(TOK), n_chars=len(chars), max_len=32, **SIZES["tiny"]))
    m.set_allowed(allowed)
    return m.eval()


def ids(*syls):
    return torch.tensor([[TOK[s] for s in syls]])


def test_allowed_matrix_follows_readings(vocab):
    chars, allowed = vocab
    c = {ch: i for i, ch in enumerate(chars)}
    assert allowed[TOK["hang"], c["行"]] and allowed[TOK["xing"], c["行"]]
    assert not allowed[TOK["zhong"], c["国"]]
    assert allowed[TOK["zh-"], c["中"]] and not allowed[TOK["zh-"], c["在"]]
    assert allowed[TOK["z-"], c["中"]] and allowed[TOK["z-"], c["在"]]  # z alone also stands for zh
    assert allowed[TOK["zho~"], c["中"]] and allowed[TOK["zho~"], c["周"]] and not allowed[TOK["zho~"], c["在"]]
    assert not allowed[:, BOS].any()


def test_restricted_loss_equals_the_masked_full_softmax(vocab):
    """``nll`` scores each input token's characters apart (no positions × n_chars logits): the loss and every
    gradient are those of the full softmax with the disallowed characters masked out, abbreviations and padding
    included; a target its token cannot spell is left out instead of making the loss infinite."""
    import torch.nn.functional as F

    chars, allowed = vocab
    torch.manual_seed(1)
    m = PinyinModel(ModelConfig(n_inputs=len(TOK), n_chars=len(chars), max_len=32, emission_head=True, **SIZES["tiny"]))
    m.set_allowed(allowed)
    x = torch.tensor([[TOK["zhong"], TOK["guo"], TOK["ren"], TOK["zh-"]], [TOK["ni"], TOK["hao"], TOK["zhong"], 0]])
    y = torch.tensor([[chars.index(c) for c in "中国人长"], [chars.index("你"), chars.index("好"), chars.index("钟"), 0]])

    def masked(states):
        logits = (states @ m.char_emb.weight.t()).masked_fill(~m.allowed[x], float("-inf"))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), ignore_index=0)

    def grads(loss_of):
        m.zero_grad()
        enc, mask = m.encode(x)
        loss = loss_of(m.decoder_states(enc, mask, y)) + loss_of(m.emit(enc))
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in m.parameters() if p.grad is not None]

    want, want_g = grads(masked)
    got, got_g = grads(lambda s: m.nll(s, x, y))
    assert torch.allclose(got, want, atol=1e-6)
    assert len(got_g) == len(want_g) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got_g, want_g))
    assert torch.allclose(m.loss(x, y), masked(m.decoder_states(*m.encode(x), y)), atol=1e-6)
    bad = y.clone()
    bad[0, 0] = chars.index("国")  # 国 is never read zhong
    with torch.no_grad():
        enc, mask = m.encode(x)
        states = m.decoder_states(enc, mask, bad)
        kept = torch.ones_like(y, dtype=torch.bool)
        kept[0, 0] = False
        expect = F.cross_entropy((states @ m.char_emb.weight.t()).masked_fill(~m.allowed[x], float("-inf"))[kept],
                                 bad[kept], ignore_index=0)
        assert torch.isfinite(m.nll(states, x, bad)) and torch.allclose(m.nll(states, x, bad), expect, atol=1e-6)


def test_incremental_decoding_matches_teacher_forcing(model, vocab):
    chars, _ = vocab
    c = {ch: i for i, ch in enumerate(chars)}
    x = ids("zhong", "guo", "ren", "min")
    y = torch.tensor([[c[ch] for ch in "中国人民"]])
    with torch.no_grad():
        full = torch.log_softmax(model(x, y).float(), dim=-1)
        cache = model.start(x)
        prev = torch.tensor([BOS])
        for t in range(4):
            step = model.step(cache, prev, x[:, t])
            assert torch.allclose(step[0], full[0, t], atol=1e-5)
            prev = y[:, t]


def test_outputs_only_characters_the_syllable_can_spell(model, vocab):
    chars, _ = vocab
    lex = default_lexicon()
    syls = ["yin", "hang", "xing", "zou"]
    for hyp, score in beam_search(model, [TOK[s] for s in syls], beam=6, top=6):
        text = "".join(chars[i] for i in hyp)
        assert lex.can_spell(text, syls), text
        assert score <= 0
    scores = [s for _, s in beam_search(model, [TOK[s] for s in syls], beam=6, top=6)]
    assert scores == sorted(scores, reverse=True) and len(scores) == 6
    out = greedy(model, torch.tensor([[TOK["ni"], TOK["hao"]], [TOK["hao"], 0]]))
    assert out.shape == (2, 2) and out[1, 1] == 0  # padding decodes to padding


def test_save_load_roundtrip_and_bad_files(model, vocab, tmp_path):
    chars, allowed = vocab
    save_model(model, tmp_path, chars, {"note": "test"})
    loaded, meta = load_model(tmp_path)
    loaded.set_allowed(allowed)
    x = ids("ni", "hao")
    y = torch.tensor([[5, 6]])
    with torch.no_grad():
        assert torch.equal(model(x, y), loaded(x, y))
    assert meta["note"] == "test" and not list(tmp_path.glob("*.tmp"))
    conv = Converter(loaded, chars)
    assert len(conv.convert_segmented("ni hao", top=3)) == 3
    with pytest.raises(ValueError):
        conv.convert_segmented("ni hoa")
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        load_model(tmp_path)
    cfg["format_version"] = 1
    cfg["model"]["d_model"] = -3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="d_model"):
        load_model(tmp_path)


def test_raw_keys_decode_over_several_segmentations(model, vocab):
    chars, _ = vocab
    conv = Converter(model, chars, ConverterSettings(segmentations=3, max_cost_gap=2.0))
    cands = conv.convert_raw("xian", top=10)
    assert {len(c.text) for c in cands} == {1, 2}  # xian and xi'an both decoded
    assert conv.convert_raw("iiii") == []
    abbreviated = conv.convert_raw("bjdx", top=3)
    assert abbreviated and all(len(c.text) == 4 for c in abbreviated)


@torch.no_grad()
def reference_beam(model, x_ids, beam, top):
    """Beam search through the model's reference step_token (module calls, growing caches)."""
    cache = model.start(torch.tensor([x_ids]))
    scores, hyps, prev = torch.zeros(1), torch.empty(1, 0, dtype=torch.long), torch.tensor([BOS])
    for t in range(len(x_ids)):
        lp, idx = model.step_token(cache, prev, x_ids[t])
        best, flat = (scores[:, None] + lp).view(-1).topk(min(beam, lp.numel()))
        src, chars = flat // lp.shape[1], idx[flat % lp.shape[1]]
        cache, hyps, scores, prev = cache.select(src), torch.cat([hyps[src], chars[:, None]], 1), best, chars
    return [(h, float(s)) for h, s in zip(hyps[:top].tolist(), scores[:top].tolist())]


def test_fast_beam_search_equals_the_reference(model):
    for syls in (["ni", "hao"], ["zhong", "guo", "ren", "min", "yin", "hang"], ["b-", "j-", "d-", "x-"], ["shi"]):
        x_ids = [TOK[s] for s in syls]
        fast = beam_search(model, x_ids, beam=5, top=5)
        ref = reference_beam(model, x_ids, beam=5, top=5)
        assert [h for h, _ in fast] == [h for h, _ in ref]
        assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(fast, ref))


def test_lexicon_proposals_are_ranked_by_the_model(model, vocab):
    chars, _ = vocab
    conv = Converter(model, chars, lexicon=default_lexicon())
    x_ids = [TOK[s] for s in ["bei", "jing", "da", "xue"]]
    (best, best_score), = beam_search(model, x_ids, beam=8, top=1)
    text = "".join(chars[i] for i in best)
    assert abs(conv.score_texts(x_ids, [text])[0] - best_score) < 1e-3  # forced scoring = beam scoring
    cands = conv.convert_raw("bjdx", top=50)
    assert "北京大学" in [c.text for c in cands]  # proposed by the lexicon for the abbreviation
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)


def test_resuming_from_a_beam_of_the_same_input_reproduces_the_decode(model):
    x_ids = [TOK[s] for s in ["zhong", "guo", "ren", "min", "yin", "hang", "zho~"]]
    states = {}
    full = beam_search(model, x_ids, beam=6, top=6, trace=states, trace_from=0)
    assert sorted(states) == list(range(1, len(x_ids)))  # the beam after every position but the last
    for L, state in states.items():
        again = beam_search(model, x_ids, beam=6, top=6, resume=state)
        assert [h for h, _ in again] == [h for h, _ in full]
        assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(again, full))


def test_int8_weights_keep_the_decode_close(model):
    x_ids = [TOK[s] for s in ["ni", "hao", "shi", "jie"]]
    fp32 = beam_search(model, x_ids, beam=5, top=5)
    int8 = beam_search(model, x_ids, beam=5, top=5, int8=True)
    assert abs(fp32[0][1] - int8[0][1]) < 0.05 * abs(fp32[0][1]) + 0.05


def test_interactive_converter_reuses_earlier_keystrokes(model, vocab):
    chars, _ = vocab
    conv = Converter(model, chars, ConverterSettings().interactive(reuse=2))
    steps = []
    real = beam_search

    def counting(ids, *a, **k):
        r = k.get("resume")
        steps.append(len(ids) - (r.length if r is not None else 0))
        return real(model, ids, *a, **k)

    conv.backend.beam_search = counting
    keys = "zhongguorenminyinhang"
    for i in range(1, len(keys) + 1):
        conv.convert_raw(keys[:i], top=5)
    assert steps and max(steps[-5:]) <= 4  # a few positions per key at the end, not all seven
    cached = conv.convert_raw(keys, top=5)  # the same input again: answered from the cache
    assert [c.text for c in cached] == [c.text for c in conv.convert_raw(keys, top=5)]


def test_onnx_runtime_decodes_like_pytorch(model, vocab, tmp_path):
    pytest.importorskip("onnxruntime")
    from engine.runtime.onnx_backend import OnnxBackend, is_current

    chars, _ = vocab
    save_model(model, tmp_path, chars)
    ort = OnnxBackend(tmp_path)  # exports on first use
    assert is_current(tmp_path)
    for syls in (["ni", "hao"], ["zhong", "guo", "ren", "min", "yin", "hang"], ["b-", "j-", "d-", "x-"]):
        x_ids = [TOK[s] for s in syls]
        a, b = beam_search(model, x_ids, beam=5, top=5), ort.beam_search(x_ids, beam=5, top=5)
        assert [h for h, _ in a] == [h for h, _ in b]
        assert all(abs(x - y) < 1e-3 for (_, x), (_, y) in zip(a, b))
        assert all(abs(s - x) < 1e-3 for s, (_, x) in zip(ort.score(x_ids, [h for h, _ in b]), b))
    x_ids = [TOK[s] for s in ["zhong", "guo", "ren", "min"]]
    (_, fp32), = ort.beam_search(x_ids, beam=5, top=1)
    (_, int8), = ort.beam_search(x_ids, beam=5, top=1, int8=True)
    assert abs(fp32 - int8) < 0.05 * abs(fp32) + 0.05
    states = {}
    full = ort.beam_search(x_ids, beam=5, top=5, trace=states)
    assert [h for h, _ in ort.beam_search(x_ids, beam=5, top=5, resume=states[2])] == [h for h, _ in full]
    model.dec_ln.bias.data += 0.5  # a changed model is exported again, never run with stale graphs
    save_model(model, tmp_path, chars)
    assert not is_current(tmp_path)
    OnnxBackend(tmp_path)
    assert is_current(tmp_path)


def test_converter_on_onnx_matches_torch(model, vocab, tmp_path):
    pytest.importorskip("onnxruntime")
    chars, _ = vocab
    save_model(model, tmp_path, chars)
    a = Converter.load(tmp_path, runtime="torch", lexicon=default_lexicon())
    b = Converter.load(tmp_path, runtime="onnx", lexicon=default_lexicon())
    assert (a.runtime, b.runtime) == ("torch", "onnx") and a.num_params == b.num_params
    for keys in ("nihao", "bjdx", "zhongguoren"):
        assert [c.text for c in a.convert_raw(keys)] == [c.text for c in b.convert_raw(keys)]


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_gap_pruning_keeps_only_hypotheses_near_the_best(model, vocab, tmp_path, runtime):
    pytest.importorskip("onnxruntime")
    chars, _ = vocab
    save_model(model, tmp_path, chars)
    conv = Converter.load(tmp_path, runtime=runtime)
    ids = [input_tokens().index(s) for s in ("zhong", "guo", "ren")]
    full = conv.backend.beam_search(ids, beam=8, top=8)
    pruned = conv.backend.beam_search(ids, beam=8, top=8, gap=0.5)
    assert 1 <= len(pruned) <= len(full)
    assert pruned[0][0] == full[0][0] and pruned[0][1] == pytest.approx(full[0][1], abs=1e-4)
    assert all(s >= pruned[0][1] - 0.5 - 1e-4 for _, s in pruned)


@pytest.fixture
def headed(vocab):
    """A tiny model with an emission head whose weights are not the identity (so the head has an opinion)."""
    torch.manual_seed(1)
    chars, allowed = vocab
    m = PinyinModel(ModelConfig(n_inputs=len(TOK), n_chars=len(chars), max_len=32, emission_head=True,
                                **SIZES["tiny"]))
    torch.nn.init.normal_(m.emit.mlp.down.weight, std=0.05)
    m.set_allowed(allowed)
    return m.eval()


def test_emission_head_is_saved_and_restricted_to_readings(headed, vocab, tmp_path):
    chars, allowed = vocab
    save_model(headed, tmp_path, chars)
    loaded, meta = load_model(tmp_path)
    assert meta["model"].emission_head and loaded.emit is not None
    loaded.set_allowed(allowed)
    x = ids("zhong", "guo")
    logits = loaded.emissions(x)
    assert torch.equal(torch.isfinite(logits[0]), allowed[x[0]])
    assert torch.allclose(logits, headed.emissions(x))
    loss = loaded.emission_loss(x, torch.tensor([[chars.index("中"), chars.index("国")]]))
    assert torch.isfinite(loss) and loss > 0


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_two_pass_ranks_by_the_beam_search_objective(headed, vocab, tmp_path, runtime):
    """Exhaustive first pass on a short input: the two passes find the best text under model + LM prior, so
    their top score is at least the beam search's, and a text both find gets the same score from both."""
    pytest.importorskip("onnxruntime")
    from engine.runtime import two_pass
    chars, _ = vocab
    save_model(headed, tmp_path, chars)
    conv = Converter.load(tmp_path, runtime=runtime)
    assert conv.uses_two_pass and conv.settings.two_pass == two_pass.TwoPassSettings()
    x_ids = [TOK[s] for s in ("ta", "men", "hao")]
    prior = lambda h, a, lp: lp - 0.01 * (a[None, :] % 7) - 0.1 * (h.shape[1] and (h[:, -1:] % 3 == 0))  # noqa: E731
    beam = conv.backend.beam_search(x_ids, beam=4, top=4, fuse=prior)
    wide = dict(width=10 ** 6, keep=10 ** 6, ranked=10 ** 6, budget=None)
    both = two_pass.convert(conv.backend, x_ids, top=10 ** 6, fuse=prior, head_rank_weight=0.0, **wide)
    assert both[0][1] >= beam[0][1] - 1e-4
    scores = {tuple(h): s for h, s in both}
    for h, s in beam:
        assert scores[tuple(h)] == pytest.approx(s, abs=1e-3)
    assert all(a[1] >= b[1] for a, b in zip(both, both[1:]))
    # with the head's opinion in the rank pass, each score gains exactly its weighted head log-probability
    _, emissions = conv.backend.emissions(x_ids)
    headed_scores = two_pass.convert(conv.backend, x_ids, top=10 ** 6, fuse=prior, head_rank_weight=0.5, **wide)
    for h, s in headed_scores:
        extra = 0.5 * two_pass.head_logprob(np.array([h]), emissions)[0]
        assert s == pytest.approx(scores[tuple(h)] + extra, abs=1e-3)
    small = two_pass.convert(conv.backend, x_ids, top=3, fuse=prior, width=4, keep=5, ranked=3)
    assert len(small) == 3 and all(tuple(h) in scores for h, _ in small)
    # a long line's first pass keeps what the budget allows: with 3 positions and a budget of 9 hypothesis-
    # positions, as many results as MIN_WIDTH hypotheses give, not the width asked for
    capped = two_pass.convert(conv.backend, x_ids, top=10 ** 6, fuse=prior, width=10 ** 6, keep=10 ** 6,
                              ranked=10 ** 6, budget=9)
    assert len(capped) == two_pass.MIN_WIDTH < len(both)
    assert two_pass.convert(conv.backend, [], top=3) == [] and conv.convert_syllables([]) == []


def test_two_pass_on_onnx_matches_torch(headed, vocab, tmp_path):
    pytest.importorskip("onnxruntime")
    chars, _ = vocab
    save_model(headed, tmp_path, chars)
    a, b = Converter.load(tmp_path, runtime="torch"), Converter.load(tmp_path, runtime="onnx")
    for line in ("ni hao", "zhong guo ren min yin hang", "wo men qu bei jing da xue"):
        ta, tb = a.convert_segmented(line, 5), b.convert_segmented(line, 5)
        assert [c.text for c in ta] == [c.text for c in tb]
        assert all(x.score == pytest.approx(y.score, abs=1e-3) for x, y in zip(ta, tb))


def test_two_pass_overlapped_with_the_word_lattice_ranks_as_one_call(headed, vocab, tmp_path):
    """The decoder's call for the first pass's proposals runs on the second thread while the word lattice is
    built (``rank_later``); with fp32 weights every proposal gets the score the single call gives it, and a
    failing lattice lets the call finish and raises."""
    pytest.importorskip("onnxruntime")
    from engine.runtime import two_pass
    chars, _ = vocab
    save_model(headed, tmp_path, chars)
    conv = Converter.load(tmp_path, runtime="onnx")
    x_ids = [TOK[s] for s in ("wo", "men", "qu", "bei", "jing")]
    encoded, emissions = conv.backend.emissions(x_ids)
    first, _ = two_pass.propose(emissions, None, 6, 6)
    lattice = [[int(idx[np.argmin(head)]) for idx, head in emissions]]  # the head's least likely: not proposed
    words = lambda x, e, w: lattice + [first[0].tolist()]  # noqa: E731  (a repeat is dropped)
    kw = dict(top=10, width=6, keep=6, ranked=6, words=words)
    one = two_pass.convert(conv.backend, x_ids, overlap=False, **kw)
    both = two_pass.convert(conv.backend, x_ids, overlap=True, **kw)
    assert [h for h, _ in both] == [h for h, _ in one] and lattice[0] in [h for h, _ in one]
    assert [s for _, s in both] == pytest.approx([s for _, s in one], abs=1e-5)
    finish = conv.backend.rank_later(encoded, x_ids, first, False, two_pass._ranker().submit)
    assert finish() == pytest.approx(conv.backend.rank(encoded, x_ids, first), abs=1e-5)

    def broken(x, e, w):
        raise RuntimeError("lattice")

    with pytest.raises(RuntimeError, match="lattice"):
        two_pass.convert(conv.backend, x_ids, overlap=True, **{**kw, "words": broken})
    # a whole-sequence prior (the word LM's share), computed while the lattice's proposals rank, adds to each
    # total and can reorder them; a failing one lets the decoder calls finish and raises
    bonus = {tuple(h): 0.5 * i for i, (h, _) in enumerate(one)}
    text_prior = lambda ys: np.array([bonus[tuple(h)] for h in ys.tolist()])  # noqa: E731
    for overlap in (False, True):
        added = dict((tuple(h), s) for h, s in two_pass.convert(conv.backend, x_ids, overlap=overlap,
                                                                 text_prior=text_prior, **kw))
        assert added == pytest.approx({tuple(h): s + bonus[tuple(h)] for h, s in one}, abs=1e-5)

    def failing(ys):
        raise RuntimeError("text prior")

    with pytest.raises(RuntimeError, match="text prior"):
        two_pass.convert(conv.backend, x_ids, overlap=True, text_prior=failing, **kw)


def test_a_new_onnx_export_takes_the_old_ones_place_whole(model, vocab, tmp_path, monkeypatch):
    """Exporting again (a new model written into the same folder) never leaves an ``onnx`` folder with files
    missing: the old one is renamed aside before the new one is renamed in and only then deleted; what a
    killed export left behind is cleared by the next."""
    pytest.importorskip("onnxruntime")
    import shutil

    from engine.runtime import onnx_export
    from engine.runtime.onnx_backend import is_current

    chars, _ = vocab
    save_model(model, tmp_path, chars)
    onnx_export.export_dir(tmp_path)
    files = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    assert "export.json" in files and "decoder.int8.onnx" in files
    (tmp_path / "onnx.tmp-1").mkdir()  # a killed export's leftovers
    seen = []
    real = shutil.rmtree

    def watch(path, *a, **k):
        if Path(path).name.startswith("onnx.old"):
            seen.append(sorted(p.name for p in (tmp_path / "onnx").iterdir()))
        real(path, *a, **k)

    monkeypatch.setattr(onnx_export.shutil, "rmtree", watch)
    onnx_export.export_dir(tmp_path)
    assert seen == [files]  # when the old export went, the whole new one was already in place
    assert is_current(tmp_path) and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("onnx")) == ["onnx"]


def test_converter_settings_are_frozen_and_changes_make_another_converter(model, vocab):
    import dataclasses

    chars, _ = vocab
    conv = Converter(model, chars, ConverterSettings(beam=4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.settings.beam = 8
    with pytest.raises(AttributeError):
        conv.char_lm = object()  # LMs are given when a converter is made (with_lms), not set on it
    wide = conv.with_settings(beam=8)
    assert (conv.settings.beam, wide.settings.beam) == (4, 8) and wide.backend is conv.backend
    lexicon = default_lexicon()
    with_lexicon = conv.with_lms(lexicon=lexicon)
    assert conv.lexicon is None and with_lexicon.lexicon is lexicon and with_lexicon.settings == conv.settings
    with pytest.raises(TypeError, match="not a language model"):
        conv.with_lms(beam=3)
    x_ids = [TOK[s] for s in ["ni", "hao", "shi", "jie"]]
    assert [c.text for c in wide.convert_syllables(["ni", "hao", "shi", "jie"], 3)] == \
        ["".join(chars[i] for i in h) for h, _ in beam_search(model, x_ids, beam=8, top=3)]


def test_head_logprob_sums_the_heads_scores_along_each_sequence():
    import numpy as np

    from engine.runtime.two_pass import head_logprob

    emissions = [(np.array([3, 5, 9]), np.log(np.array([0.2, 0.5, 0.3]))),
                 (np.array([4, 5]), np.log(np.array([0.6, 0.4])))]
    ys = np.array([[5, 4], [9, 5], [7, 4]])  # the last: 7 is not allowed at position 0
    got = head_logprob(ys, emissions)
    assert got[0] == pytest.approx(np.log(0.5 * 0.6)) and got[1] == pytest.approx(np.log(0.3 * 0.4))
    assert got[2] == -np.inf


def test_typing_decodes_less_likely_segmentations_with_the_secondary_beam(model, vocab):
    """``secondary_beam`` narrows the beam search only for raw keys' less likely segmentations (fangan:
    fan'gan, then fang'an); the best one keeps the full beam, and so does everything without the setting."""
    from engine.ime.converter import ConverterSettings

    chars, _ = vocab
    widths = []
    for secondary in (None, 2):
        conv = Converter(model, chars, ConverterSettings(secondary_beam=secondary).interactive(reuse=2))
        search = conv.backend.beam_search

        def spy(ids, beam, *a, **k):
            widths.append((secondary, tuple(ids), beam))
            return search(ids, beam, *a, **k)

        conv.backend.beam_search = spy
        assert conv.convert_raw("fangan", 5)
    first, second = [TOK["fan"], TOK["gan"]], [TOK["fang"], TOK["an"]]
    assert widths == [(None, tuple(first), 8), (None, tuple(second), 8), (2, tuple(first), 8), (2, tuple(second), 2)]
