"""The shipped model in assets/model: it loads fast, converts, and the CLI speaks the peer-driver interface."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "assets" / "model"


@pytest.fixture(scope="module")
def converter():
    from engine.ime.converter import Converter

    return Converter.load_with_lexicon(MODEL)


def test_loads_in_under_a_second_and_is_small():
    from engine.ime.converter import Converter

    Converter.load(MODEL)  # warm the file cache and the shared allowed matrix
    times = []
    for _ in range(3):  # the best of three: a background process of another test can stall one load
        t0 = time.perf_counter()
        Converter.load(MODEL)
        times.append(time.perf_counter() - t0)
    assert min(times) < 1.0, times
    # 109.0 MB: the model 20.5, the corpus LM 88.5 (cutoffs 2/2/2, 57.9 M characters)
    assert (MODEL / "model.safetensors").stat().st_size + (MODEL / "char_lm.safetensors").stat().st_size < 110e6
    # every model file shipped (weights, graphs, both LMs): at most 150 MB (148.8 with the 13.3 MB word LM)
    assert sum(p.stat().st_size for p in MODEL.rglob("*") if p.is_file()) <= 150e6
    meta = json.loads((MODEL / "config.json").read_text(encoding="utf-8"))
    assert meta["training"]["command"] and meta["training"]["corpus_fingerprint"]
    assert (MODEL / "MODEL.md").exists()


def test_converts_common_input(converter):
    assert converter.convert_segmented("ni hao", top=5)[0].text == "你好"
    assert converter.convert_segmented("zhong guo ren min", top=5)[0].text == "中国人民"
    assert "北京大学" in [c.text for c in converter.convert_raw("bjdx", top=5)]
    assert "西安" in [c.text for c in converter.convert_raw("xi'an", top=5)]


def test_convert_cli_answers_every_line_in_order():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    lines = ["ni hao", "", "not pinyin 123", "wo men", "\udcff"]
    stdin = "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"
    r = subprocess.run([sys.executable, "-m", "ime_app.cli", "convert", "--segmented", "--top", "3", "--timing"],
                       input=stdin, capture_output=True, env=env, timeout=120)
    assert r.returncode == 1 and b"Traceback" not in r.stderr  # 1: some lines could not be converted
    out = r.stdout.decode("utf-8").split("\n")[:-1]
    assert len(out) == len(lines)
    assert out[0].split("\t")[0] == "你好" and out[1] == "" and out[2] == "" and out[3].split("\t")[0] == "我们"
    assert out[4] == ""
    err = r.stderr.decode().splitlines()
    timings = [line for line in err if not line.startswith("line ")]
    assert len(timings) == len(lines) and all(t.isdigit() for t in timings)
    assert [line.split(":")[0] for line in err if line.startswith("line ")] == ["line 3", "line 5"]


def test_abbreviations_get_the_lexicon_prior_in_the_ime_ranking(converter):
    from engine.lexicon import default_lexicon
    from engine.ime.translator import ModelTranslator

    translate = ModelTranslator(converter, default_lexicon())
    assert translate("bjdx")[0].text == "北京大学"
    assert translate("zgr")[0].text == "中国人"
    assert translate("nihao")[0].text == "你好"
    # the prefix words and characters follow the sentences, for a partial commit
    cands = translate("zhongguoren")
    assert cands[0].consumed == len("zhongguoren")
    assert any(c.text == "中国" and c.consumed == len("zhongguo") for c in cands)


def test_shipped_model_decodes_with_its_character_lm(converter):
    """The corpus 4-gram is part of the shipped model: loaded with it, and it changes what the model alone
    would rank first on a line where the model alone is wrong (dev.tsv, not test)."""
    from engine.ime.converter import Converter

    assert converter.char_lm is not None and converter.char_lm.order == 4
    alone = Converter.load(MODEL, char_lm=False)
    assert alone.char_lm is None
    line = "ta men zai jiao shi li xue xi"
    assert converter.convert_segmented(line, 1)[0].text == "他们在教室里学习"
    assert converter.convert_segmented(line, 1)[0].score != alone.convert_segmented(line, 1)[0].score


def test_whole_lines_count_the_word_lm_once(converter):
    """Whole-line conversion adds the word LM's share inside the two passes (while the decoder ranks), and
    ``Converter._decode`` must not add it again: each sentence's score is the two passes' total without it
    plus weight · its best segmentation's log-probability, and a lexicon proposal gets the same share."""
    from engine.ime.converter import _TOKEN_INDEX
    from engine.runtime import two_pass

    conv = converter.with_settings()
    assert conv.uses_two_pass and conv.word_lm is not None
    line = "ta men zai chang pian dian li mai le hen duo lao chang pian"
    ids = [_TOKEN_INDEX[s] for s in line.split()]
    without = {"".join(conv.chars[c] for c in h): s for h, s in two_pass.convert(
        conv.backend, ids, 50, fuse=conv._fuse(), int8=conv.settings.int8, words=conv._word_proposals,
        sequence_prior=conv.char_lm.sequence_logprobs, overlap=False)}
    got = conv.convert_segmented(line, 5)
    assert got and all(c.text in without for c in got)
    shares = conv.word_lm.weight * conv.word_lm.score([c.text for c in got])
    for cand, share in zip(got, shares):
        assert cand.score == pytest.approx(without[cand.text] + share, abs=0.05)
    short = conv.convert_segmented("chang pian", 5)  # ≤ 8 syllables: the lexicon proposes whole words too
    assert short[0].text == "唱片"
