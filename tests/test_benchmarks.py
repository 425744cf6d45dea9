"""The latency benchmark runs end to end and ends with its JSON line (no timing is asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_latency_benchmark_prints_its_json_line():
    r = subprocess.run([sys.executable, "-m", "benchmarks.latency", "--file", str(REPO / "tests/data/tiny_eval.tsv"),
                        "--lines", "3", "--history", "50"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(last) == {"p50_ms", "p95_ms", "max_ms", "rss_mb", "keys"}
    assert last["keys"] > 10 and 0 < last["p50_ms"] <= last["p95_ms"] <= last["max_ms"]
    assert "50 committed lines in the history" in r.stdout


def test_two_pass_sweep_scores_each_setting_beside_the_beam_search():
    """On the shipped model (it has an emission head): one JSON line per setting, the beam search first."""
    r = subprocess.run([sys.executable, "-m", "benchmarks.two_pass_sweep", "--file",
                        str(REPO / "tests/data/tiny_eval.tsv"), "--lines", "6", "--widths", "4", "20",
                        "--beam-search"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()[1:]]
    assert [(row["search"], row.get("width")) for row in rows] == [("beam", None), ("two-pass", 4), ("two-pass", 20)]
    assert all(row["lines"] == 6 and 0 <= row["sent_acc1"] <= row["sent_acc5"] <= 1 for row in rows)


def test_personalize_lift_interval_is_paired():
    import pytest

    from benchmarks.personalize import paired_lift

    before = "0" * 50 + "1" * 50
    mean, half = paired_lift(before, before)
    assert mean == 0 and half == 0  # the same answers: no change, no doubt
    after = "1" * 10 + "0" * 40 + "1" * 50  # ten lines fixed, none broken
    mean, half = paired_lift(before, after)
    assert mean == pytest.approx(0.10)
    assert 0 < half < 0.1  # tighter than the 95% interval of either accuracy alone (±0.098 at 50%)
    broke = "1" * 10 + "0" * 40 + "0" * 5 + "1" * 45  # ten fixed, five broken
    assert paired_lift(before, broke)[0] == pytest.approx(0.05)
    with pytest.raises(ValueError):
        paired_lift("01", "011")


def test_typo_generator_is_seeded_changes_every_line_and_makes_only_the_documented_slips():
    """benchmarks/typos.py: no peers, no model. Each noisy line is its clean keys with exactly one slip of the
    four documented kinds at letters inside one syllable, never a same-count valid reading; same seed, same keys."""
    from benchmarks.typos import KINDS, QWERTY_NEIGHBOURS, make_slip, read_lines, reads_as

    lines = [py for _, py in read_lines(REPO / "tests/data/tiny_eval.tsv")]
    lines += ["zhong guo", "ni hao", "shen me", "zi lv zhe zi qiang", "e e", "xiang", "lve"]
    slips = [make_slip(py) for py in lines]
    assert slips == [make_slip(py) for py in lines]  # deterministic
    assert [s["noisy"] for s in slips] != [make_slip(py, seed=23)["noisy"] for py in lines]  # the seed matters
    assert {s["kind"] for s in slips} <= set(KINDS)

    def one_slip(syllable: str, typed: str) -> set[str]:  # which documented kinds turn syllable into typed
        kinds = set()
        if len(typed) == len(syllable):
            diff = [i for i, (a, b) in enumerate(zip(syllable, typed)) if a != b]
            if len(diff) == 1 and typed[diff[0]] in QWERTY_NEIGHBOURS[syllable[diff[0]]]:
                kinds.add("neighbour")
            if len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == syllable[diff[1]] \
                    and typed[diff[1]] == syllable[diff[0]]:
                kinds.add("swap")
        if len(typed) == len(syllable) + 1 and any(typed[:i] + typed[i + 1:] == syllable and typed[i] == syllable[i - 1]
                                                   for i in range(1, len(typed))):
            kinds.add("double")
        if len(typed) == len(syllable) - 1 >= 1 and any(syllable[:i] + syllable[i + 1:] == typed
                                                        for i in range(len(syllable))):
            kinds.add("drop")
        return kinds

    for py, s in zip(lines, slips):
        syl = py.split()
        clean = "".join(syl)
        assert s["clean"] == clean and s["noisy"] != clean  # every line changes
        k = s["syllable"]
        assert s["from"] == syl[k] and s["noisy"] == "".join(syl[:k] + [s["to"]] + syl[k + 1:])  # one syllable
        assert s["kind"] in one_slip(syl[k], s["to"]), s
        assert not reads_as(s["noisy"], len(syl))  # not another valid reading of as many syllables
    assert reads_as("xian", 1) and reads_as("xian", 2) and not reads_as("zhogn", 1) and reads_as("nihao", 2)


def test_correction_benchmark_injects_seeded_homophone_slips_and_scores_them(tmp_path):
    """The slips keep the reference syllable and are seeded; a short run scores clean and slipped lines."""
    from benchmarks.correction import inject, score
    from engine.lexicon import default_lexicon

    lex = default_lexicon()
    text, syls = "我们一起去公园", "wo men yi qi qu gong yuan".split()
    vocab = set(lex.characters)
    one, two = inject(text, syls, 1, 22, lex, vocab), inject(text, syls, 2, 22, lex, vocab)
    assert one == inject(text, syls, 1, 22, lex, vocab) and one != inject(text, syls, 1, 23, lex, vocab)
    for slipped, at in (one, two):
        assert len(at) == len({*at}) and [i for i, (a, b) in enumerate(zip(text, slipped)) if a != b] == at
        assert all(lex.has_reading(slipped[i], syls[i]) for i in at)
    fixed = {"clean": text, "text": one[0], "slips": one[1], "edits": [(one[1][0], one[1][0] + 1, text[one[1][0]], 20.0)]}
    alarm = {"clean": text, "text": text, "slips": [], "edits": [(0, 1, "窝", 5.0)]}
    assert score([fixed, alarm], 10.0)["sentence"]["correct_p"] == 1.0
    low = score([fixed, alarm], 1.0)
    assert low["false_alarm_rate"] == 1.0 and low["char"]["correct_p"] == 0.5 and low["char"]["correct_r"] == 1.0

    out = tmp_path / "c.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks.correction", "--file", str(REPO / "tests/data/tiny_eval.tsv"),
                        "--lines", "4", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["report"]["at_margin"]["clean"] == 4 and data["report"]["at_margin"]["versions"] == 12
    assert 0 < data["report"]["p50_ms"] <= data["report"]["p95_ms"] and "commit" in r.stdout


def test_the_lm_sweeps_print_one_row_per_setting():
    """fusion_sweep (the character LM's weight) and word_lm_sweep (the word LM's) on the shipped model: each
    setting is a converter made with its own settings and LMs, one JSON row each."""
    tiny = str(REPO / "tests/data/tiny_eval.tsv")
    for argv, n in ((["benchmarks.fusion_sweep", "--weights", "0", "1.0", "--gaps", "-1", "3"], 4),
                    (["benchmarks.word_lm_sweep", "--weights", "0", "0.3", "--proposals", "off"], 2),
                    (["benchmarks.word_lm_sweep", "--weights", "0.3", "--char-weights", "0.5", "1.0",
                      "--proposals", "on"], 2)):
        r = subprocess.run([sys.executable, "-m", *argv, "--file", tiny, "--lines", "4"], cwd=REPO,
                           capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.strip().splitlines()[1:]]
        assert len(rows) == n and all(row["lines"] == 4 for row in rows), r.stdout
        if "--char-weights" in argv:  # the grid runs over the character LM's weight too
            assert [row["char_weight"] for row in rows] == [0.5, 1.0]
