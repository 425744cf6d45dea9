"""The app's Personalize button: a real fine-tuning process on a real store, the verdict, the hot swap, the
badge, revert and factory — with a tiny model as the factory model so it runs in seconds."""

import shutil
from pathlib import Path

from PySide6.QtCore import QProcess, Qt
from PySide6.QtTest import QTest

from engine import store
from engine.lexicon import ENV_FACTORY
from engine.personal import files, versions
from ime_app.personalize_dialog import user_text
from ime_app.window import MainWindow
from trainer.user_text import lines_from_store


def test_personalize_button_swaps_in_the_new_model(qtbot, tmp_path, tiny, typed_home, monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    typed_home(tmp_path)  # 121 commits
    win = MainWindow(home=tmp_path)
    win.personalize_env = {ENV_FACTORY: str(tiny), "OMP_NUM_THREADS": "1"}
    win.personalize_args = ["--lr", "1e-2", "--max-epochs", "12", "--replay-ratio", "0.2", "--min-lines", "50",
                            "--max-seconds", "100"]
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    # 121 commits, 122 lines as the trainer reads them ("好的，明天见！" is two): the button, the dialog and the
    # trainer count the same
    assert win.model_status.startswith("factory model") and "(122 new lines)" in win.personalize_action.text()
    assert not win.revert_action.isEnabled() and not win.factory_action.isEnabled()  # nothing to go back from
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
    start = next(e for e in dialog.events if e.get("event") == "start")
    assert dialog.text["lines"] == 122 and "122 lines" in dialog.amount.text()
    assert start["lines"] in (122, 123)  # the trainer's count: the same, with the 你好 typed meanwhile or not
    assert changed.args[0].startswith("personal model v1")
    assert "personal model v1" in win.model_label.text() and "your text" in win.model_label.text()
    assert Path(win.composer.pipeline.model_dir).name == "v1"
    # nothing new since this run, or the 你好 typed meanwhile when the trainer read the history before it
    assert win.personalize_action.text() == ("Personalize model" if start["lines"] == 123 else
                                             "Personalize model (1 new line)")
    dialog.close()

    assert win.revert_action.isEnabled() and win.factory_action.isEnabled()
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.revert_action.trigger()  # one click back: the factory model (v1 was the only personal version)
    assert win.model_status.startswith("factory model")
    assert "now using the factory model" in win.statusBar().currentMessage()
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        versions.use_version(win.db, tmp_path, "v1")
        win.reload_model()
    assert win.model_status.startswith("personal model v1")
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.use_factory_model()
    assert win.model_status.startswith("factory model")
    win.close()
    win.db.close()


def test_a_failed_run_says_why_and_keeps_the_model(qtbot, tmp_path, tiny, typed_home, monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    typed_home(tmp_path)  # enough text: the run starts, and fails (no model to start from)
    win = MainWindow(home=tmp_path)
    win.personalize_env = {ENV_FACTORY: str(tiny)}
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    changed = []
    win.model_changed.connect(changed.append)
    dialog = win.personalize(base=tmp_path / "no-such-model")
    with qtbot.waitSignal(dialog.finished_run, timeout=60_000) as result:
        pass
    assert not result.args[0]["accepted"] and "Not accepted" in dialog.verdict.text()
    assert "no-such-model" in dialog.verdict.text()  # why
    assert dialog.bar.isHidden() and "no change" in dialog.phase.text()  # it never trained: no full bar
    assert win.model_status.startswith("factory model") and not changed
    dialog.close()
    win.close()
    win.db.close()


def test_too_little_text_is_said_up_front_and_nothing_runs(qtbot, tmp_path, tiny, monkeypatch):
    """It started a run anyway, showed a full progress bar and "no change"; and the button counted commits while
    the trainer counts lines."""
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    db = store.open_store(tmp_path)
    for i in range(30):
        store.record_commit(db, "我们一起去吃饭", "wo men yi qi qu chi fan", "women", now=1000.0 + i)
    store.record_commit(db, "好的，明天见！", "", "", now=2000.0)  # two lines of 汉字
    store.record_commit(db, "ok", "", "", now=2001.0)  # letters: no line
    store.record_commit(db, "。", "", "", now=2002.0)  # punctuation: no line (33 commits, 32 lines)
    db.close()
    win = MainWindow(home=tmp_path)
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    assert win.personalize_action.text() == "Personalize model (32 new lines)"
    assert "32 lines" in win.personalize_action.toolTip() and "at least 100 lines" in win.personalize_action.toolTip()
    assert len(lines_from_store(win.db)[0]) == 32  # what the trainer would read
    with qtbot.waitSignal(win.personalize_action.triggered, timeout=1000):
        win.personalize_action.trigger()
    dialog = win.personalize_dialog
    qtbot.waitExposed(dialog)
    assert dialog.text == user_text(win.db) and dialog.text["lines"] == 32 and not dialog.text["enough"]
    assert "32 lines" in dialog.amount.text() and "215 characters" in dialog.amount.text()
    assert "at least 100 lines" in dialog.amount.text()
    assert dialog.process.state() == QProcess.NotRunning and dialog.process.processId() == 0  # nothing started
    assert dialog.bar.isHidden() and "too little" in dialog.phase.text()
    assert "32 lines, at least 100 needed" in dialog.verdict.text() and "68 more" in dialog.verdict.text()
    assert dialog.outcome["too_little"] and not dialog.outcome["accepted"]
    assert dialog.close_button.isEnabled() and not dialog.cancel_button.isEnabled()
    dialog.close()
    assert win.personalize() is not dialog  # the next click counts again
    win.personalize_dialog.close()
    assert win.model_status.startswith("factory model")
    win.close()
    win.db.close()


def _install_personal(win, tiny, version: str) -> None:
    """``tiny`` installed as personal model ``version`` (what an accepted run leaves), made active."""
    staged = files.new_staging_dir(win.home)
    shutil.rmtree(staged)
    shutil.copytree(tiny, staged)
    files.write_meta(staged, {"kind": "personal", "version": version})
    versions.install(win.db, win.home, staged, version, {})


def test_revert_and_factory_only_when_they_can_act_and_they_say_what_they_did(qtbot, tmp_path, tiny, monkeypatch):
    monkeypatch.setenv(ENV_FACTORY, str(tiny))
    win = MainWindow(home=tmp_path)
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    assert not win.revert_action.isEnabled() and not win.factory_action.isEnabled()  # on the factory model
    assert "factory model" in win.revert_action.toolTip()
    win.revert_action.trigger()
    win.factory_action.trigger()
    assert win.statusBar().currentMessage() == ""  # disabled: they do nothing, and claim nothing

    _install_personal(win, tiny, "v1")
    _install_personal(win, tiny, "v2")
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.reload_model()
    assert win.model_status.startswith("personal model v2")
    assert win.revert_action.isEnabled() and win.factory_action.isEnabled()
    assert "back to personal model v1" in win.revert_action.toolTip()
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.revert_action.trigger()
    assert win.model_status.startswith("personal model v1")
    assert win.statusBar().currentMessage() == "Reverted from the personal model v2: now using the personal model v1."
    assert win.revert_action.isEnabled() and "back to the factory model" in win.revert_action.toolTip()
    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        win.factory_action.trigger()
    assert win.model_status.startswith("factory model")
    assert "Now using the factory model instead of the personal model v1" in win.statusBar().currentMessage()
    assert not win.revert_action.isEnabled() and not win.factory_action.isEnabled()

    with qtbot.waitSignal(win.model_changed, timeout=30_000):
        versions.use_version(win.db, tmp_path, "v2")
        win.reload_model()
    assert win.revert_action.isEnabled()
    with qtbot.waitSignal(win.model_changed, timeout=30_000):  # its files go with all the data: factory again
        win.delete_all_data(confirm=False)
    assert win.model_status.startswith("factory model") and not win.revert_action.isEnabled()
    win.close()
    win.db.close()
