import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args, home, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ime_app.cli", *args, "--home", str(home)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def test_parse_and_lookup(tmp_path):
    r = run("parse", "xian", "--json", home=tmp_path)
    assert r.returncode == 0
    segs = [s["segmentation"] for s in json.loads(r.stdout)]
    assert segs[0] == "xian" and "xi'an" in segs
    r = run("lookup", "bjdx", "--json", home=tmp_path)
    assert json.loads(r.stdout)[0]["text"] == "北京大学"


def test_bad_keys_are_a_clear_error(tmp_path):
    r = run("parse", "ni3hao", home=tmp_path)
    assert r.returncode == 2 and "not pinyin" in r.stderr and "Traceback" not in r.stderr


def test_history_roundtrip_through_the_store(tmp_path):
    from engine import store
    db = store.open_store(tmp_path)
    store.record_commit(db, "你好", "ni hao", "nihao")
    db.close()
    r = run("history", "list", "--json", home=tmp_path)
    rows = json.loads(r.stdout)
    assert [row["text"] for row in rows] == ["你好"]
    out = tmp_path / "export.json"
    assert run("history", "export", str(out), home=tmp_path).returncode == 0
    assert run("history", "clear", home=tmp_path).returncode == 0
    assert json.loads(run("history", "list", "--json", home=tmp_path).stdout) == []
    r = run("history", "import", str(out), home=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["commits"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"commits": "nope"}')
    r = run("history", "import", str(bad), home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:")


def test_learned_phrases_can_be_added_edited_and_cleared(tmp_path):
    r = run("phrases", "add", "王小明", "wang", "xiao", "ming", "--count", "2", home=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run("phrases", "edit", "1", "--text", "王晓明", home=tmp_path)
    assert r.returncode == 0 and "王晓明" in r.stdout
    rows = json.loads(run("phrases", "list", "--json", home=tmp_path).stdout)
    assert [(p["text"], p["pinyin"], p["count"]) for p in rows] == [("王晓明", "wang xiao ming", 2)]
    from engine import store
    from engine.ime.pipeline import build_pipeline

    pipe = build_pipeline(model_dir=None, db=store.open_store(tmp_path))  # the engine sees the edit
    assert pipe("wangxiaoming")[0].text == "王晓明"
    r = run("phrases", "add", "王小明", home=tmp_path)
    assert r.returncode != 0 and "pinyin" in r.stderr
    assert "deleted 1" in run("phrases", "clear", home=tmp_path).stdout


NO_NETWORK = """
import atexit, os, resource, runpy, socket, sys
def refuse(*a, **k):
    raise OSError("network access attempted")
for name in ("connect", "connect_ex", "sendto", "sendmsg"):
    setattr(socket.socket, name, refuse)
socket.create_connection = socket.getaddrinfo = refuse
def peak_kib():  # this process's own peak memory (VmHWM: ru_maxrss would count the forked test runner too)
    try:
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if os.environ.get("RSS_FILE"):
    atexit.register(lambda: open(os.environ["RSS_FILE"], "w").write(str(peak_kib())))
sys.argv = [sys.argv[0], *sys.argv[1:]]
runpy.run_module(sys.argv.pop(1), run_name="__main__")
"""


def run_offline(module, *args, stdin=None, env=None):
    """Run ``python -m module args`` with every socket refused."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", NO_NETWORK, module, *args], input=stdin, capture_output=True,
                          env=env, timeout=300)


def test_convert_answers_every_line_even_junk_and_never_touches_the_network(tmp_path):
    lines = [b"ni hao", b"\xff\xfe bad utf-8", b"", b"zhong\x00guo", "中文".encode(), b"x" * 10_000,
             b" ".join([b"ni"] * 200), b"bjdx", b"wo men"]
    stdin = b"\n".join(lines) + b"\n"
    r = run_offline("ime_app.cli", "convert", "--raw", "--top", "3", "--home", str(tmp_path), stdin=stdin)
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()  # 1: some lines could not be converted
    out = r.stdout.decode().split("\n")
    assert len(out) == len(lines) + 1 and out[-1] == ""
    assert out[0].split("\t")[0] == "你好" and out[7].split("\t")[0] == "北京大学"
    assert out[1] == "" and out[5] == ""  # not pinyin: an empty line, as the peer drivers do
    assert len(out[6].split("\t")[0]) == 200  # 200 syllables: converted in pieces
    named = [line.split(":")[0] for line in r.stderr.decode().splitlines()]
    assert named == ["line 2", "line 4", "line 5", "line 6"]  # each line that was not converted, by number


def test_app_self_test_runs_offline(tmp_path):
    r = run_offline("ime_app.main", "--self-test", "--home", str(tmp_path), env={"QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout.decode().strip().splitlines()[-1])["ok"]


def test_the_offline_harness_really_refuses_connections(tmp_path):
    (tmp_path / "phone_home.py").write_text("import urllib.request\nurllib.request.urlopen('http://example.com')\n")
    r = run_offline("phone_home", env={"PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"})
    assert r.returncode != 0 and b"network access attempted" in r.stderr


def test_convert_fuzz_one_answer_per_line_and_bounded_memory(tmp_path):
    import random

    rng = random.Random(5)
    alphabet = [b"a", b"n", b"i", b"h", b"o", b"zh", b"g", b"u", b" ", b"'", b"\r", b"\t", b"\x00", b"\x1b[A",
                b"\xff", b"\xc3", b"\xe4\xb8\xad", b"\\", b"-", b"1"]
    lines = [b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    lines += [b"nihao" * 20_000, b"zhong guo " * 50_000, bytes(rng.randrange(256) for _ in range(100_000)).replace(b"\n", b"")]
    stdin = b"\n".join(lines) + b"\n"
    for mode in ("--raw", "--segmented"):
        rss = tmp_path / f"rss{mode}"
        r = run_offline("ime_app.cli", "convert", mode, "--top", "3", "--timing", "--home", str(tmp_path), stdin=stdin,
                        env={"RSS_FILE": str(rss)})
        assert r.returncode == 1 and b"Traceback" not in r.stderr, r.stderr.decode()[-2000:]
        assert r.stdout.count(b"\n") == len(lines)  # every input line gets exactly one output line
        err = r.stderr.splitlines()
        assert sum(line.isdigit() for line in err) == len(lines)  # and one timing line
        assert all(line.isdigit() or line.startswith(b"line ") for line in err)  # the rest name their line
        # KiB: this convert process stays under 1 GB however long the input (other tests' children do not count)
        assert int(rss.read_text()) < 1_000_000


LONG = " ".join(["ni", "hao"] * 40)  # 80 syllables: more than the model's 64


def test_lines_longer_than_the_model_reads_convert_in_pieces(tmp_path):
    """convert --segmented and eval crashed on them (ONNX Runtime broadcast error; the rest of the input lost),
    convert --raw answered an empty line."""
    stdin = f"{LONG}\nwo men\n"
    for mode, line in (("--segmented", LONG), ("--raw", LONG.replace(" ", ""))):
        r = run("convert", mode, "--top", "2", home=tmp_path, stdin=stdin.replace(LONG, line))
        assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
        out = r.stdout.split("\n")
        assert out[0].split("\t")[0] == "你好" * 40 and out[1].split("\t")[0] == "我们"
    tsv = tmp_path / "long.tsv"
    tsv.write_text(f"{'你好' * 40}\t{LONG}\n我们\two men\n", encoding="utf-8")
    r = run("eval", str(tsv), "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert result["lines"] == 2 and result["sent_acc1"] == 1.0


def test_bad_lines_keep_the_output_aligned_and_are_named_on_stderr(tmp_path):
    lines = [b"12345", b"NIHAO", b"v", "l\u00fce".encode(), b"\xff\xfe", b"ni hao", "lu\u0308e".encode()]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "ime_app.cli", "convert", "--raw", "--top", "2", "--home", str(tmp_path)],
                       input=b"\n".join(lines) + b"\n", capture_output=True, env=env, timeout=120)
    out, err = r.stdout.decode().split("\n"), r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err  # 1: a line could not be converted, yet all are answered
    assert len(out) == len(lines) + 1
    first = [o.split("\t")[0] for o in out[:-1]]
    assert first == ["12345", "你好", "", "略", "", "你好", "略"]  # digits pass through; NIHAO, lüe convert
    assert "line 1: '12345' is digits" in err and "passed through" in err
    assert "line 3: 'v' is not pinyin" in err and "line 5: not UTF-8" in err
    assert not any(f"line {n}:" in err for n in (2, 4, 6, 7))
    r = run("convert", "--segmented", home=tmp_path, stdin="NI HAO\nl\u00fce\n")  # every line converts: status 0
    assert r.returncode == 0 and r.stderr == "" and [o.split("\t")[0] for o in r.stdout.split("\n")] == ["你好", "略", ""]
    r = run("convert", "--segmented", home=tmp_path, stdin="ni hao\nnihao\n")
    assert r.returncode == 1 and r.stderr.startswith("line 2: 'nihao' is not pinyin") and "--raw" in r.stderr


def test_finetune_runs_offline(tmp_path, tiny):
    """Personalization with every socket refused: a tiny model standing in for the factory one, a text file."""
    lines = ["我们一起去吃饭\two men yi qi qu chi fan", "明天下午开会\tming tian xia wu kai hui",
             "谢谢你的帮助\txie xie ni de bang zhu"] * 10
    (tmp_path / "mine.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_offline("ime_app.cli", "finetune", "--tsv", str(tmp_path / "mine.tsv"), "--out", str(tmp_path / "out"),
                    "--base", str(tiny), "--min-lines", "20", "--max-seconds", "60", "--threads", "1", "--json",
                    env={"PINYIN_IME_FACTORY_MODEL": str(tiny), "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    done = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert done["event"] == "done" and "accepted" in done


def test_convert_reads_typos_when_asked(tmp_path):
    r = run("convert", "--raw", "--typos", "--top", "1", home=tmp_path, stdin="zhognguoren\nnihao\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["中国人", "你好"]
    r = run("convert", "--raw", "--top", "1", home=tmp_path, stdin="zhognguoren\n")
    assert r.returncode == 0 and r.stdout != "中国人\n"  # without --typos: zh'o'g'n'guo'ren as typed


# convert --learn FILE: a user's lines typed first (this file's format is score.py's); the factory model gets the
# first two readings wrong (这个公式很长, 张子汉来了), the third line is typed with the wrong pinyin: no candidate spells it
LEARN = "这个公示很长\tzhe ge gong shi hen chang\n张子涵来了\tzhang zi han lai le\n你好\tzai jian\n"
ASKED = ["zhe ge gong shi hen chang", "zhang zi han lai le", "wo jian dao le zhang zi han"]  # the last: never typed
LEARNED = ["这个公示很长", "张子涵来了", "我见到了张子涵"]


def firsts(stdout: str) -> list[str]:
    return [line.split("\t")[0] for line in stdout.split("\n")[:-1]]


def test_convert_learn_types_the_file_first_then_gets_its_readings_right(tmp_path):
    before = run("convert", "--segmented", "--top", "3", home=tmp_path, stdin="\n".join(ASKED) + "\n")
    assert before.returncode == 0 and all(a != b for a, b in zip(firsts(before.stdout), LEARNED))
    (tmp_path / "typed.tsv").write_text(LEARN, encoding="utf-8")
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    tmp.mkdir()
    r = subprocess.run([sys.executable, "-m", "ime_app.cli", "convert", "--segmented", "--top", "3", "--learn",
                        str(tmp_path / "typed.tsv"), "--home", str(home)], input="\n".join(ASKED) + "\n",
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp)))
    assert r.returncode == 0, r.stderr
    assert firsts(r.stdout) == LEARNED
    assert "typed 2 of 3 lines" in r.stderr and "1 skipped" in r.stderr
    assert not home.exists() and not list(tmp.glob("pinyin-ime-learn-*"))  # a fresh store, removed at exit


def test_convert_learn_answers_line_by_line_as_score_py_reads_it(tmp_path):
    """The peers' protocol: one flushed output line per input line (empty when it cannot be converted), --timing
    microseconds on stderr one integer a line, every other message on stderr not a bare number."""
    import select

    (tmp_path / "typed.tsv").write_text(LEARN, encoding="utf-8")
    err = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "ime_app.cli", "convert", "--raw", "--top", "5", "--timing",
                             "--learn", str(tmp_path / "typed.tsv"), "--home", str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    answers = []
    try:
        for line in ["zhangzihanlaile", "ni3hao", "", "zhegegongshihenchang"]:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            assert select.select([proc.stdout], [], [], 90)[0], "no answer to a line"
            answers.append(proc.stdout.readline())
        proc.stdin.close()
        assert proc.wait(30) == 1  # a line could not be converted
    finally:
        proc.kill()
    assert all(a.endswith("\n") for a in answers) and proc.stdout.read() == ""
    assert [a.rstrip("\n").split("\t")[0] for a in answers] == ["张子涵来了", "", "", "这个公示很长"]
    assert all(len(a.split("\t")) <= 5 for a in answers)
    err.seek(0)
    lines = err.read().splitlines()
    assert len([x for x in lines if x.strip().isdigit()]) == 4 and "Traceback" not in "\n".join(lines)
    assert any(x.startswith("line 2: 'ni3hao' is not pinyin") for x in lines)


def test_convert_learn_with_a_bad_file_says_what_to_do(tmp_path):
    r = run("convert", "--segmented", "--learn", str(tmp_path / "missing.tsv"), home=tmp_path, stdin="ni hao\n")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert "no such file" in r.stderr and "汉字<TAB>pinyin" in r.stderr
    (tmp_path / "bad.tsv").write_text("你好\tni hao\n你们好\tni men\n", encoding="utf-8")
    r = run("convert", "--segmented", "--learn", str(tmp_path / "bad.tsv"), home=tmp_path, stdin="ni hao\n")
    assert r.returncode == 2 and "line 2 (你们好)" in r.stderr and "one toneless syllable per character" in r.stderr
    r = run("convert", "--segmented", "--finetune", home=tmp_path, stdin="ni hao\n")
    assert r.returncode == 2 and "give --learn FILE" in r.stderr


def test_convert_learn_finetune_goes_on_without_a_model_it_does_not_accept(tmp_path, tiny):
    """--finetune runs the Personalize command on the typed store with --model as the factory model; three lines
    are too little to train on, so it is not accepted, and stdin is still converted (instant learning)."""
    (tmp_path / "typed.tsv").write_text(LEARN, encoding="utf-8")
    r = run("convert", "--segmented", "--top", "2", "--model", str(tiny), "--learn", str(tmp_path / "typed.tsv"),
            "--finetune", "--max-seconds", "60", home=tmp_path, stdin="ni hao\n")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split("\n")) == 2 and r.stdout.strip()
    assert "personalize: not accepted" in r.stderr and "factory model and instant learning" in r.stderr
