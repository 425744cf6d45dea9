"""The app's Personalize button: a real fine-tuning process on a real store, the verdict, the hot swap, the
badge, revert and factory — with a tiny model as the factory model so it runs in seconds."""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from engine import user_models
from ime_app.window import MainWindow


def test_personalize_button_swaps_in_the_new_model(qtbot, tmp_path, tiny, typed_home, monkeypatch):
    monkeypatch.setattr(user_models, "FACTORY_DIR", tiny)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    typed_home(tmp_path)  # 121 commits
    win = MainWindow(home=tmp_path)
    win.personalize_env = {user_models.ENV_FACTORY: str(tiny), "OMP_NUM_THREADS": "1"}
    win.personalize_args = ["--lr", "1e-2", "--max-epochs", "12", "--replay-ratio", "0.2", "--min-lines", "50",
                            "--max-seconds", "100"]
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    assert win.model_status.startswith("factory model") and "121 new" in win.personalize_action.text()
    with qtbot.waitSignal(win.model_changed, timeout=150_000) as changed:
        win.personalize_action.trigger()  # the button
        dialog = win.personalize_dialog
        QTest.keyClicks(win.editor, "nihao")  # typing goes on meanwhile
        QTest.keyClick(win.editor, Qt.Key_Space)
        assert win.wait_idle(30) and win.editor.toPlainText()
    done = dialog.outcome
    assert done["accepted"], done
    assert done["after"]["char_acc"] > done["before"]["char_acc"]  # a tiny model: characters, not yet sentences
    assert "Accepted" in dialog.verdict.text() and "→" in dialog.verdict.text()
    assert any(e.get("event") == "progress" for e in dialog.events)
    assert changed.args[0].startswith("personal model v1")
    assert "personal model v1" in win.model_label.text() and "your text" in win.model_label.text()
    assert Path(win.composer.pipeline.model_dir).name == "v1"
    assert win.personalize_action.text().startswith("Personalize model")
    dialog.close()

    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.revert_model()  # one click back: the factory model (v1 was the only personal version)
    assert win.model_status.startswith("factory model")
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        user_models.use_version(win.db, tmp_path, "v1")
        win.reload_model()
    assert win.model_status.startswith("personal model v1")
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.use_factory_model()
    assert win.model_status.startswith("factory model")
    win.close()
    win.db.close()


def test_a_failed_run_says_why_and_keeps_the_model(qtbot, tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(user_models, "FACTORY_DIR", tiny)
    win = MainWindow(home=tmp_path)  # nothing typed yet: too little text to learn from
    win.personalize_env = {user_models.ENV_FACTORY: str(tiny)}
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    dialog = win.personalize()
    with qtbot.waitSignal(dialog.finished_run, timeout=60_000) as result:
        pass
    assert not result.args[0]["accepted"] and "Not accepted" in dialog.verdict.text()
    assert win.model_status.startswith("factory model")
    dialog.close()
    win.close()
    win.db.close()
