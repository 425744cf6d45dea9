"""Shared test setup: Qt runs headless (real widgets, offscreen platform); a tiny model standing in for the
factory model and a user's typed history, for the personalization tests."""

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# what the user typed: a few sentences, often (the held-out lines repeat them, so a tiny model can learn them)
SENTENCES = [("我们一起去吃饭", "wo men yi qi qu chi fan"), ("明天下午开会", "ming tian xia wu kai hui"),
             ("这个方法很好", "zhe ge fang fa hen hao"), ("谢谢你的帮助", "xie xie ni de bang zhu"),
             ("北京大学图书馆", "bei jing da xue tu shu guan"), ("我想喝咖啡", "wo xiang he ka fei")]


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path_factory):
    """Every test gets a cache folder of the test session's own (``$PINYIN_IME_CACHE``; a test may point it
    elsewhere): "Delete all my data" removes the annotated corpora there, and the tests that press it would
    otherwise delete the developer's real ones (ten minutes to rebuild on two cores)."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("PINYIN_IME_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny untrained model (the 'factory' model in these tests) with its ONNX export."""
    import torch

    from engine.lexicon import default_lexicon
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, char_vocab, input_tokens, save_model
    from engine.runtime.onnx_export import export

    torch.manual_seed(0)
    chars = char_vocab(default_lexicon().characters)
    model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=len(chars), max_len=64, **SIZES["tiny"]))
    out = tmp_path_factory.mktemp("tiny-factory")
    save_model(model, out, chars)
    export(model, out)
    return out


def _typed_home(path: Path, repeats: int = 20) -> Path:
    """A data folder whose store holds SENTENCES typed ``repeats`` times (shuffled) and one line with
    punctuation (read with pypinyin)."""
    from engine import store
    db = store.open_store(path)
    typed = SENTENCES * repeats
    random.Random(0).shuffle(typed)  # not in a cycle: every held-out sentence is also among the trained lines
    for i, (text, pinyin) in enumerate(typed):
        store.record_commit(db, text, pinyin, pinyin.replace(" ", ""), now=1000.0 + i)
    store.record_commit(db, "好的，明天见！", "", "", now=2000.0)
    db.close()
    return path


@pytest.fixture(scope="session")
def typed_home():
    return _typed_home


@pytest.fixture
def open_window(qtbot):
    """``open_window(home)``: the app's main window on the store in ``home``, shown, its model loaded."""
    from ime_app.window import MainWindow

    def open_(home):
        w = MainWindow(home=home)
        qtbot.addWidget(w)
        w.show()
        w.editor.setFocus()
        assert w.wait_idle(60), "the model did not load"
        return w

    return open_
