"""Correcting committed text with the shipped model: homophone slips fixed, correct text left alone, non-汉字
kept, any length worked on clause by clause."""

import pytest

from engine.ime import correction
from engine.ime.converter import Converter
from engine.lexicon import ASSETS_DIR


@pytest.fixture(scope="module")
def conv():
    return Converter.load(ASSETS_DIR / "model")


def test_a_homophone_slip_is_fixed_and_its_position_reported(conv):
    fix = correction.propose(conv, "我们一起去公圆")
    assert fix is not None and fix.text == "我们一起去公园"
    assert fix.changed == [6] and [(e.start, e.original, e.replacement) for e in fix.edits] == [(6, "圆", "园")]
    assert all(e.strength > correction.MARGIN for e in fix.edits)


@pytest.mark.parametrize("text", ["我们一起去公园", "今天天气很好", "他在银行工作，每天都很忙。"])
def test_correct_text_gets_no_proposal(conv, text):
    assert correction.propose(conv, text) is None


def test_punctuation_latin_and_digits_are_kept(conv):
    text = "今天天气很好，我们去公圆玩吧！OK 123"
    fix = correction.propose(conv, text)
    assert fix is not None and fix.text == "今天天气很好，我们去公园玩吧！OK 123"
    assert fix.changed == [text.index("圆")]


def test_readings_are_toneless_with_v_and_none_for_what_is_not_han():
    assert correction.readings("绿色OK，好") == ["lv", "se", None, None, None, "hao"]


def test_long_text_is_worked_on_clause_by_clause(conv):
    clause = "我们一起去公园玩"
    text = "，".join([clause] * 9)[:-1] + "完。"  # 80 characters; the slip (玩 → 完) in the last clause
    fix = correction.propose(conv, text)
    assert fix is not None and fix.text == "，".join([clause] * 9) + "。"
    assert fix.changed == [len(text) - 2]
    run = "我们一起去公园玩" * 10  # one run of 80 汉字, longer than the model reads at once
    at = run.index("公园", 64) + 1  # past the first 64 characters
    fix = correction.propose(conv, run[:at] + "圆" + run[at + 1:])
    assert fix is not None and fix.text == run and fix.changed == [at]


def test_the_text_around_a_selection_is_context(conv):
    fix = correction.propose(conv, "公圆", before="我们一起去", after="玩吧")
    assert fix is not None and fix.text == "公园" and fix.changed == [1]


def test_traditional_text_is_read_as_simplified_and_answered_in_traditional(conv):
    fix = correction.propose(conv, "我們一起去公圓")
    assert fix is not None and fix.text == "我們一起去公園"


def test_a_typing_converter_is_left_as_it_was(conv):
    typing = conv.with_settings(reuse=3)
    fix = correction.propose(typing, "我们一起去公圆")
    assert fix is not None and fix.text == "我们一起去公园"
    assert typing.settings.reuse == 3


def test_a_high_margin_proposes_nothing(conv):
    assert correction.propose(conv, "我们一起去公圆", margin=1000) is None
