"""The status bar's accuracy is the product's — the model with its language models, as the user types — not the
trainer's figure for the network alone (config.json's "dev sentence accuracy 44.0%", against ~69% with the LMs)."""

import json
import os

import pytest

from engine.lexicon import ENV_FACTORY, factory_model_dir
from engine.personal import files
from ime_app import model_quality
from ime_app.window import MainWindow
from trainer import finetune
from trainer.user_text import GENERAL_FILE, read_lines


def _window(qtbot, home, **kw):
    win = MainWindow(home=home, **kw)
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    return win


def test_the_status_bar_shows_the_accuracy_with_the_language_models(qtbot, tmp_path, monkeypatch):
    # what personalization's general check leaves in the data folder (the same function and cache file; the
    # measurement itself is stubbed: 15 s for the shipped model)
    measured = {"sent_acc": 0.692, "char_acc": 0.928, "lines": 1000, "ms_per_line": 14.4}
    monkeypatch.setattr(finetune, "line_accuracy", lambda model_dir, lines, cancelled=None: dict(measured))
    finetune.general_accuracy(factory_model_dir(), read_lines(GENERAL_FILE), files.models_dir(tmp_path))
    win = _window(qtbot, tmp_path)
    label = win.model_label.text()
    assert win.model_status.startswith("factory model") and "general text 69.2%" in label, label
    network = json.loads((factory_model_dir() / "config.json").read_text())["training"]["dev"]["sent_acc"]
    assert f"{network:.1%}" not in label and "dev sentence accuracy" not in label
    tip = win.model_label.toolTip()
    assert "with its language models" in tip and "1,000 lines of general text" in tip
    assert f"without its language models, scored {network:.1%}" in tip  # the network's own figure, labelled as such
    win.close()
    win.db.close()

    fresh = _window(qtbot, tmp_path / "fresh")  # a new user: the figure shipped beside the factory model
    assert (factory_model_dir() / model_quality.CACHE_NAME).exists()
    shipped = next(iter(json.loads((factory_model_dir() / model_quality.CACHE_NAME).read_text()).values()))
    assert f"general text {shipped['sent_acc']:.1%}" in fresh.model_label.text() and fresh.measuring is None
    fresh.close()
    fresh.db.close()


def test_a_model_not_measured_yet_is_measured_once_in_the_background(qtbot, tmp_path, tiny, monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    win = _window(qtbot, tmp_path, measure_accuracy=True)
    assert win.measuring is not None and "measuring its accuracy" in win.model_label.text()
    assert win.editor.isEnabled()  # (typing goes on: the measurement is another process)
    qtbot.waitUntil(lambda: win.measuring is None, timeout=90_000)
    assert "general text 0.0%" in win.model_label.text()  # an untrained tiny model
    cache = json.loads((tmp_path / "models" / model_quality.CACHE_NAME).read_text())
    assert model_quality.cache_key(tiny) in cache  # where personalization's check finds it too
    win.close()
    win.db.close()

    again = _window(qtbot, tmp_path, measure_accuracy=True)  # known now: not measured again
    assert again.measuring is None and "general text 0.0%" in again.model_label.text()
    again.delete_all_data(confirm=False)  # the measurement goes with the data
    again.close()
    again.db.close()

    wiped = _window(qtbot, tmp_path / "other", measure_accuracy=True)
    assert wiped.measuring is not None
    pid = wiped.measuring.processId()
    wiped.delete_all_data(confirm=False)  # stopped at once, not left writing into the deleted folder
    assert wiped.measuring is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "other" / "models" / model_quality.CACHE_NAME).exists()
    wiped.close()
    wiped.db.close()
