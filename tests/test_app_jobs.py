"""The app starts a pretraining job and sees its progress arrive while keys are still being handled."""

import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from engine import store
from ime_app.pretrain_dialog import corpus_stats, estimate_text
from ime_app.window import MainWindow

DATA = Path(__file__).resolve().parent / "data"


def test_a_job_trains_while_keys_are_handled(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "mine.txt").write_text((DATA / "tiny_corpus.txt").read_text(encoding="utf-8"), encoding="utf-8")
    win = MainWindow(home=tmp_path / "home")
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    dialog = win.open_pretrain()
    dialog.corpus.setText(str(corpus))
    dialog.size_box.setCurrentIndex(dialog.size_box.findData("tiny"))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.steps.setValue(400)
    dialog.extra_args = ["--tokens", "256", "--log-every", "2", "--threads", "1", "--eval-every", "100000",
                         "--cache", str(tmp_path / "cache")]
    dialog.start_estimate()
    qtbot.waitUntil(lambda: "characters of 汉字" in dialog.estimate.text(), timeout=20_000)
    assert "400 steps" in dialog.estimate.text() and "h" in dialog.estimate.text()
    id = dialog.start_job()
    assert id is not None and store.get_job(win.db, id)["state"] == "running"
    steps_seen, typed = set(), ""
    deadline = time.time() + 120
    while len(steps_seen) < 3:  # progress arrives, step after step, while we type
        assert time.time() < deadline, (Path(store.get_job(win.db, id)["out_dir"]) / "log.txt").read_text()[-2000:]
        QTest.keyClicks(win.editor, "nihao")
        QTest.keyClick(win.editor, Qt.Key_Space)
        assert win.wait_idle(10)
        typed += "你好"
        assert win.editor.toPlainText() == typed  # the keys were handled meanwhile
        dialog.refresh()
        step = dialog.progress[id].get("step")
        if step:
            steps_seen.add(step)
    assert dialog.table.item(0, 1).text() == "running" and dialog.plot.loss
    dialog.table.selectRow(0)
    dialog.pause()
    qtbot.waitUntil(lambda: store.get_job(win.db, id)["state"] == "paused", timeout=60_000)
    dialog.refresh()
    assert dialog.resume_button.isEnabled() and not dialog.pause_button.isEnabled()
    dialog.cancel()
    assert store.get_job(win.db, id)["state"] == "cancelled"
    dialog.close()
    win.close()
    win.db.close()


def test_corpus_estimate(tmp_path):
    (tmp_path / "a.txt").write_text("你好世界\n今天天气很好。\n", encoding="utf-8")
    stats = corpus_stats(tmp_path)
    assert stats == {"files": 1, "bytes": (tmp_path / "a.txt").stat().st_size, "chars": 10}
    text = estimate_text({"files": 3, "bytes": 0, "chars": 50_000_000}, "small", "cpu", 20_000)
    assert "50.0 M characters" in text and "82 M characters" in text and "7.6 h" in text


def test_delete_all_my_data_with_the_pretrain_dialog_open(qtbot, tmp_path):
    """The dialog polled the closed store every second (sqlite3.ProgrammingError); now it follows the fresh one,
    and a job's process still running is stopped before its folder and record go."""
    import subprocess
    import sys

    home = tmp_path / "home"
    win = MainWindow(home=home)
    qtbot.addWidget(win)
    win.show()
    assert win.wait_idle(60)
    out = home / "jobs" / "1"
    out.mkdir(parents=True)
    # stands in for a training job's process (trainer.jobs knows a runner by "jobs run" on its command line)
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "jobs", "run"],
                              start_new_session=True)
    try:
        id = store.add_job(win.db, "pretrain", ["--corpus", str(tmp_path)], out)
        store.update_job(win.db, id, state="running", pid=runner.pid)
        dialog = win.open_pretrain()
        qtbot.waitExposed(dialog)
        assert win.open_pretrain() is dialog  # one dialog, not a second one polling too
        assert dialog.table.rowCount() == 1 and dialog.table.item(0, 1).text() == "running"
        assert dialog.timer.isActive()
        win.delete_all_data(confirm=False)
        assert runner.wait(timeout=10) is not None  # stopped, not left writing into the deleted folder
        assert not (home / "jobs").exists()
        qtbot.wait(2300)  # the dialog's timer fires twice: against the fresh store, without an exception
        assert dialog.db is win.db and dialog.timer.isActive() and dialog.isVisible()
        assert dialog.table.rowCount() == 0 and not dialog.cancel_button.isEnabled()
        dialog.keep.setChecked(not dialog.keep.isChecked())  # its settings go to the fresh store too
        assert store.get_setting(win.db, "jobs_keep_running_after_close", True) == dialog.keep.isChecked()
        dialog.close()
        assert not dialog.timer.isActive()
    finally:
        runner.kill()
        runner.wait()
    win.close()
    win.db.close()
