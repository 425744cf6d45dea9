"""Input longer than the model reads at once (64 syllables): cut into pieces, each converted, the best joined."""

import itertools
import random
from pathlib import Path

import pytest

from engine.ime.converter import Converter, chunk_spans, join_best

MODEL = Path(__file__).resolve().parent.parent / "assets" / "model"


def test_spans_cover_the_input_evenly_and_prefer_typed_breaks():
    assert chunk_spans(64, 64) == [(0, 64)]  # what fits stays one piece
    assert chunk_spans(80, 64) == [(0, 40), (40, 80)]  # not 64 + 16
    assert chunk_spans(80, 64, breaks=[35]) == [(0, 35), (35, 80)]
    assert chunk_spans(80, 64, breaks=[10]) == [(0, 40), (40, 80)]  # too early a break: pieces stay long
    for n in range(65, 400):
        spans = chunk_spans(n, 64, breaks=range(0, n, 7))
        assert spans[0][0] == 0 and spans[-1][1] == n and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(0 < b - a <= 64 for a, b in spans)


def test_joined_results_are_the_exact_best_sums():
    rng = random.Random(1)
    parts = [sorted(((f"{i}{c}", rng.uniform(-9, 0)) for c in "abcdef"), key=lambda ts: -ts[1]) for i in range(3)]
    every = sorted((("".join(t for t, _ in combo), sum(s for _, s in combo)) for combo in itertools.product(*parts)),
                   key=lambda ts: -ts[1])
    assert [t for t, _ in join_best(parts, 5)] == [t for t, _ in every[:5]]
    assert join_best(parts + [[]], 5) == []  # a piece without results: no sentence for the whole


@pytest.fixture(scope="module")
def converter():
    return Converter.load(MODEL)


def test_a_long_line_is_its_pieces_converted_and_joined(converter):
    syllables = ("wo men yi qi qu chi fan ming tian xia wu kai hui " * 8).split()[:100]
    whole = converter.convert_syllables(syllables, top=3)
    assert len(whole) == 3 and all(len(c.text) == 100 for c in whole)
    (a, b), (c, d) = chunk_spans(100, converter.backend.max_len)
    first, second = converter.convert_syllables(syllables[a:b], 1), converter.convert_syllables(syllables[c:d], 1)
    assert whole[0].text == first[0].text + second[0].text
    assert whole[0].score == pytest.approx(first[0].score + second[0].score)
    keys = "'".join(syllables[:50]) + "'" + "".join(syllables[50:])  # raw keys: converted the same way
    assert converter.convert_raw(keys, top=1)[0].text == whole[0].text
