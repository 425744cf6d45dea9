"""``pinyin-ime``: the command-line face of the engine and the trainer (no Qt is imported here).

    pinyin-ime parse KEYS [-n N] [--fuzzy z=zh ...] [--json]   segmentations of a key string
    pinyin-ime lookup KEYS [-n N] [--json]                    what the lexicon proposes for it
    pinyin-ime history list|delete ID|clear|pause|resume|export FILE|import FILE
    pinyin-ime phrases list|add TEXT PINYIN|edit ID [--text T --pinyin P --count N --pin/--unpin]|delete ID|clear
    pinyin-ime convert --segmented|--raw [--top K] [--timing] [--model DIR]   pinyin lines on stdin → 汉字
                       [--learn FILE [--finetune [--max-seconds S]]]   first learn FILE as a user typing it would
    pinyin-ime eval FILE.tsv [--raw] [--top K] [--json] [--model DIR]       accuracy and latency
    pinyin-ime pretrain --out DIR [--corpus DIR] [--size S] [--max-steps N] [--resume] [--device D] …
    pinyin-ime finetune [--home DIR | --tsv FILE] [--base DIR] [--out DIR] [--device D] [--max-seconds S] [--json]
                                                              personalize: fine-tune on your text, install if better
    pinyin-ime models list|revert|factory|use VERSION [--json]   your personal model versions
    pinyin-ime corpus [--corpus DIR]                          build/load the annotated corpus, print stats
    pinyin-ime info                                           where data lives, what is installed

Every subcommand takes ``--home DIR`` (default: ``$PINYIN_IME_HOME`` or the platform's user data dir).
Errors are one line on stderr saying what to do, with exit status 2 (bad input) or 1 (failure). ``convert``
answers every input line and names each line it could not convert on stderr, exiting 1 if there was one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=1))


def cmd_parse(args) -> int:
    from engine.pinyin import FuzzyOptions, parse

    result = parse(args.keys, FuzzyOptions.of(*args.fuzzy))
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        return 2
    segs = list(result.segmentations(args.n))
    if args.json:
        _print_json([{"segmentation": str(s), "cost": s.cost,
                      "tokens": [{"keys": t.keys, "kind": t.kind, "syllables": list(t.syllables)} for t in s.tokens]}
                     for s in segs])
    else:
        for s in segs:
            print(f"{s.cost:6.2f}  {s}")
    return 0


def cmd_lookup(args) -> int:
    from engine.lexicon import default_lexicon
    from engine.pinyin import FuzzyOptions, parse
    from engine.ime.translator import translate

    result = parse(args.keys, FuzzyOptions.of(*args.fuzzy))
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        return 2
    cands = translate(result, default_lexicon(), limit=args.n)
    if args.json:
        _print_json([{"text": c.text, "consumed": c.consumed, "pinyin": " ".join(c.syllables), "source": c.source}
                     for c in cands])
    else:
        for i, c in enumerate(cands, 1):
            rest = args.keys[c.consumed:]
            print(f"{i:3d}. {c.text}" + (f"  (+{rest})" if rest else ""))
    return 0


def _list_delete_clear(args, db, what: str, list_fn, delete_fn, clear_fn, show) -> bool:
    """The actions history and phrases share; returns False when the action is not one of them."""
    if args.action == "list":
        rows = list_fn(db, search=args.search, limit=args.limit)
        if args.json:
            _print_json(rows)
        else:
            for r in rows:
                print(show(r))
    elif args.action == "delete":
        if args.arg is None:
            raise ValueError(f"give the id of the {what} to delete (see `pinyin-ime {args.command} list`)")
        print("deleted" if delete_fn(db, int(args.arg)) else f"no such {what}")
    elif args.action == "clear":
        print(f"deleted {clear_fn(db)} {what} entries")
    else:
        return False
    return True


def _open_store(home):
    from engine import store
    db = store.open_store(home)
    if db.recovered_from is not None:
        print(f"note: your data file was damaged ({db.recovery_reason}); it was kept as {db.recovered_from} and a "
              "fresh one started", file=sys.stderr)
    return db


def cmd_history(args) -> int:
    from engine import store
    db = _open_store(args.home)
    if _list_delete_clear(args, db, "history", store.list_commits, store.delete_commit, store.delete_all_commits,
                          lambda r: f"{r['id']:6d}  {r['text']}  [{r['pinyin']}]"):
        return 0
    if args.action in ("pause", "resume"):
        store.set_recording_paused(db, args.action == "pause")
        print("recording paused" if args.action == "pause" else "recording resumed")
    elif args.arg is None:
        raise ValueError(f"give a file: pinyin-ime history {args.action} FILE.json")
    elif args.action == "export":
        Path(args.arg).write_text(json.dumps(store.export_data(db), ensure_ascii=False), encoding="utf-8")
        print(f"exported to {args.arg}")
    elif args.action == "import":
        path = Path(args.arg)
        if path.stat().st_size > 200 * 1024 * 1024:
            raise ValueError(f"{path} is over 200 MB: split it before importing")
        print(json.dumps(store.import_data(db, json.loads(path.read_text(encoding="utf-8")))))
    return 0


def cmd_phrases(args) -> int:
    from engine import store
    db = _open_store(args.home)

    def clear(db) -> int:
        store.delete_all_pairs(db)  # what was picked after what goes too
        return store.delete_all_phrases(db)

    if _list_delete_clear(args, db, "phrase", store.list_phrases, store.delete_phrase, clear,
                          lambda r: f"{r['id']:6d}  {r['text']}  [{r['pinyin']}]  ×{r['count']}"):
        return 0
    if args.action == "add":  # pinyin-ime phrases add 王小明 "wang xiao ming" [--count 2]
        if args.arg is None or not args.more:
            raise ValueError('give the text and its pinyin: pinyin-ime phrases add 王小明 "wang xiao ming"')
        row = store.learn_phrase(db, args.arg, " ".join(args.more), increment=args.count)
    else:  # edit ID [--text T] [--pinyin P] [--count N]
        if args.arg is None:
            raise ValueError("give the id of the phrase to edit (see `pinyin-ime phrases list`)")
        row = store.update_phrase(db, int(args.arg), text=args.text, pinyin=args.pinyin,
                                  count=args.count if args.count != 1 else None, pinned=args.pin)
    print(f"{row['id']:6d}  {row['text']}  [{row['pinyin']}]  ×{row['count']}" + ("  pinned" if row["pinned"] else ""))
    return 0


def default_model_dir() -> Path:
    from engine.lexicon import SHIPPED_MODEL_DIR

    return SHIPPED_MODEL_DIR


def load_converter(model_dir: Path | None, runtime: str = "auto", int8: bool = True, char_lm: bool = True,
                   beam: int | None = None, beam_search: bool = False):
    from engine.ime.converter import Converter, ConverterSettings

    settings = ConverterSettings(int8=int8)
    if beam:
        settings = replace(settings, beam=beam)
    if beam_search:
        settings = replace(settings, two_pass=None)
    converter = Converter.load(model_dir or default_model_dir(), runtime=runtime, char_lm=char_lm, settings=settings)
    if converter.runtime == "torch":
        import torch

        torch.set_num_threads(1)  # one thread is fastest for single-sentence inference on a laptop CPU
    converter.convert_segmented("ni hao", 1)  # create the runtime's sessions now, not inside the first timing
    from engine.ime.pipeline import settle_memory

    settle_memory()  # as the app and the IBus engine do: the loaded model out of the garbage collector's way
    return converter


MAX_LINE = 5000  # characters: longer input is decoded in 64-syllable pieces, so this only bounds one line's time


class Answer(NamedTuple):
    """What ``convert`` writes for one input line: its candidates (empty when it could not be converted),
    why it could not be (``problem``), or something worth knowing about an answered line (``note``)."""
    candidates: list[str]
    problem: str = ""
    note: str = ""


DIGITS = re.compile(r"[0-9]+")
PINYIN_HINT = "check the spelling: whole syllables or their initials, ü typed as v (lv, nve)"


def shown(text: str) -> str:
    """A line as messages quote it: repr (control characters visible), long ones cut short."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def normalize_keys(line: str) -> str:
    """The pinyin a line means: no surrounding space, lower case (NIHAO is nihao) and ü as the v the parser
    spells it with (lüe is lve), also when ü arrives as u plus a combining diaeresis."""
    return unicodedata.normalize("NFC", line.strip()).lower().replace("ü", "v")


def convert_line(converter, line: str, raw: bool, top: int, typos: bool = False) -> Answer:
    """Candidates for one input line, or why there are none (never raises on bad input). A line of digits
    is passed through unchanged: numbers in a text stay numbers."""
    keys = normalize_keys(line)
    if not keys:
        return Answer([])
    if len(keys) > MAX_LINE:
        return Answer([], f"{len(keys)} characters is more than the {MAX_LINE} one line may have; split it into "
                          "shorter lines")
    if DIGITS.fullmatch(keys):
        return Answer([keys], note=f"{shown(keys)} is digits, not pinyin: passed through unchanged")
    from engine.pinyin import FuzzyOptions, parse, split_syllables

    if raw:
        result = parse(keys.replace(" ", ""), FuzzyOptions(typos=typos))
        if not result.ok:
            hint = "" if "type lower-case" in result.error else f"; {PINYIN_HINT}"
            return Answer([], f"{shown(keys)} is not pinyin: {result.error}{hint}")
        cands = converter.convert_raw(result, top)
    else:
        try:
            cands = converter.convert_syllables(split_syllables(keys), top)
        except ValueError as e:
            return Answer([], f"{shown(keys)} is not pinyin: {e}; give syllables separated by spaces "
                              f"(ni hao), ü typed as v (lv, nve), or use --raw for keys as typed")
    if not cands:
        return Answer([], f"{shown(keys)}: the model has no reading for it; try separating the syllables with '")
    return Answer([c.text for c in cands])


def read_lines(stream):
    """(line number from 1, its text, what is wrong with it) for each line of a byte stream. Lines end at a
    line feed only (a stray carriage return must not make two answers out of one line); a line that is not
    UTF-8 comes with its text None and a problem, so one bad line does not end the input."""
    for n, data in enumerate(stream, 1):
        try:
            yield n, data.rstrip(b"\n").decode("utf-8"), ""
        except UnicodeDecodeError as e:
            yield n, None, (f"not UTF-8 text (byte {data[e.start]:#04x} at position {e.start + 1}); save the "
                            "input as UTF-8")


def cmd_convert(args) -> int:
    """One output line per input line (candidates joined by tabs; empty for a line that cannot be converted),
    so scripts can paste input and output side by side; a message on stderr for each line that could not be
    converted, and exit status 1 if there was any."""
    if args.learn is not None:
        return convert_learned(args)
    if args.finetune or args.max_seconds is not None:
        raise ValueError("--finetune fine-tunes on what --learn FILE typed: give --learn FILE too")
    converter = load_converter(args.model, args.runtime, not args.fp32, not args.no_lm, args.beam, args.beam_search)
    return answer_lines(converter, args)


def answer_lines(converter, args) -> int:
    """``convert``'s loop: every line of stdin answered on stdout (see ``cmd_convert``)."""
    import time

    failed = 0
    for n, line, problem in read_lines(sys.stdin.buffer):
        t0 = time.perf_counter()
        answer = Answer([], problem) if problem else convert_line(converter, line, args.raw, args.top, args.typos)
        elapsed_us = int((time.perf_counter() - t0) * 1e6)
        sys.stdout.write("\t".join(answer.candidates) + "\n")
        sys.stdout.flush()
        failed += bool(answer.problem)
        for message in (answer.problem, answer.note):
            if message:
                sys.stderr.write(f"line {n}: {message}\n")
        if args.timing:
            sys.stderr.write(f"{elapsed_us}\n")
        sys.stderr.flush()
    return 1 if failed else 0


class LearnedConverter:
    """What ``convert_line`` converts with under ``--learn``: the pipeline the app types with (the active model,
    the learned phrases and pairs, the user n-gram LM), reading whole lines; only candidates that convert every
    key, best first."""

    def __init__(self, pipe):
        self.pipe = pipe

    def convert_syllables(self, syllables: list[str], top: int):
        from engine.ime.replay import keys_for

        return self._whole(keys_for(syllables), top)

    def convert_raw(self, result, top: int):
        return self._whole(result.keys, top)

    def _whole(self, keys: str, top: int):
        out, seen = [], set()
        for c in self.pipe(keys):
            if c.consumed == len(keys) and c.text not in seen:
                seen.add(c.text)
                out.append(c)
        return out[:top]


LEARN_FORMAT = "give a UTF-8 file of 汉字<TAB>pinyin lines, syllables separated by spaces (你好<TAB>ni hao)"


def read_learn_file(path: Path):
    """The lines of ``--learn FILE`` (``trainer.user_text.read_lines``: one toneless syllable per 汉字), or a
    ValueError that says what to fix."""
    from trainer.user_text import read_lines as read_tsv_lines

    try:
        return read_tsv_lines(path)
    except FileNotFoundError:
        raise ValueError(f"--learn {path}: no such file; {LEARN_FORMAT}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"--learn {path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                         "save it as UTF-8") from None
    except ValueError as e:  # a line without a tab, or whose pinyin does not spell its 汉字
        raise ValueError(f"--learn {e}") from None
    except OSError as e:
        raise ValueError(f"--learn {path}: cannot be read ({e.strerror or e}); {LEARN_FORMAT}") from None


def convert_learned(args) -> int:
    """``convert --learn FILE [--finetune]``: FILE typed into a fresh temporary store through the app's session
    and pipeline (``engine.ime.replay``), optionally personalized with the trainer as the app's button runs it,
    then stdin converted with what was learned (``answer_lines``: the same output; stdin teaches nothing)."""
    import os
    import shutil
    import tempfile

    from engine import store
    from engine.lexicon import ENV_FACTORY

    if args.max_seconds is not None and not args.finetune:
        raise ValueError("--max-seconds limits the --finetune run: give --finetune too, or leave it out")
    if args.no_lm or args.beam_search:
        raise ValueError("--no-lm and --beam-search cannot be used with --learn (it converts as the app types): "
                         "leave them out")
    lines = read_learn_file(args.learn)
    model = Path(args.model or default_model_dir()).resolve()
    if not model.is_dir():
        raise ValueError(f"--model {model}: no such folder; give a model folder (config.json, model.safetensors)")
    os.environ[ENV_FACTORY] = str(model)  # the store's factory model (and the trainer's) is the one convert uses
    home = Path(tempfile.mkdtemp(prefix="pinyin-ime-learn-"))
    try:
        db = store.open_store(home)
        try:
            return _learn_and_convert(args, lines, home, db)
        finally:
            db.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _learn_and_convert(args, lines, home: Path, db) -> int:
    from engine.ime.pipeline import settle_memory
    from engine.ime.replay import Typist, whole_line
    from engine.personal import loading
    from engine.pinyin import FuzzyOptions

    pipe = loading.build_user_pipeline(db, home, reuse=None, beam=args.beam, int8=not args.fp32, runtime=args.runtime)
    if pipe.model_dir is None:
        raise ValueError(f"{pipe.status}; check --model")
    whole_line(pipe)
    typed = Typist(pipe).type_all(lines)
    skipped = f"; {len(lines) - typed} skipped (no candidate spells them)" if typed < len(lines) else ""
    print(f"learned: typed {typed} of {len(lines)} lines of {args.learn}{skipped}", file=sys.stderr, flush=True)
    if args.finetune and _finetune(home, args.max_seconds):
        loading.reload_active(pipe, db, home)  # as the app swaps in a personalized model
        whole_line(pipe)
    pipe.ranker.forget_context()  # the lines below follow no pick
    pipe.fuzzy = FuzzyOptions(typos=args.typos)  # read keys as convert_line parsed them
    if hasattr(pipe.translator, "sentences"):
        pipe.translator.sentences = max(pipe.translator.sentences, args.top)  # whole-line candidates to list
    settle_memory()
    return answer_lines(LearnedConverter(pipe), args)


def _finetune(home: Path, max_seconds: float | None) -> bool:
    """Personalize the store in ``home`` as the app's button does (``python -m trainer.finetune --home H
    --progress-json``; the factory model is ``$PINYIN_IME_FACTORY_MODEL``), its progress on stderr; True when the
    new model was accepted and installed."""
    import os
    import subprocess
    import tempfile
    import time

    def say(message: str) -> None:
        print(f"personalize: {message}", file=sys.stderr, flush=True)

    cmd = [sys.executable, "-m", "trainer.finetune", "--home", str(home), "--progress-json"]
    if max_seconds is not None:
        cmd += ["--max-seconds", str(max_seconds)]
    done, shown = None, 0.0
    with tempfile.TemporaryFile() as err:  # the trainer's own messages: shown only if it fails
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=dict(os.environ), text=True,
                                encoding="utf-8")
        try:
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                kind = event.get("event")
                if kind == "start":
                    say(f"fine-tuning on {event['lines']} lines ({event['method']}, {event['device']}, at most "
                        f"{event['max_seconds']:.0f} s)")
                elif kind == "progress" and time.monotonic() - shown >= 10:
                    shown = time.monotonic()
                    say(f"step {event['step']}/{event['steps']}, loss {event['loss']:.3f}, about "
                        f"{event['eta_s']:.0f} s to go")
                elif kind == "phase":
                    say(event["phase"])
                elif kind == "done":
                    done = event
            proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: the trainer cancels cleanly on SIGTERM
                proc.terminate()
                proc.wait()
        err.seek(0)
        tail = err.read().decode("utf-8", "replace").strip()[-500:]
    fallback = "converting with the factory model and instant learning"
    if done is None:
        say(f"the run gave no result (exit status {proc.returncode}: {tail or 'no message'}); {fallback}")
        return False
    if not done["accepted"]:
        say(f"not accepted ({done['reason']}); {fallback}")
        return False
    before, after = done.get("before") or {}, done.get("after") or {}
    say(f"accepted in {done['seconds']:.0f} s (held-out lines {before.get('sent_acc', 0):.1%} → "
        f"{after.get('sent_acc', 0):.1%}); converting with it and instant learning")
    return True


def cmd_eval(args) -> int:
    from trainer.evaluate import read_tsv, score

    converter = load_converter(args.model, args.runtime, not args.fp32, not args.no_lm, args.beam, args.beam_search)
    pairs = read_tsv(args.file)[: args.limit or None]
    result = score(pairs, lambda keys: convert_line(converter, keys, args.raw, args.top, args.typos).candidates, raw=args.raw,
                   top=args.top)
    result["file"] = str(args.file)
    result["model"] = str(args.model or default_model_dir())
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['lines']} lines ({result['mode']}): sentence top-1 {result['sent_acc1']:.2%}, "
              f"top-{args.top} {result[f'sent_acc{args.top}']:.2%}, char {result['char_acc']:.2%} "
              f"(CER {1 - result['char_acc']:.2%}), BLEU {100 * result['bleu']:.1f}; "
              f"p50 {result['lat_p50_ms']:.1f} ms, p95 {result['lat_p95_ms']:.1f} ms")
    return 0


def cmd_models(args) -> int:
    from engine import store
    from engine.personal import runs, versions

    home = store.home_dir(args.home)
    db = store.open_store(home)
    try:
        if args.action == "revert":
            print(f"now using the {versions.revert_to_previous(db, home).label}")
        elif args.action == "factory":
            print(f"now using the {versions.use_factory(db).label}")
        elif args.action == "use":
            if not args.version:
                raise ValueError("give the version to use, e.g. pinyin-ime models use v2 (see pinyin-ime models list)")
            print(f"now using the {versions.use_version(db, home, args.version).label}")
        active = versions.resolve_active(db, home)
        if active.note:
            print(active.note, file=sys.stderr)
        if args.action != "list":
            return 0
        rows = versions.list_versions(db, home)
        if args.json:
            _print_json({"versions": rows, "new_text": runs.new_text_since_last_run(db)})
            return 0
        for r in rows:
            m = r["metrics"] or {}
            got = (f"  held-out {m['before']['sent_acc']:.1%} → {m['after']['sent_acc']:.1%}, general "
                   f"{m['general_after']['sent_acc']:.1%}, {m.get('lines', '?')} lines" if m.get("after") else "")
            print(f"{'*' if r['active'] else ' '} {r['version']:8s} {r['label']}{got}")
        new = runs.new_text_since_last_run(db)
        print(f"new since the last personalization: {new['commits']} commits, {new['chars']} characters")
        return 0
    finally:
        db.close()


def cmd_corpus(args) -> int:
    from trainer import corpus

    argv = (["--corpus", str(args.corpus)] if args.corpus else []) + (["--max-lines", str(args.max_lines)] if args.max_lines else [])
    return corpus.main(argv)


def cmd_info(args) -> int:
    import json as _json

    from engine import store
    from engine.lexicon import ASSETS_DIR

    home = store.home_dir(args.home)
    manifest = ASSETS_DIR / "lexicon.json"
    _print_json({
        "home": str(home),
        "store": str(store.store_path(home)),
        "assets": str(ASSETS_DIR),
        "lexicon": _json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else None,
    })
    return 0


def cmd_ibus(args) -> int:
    from ime_app.ibus import install
    from ime_app.ibus.gi_loader import available

    if args.action == "install":
        for path in install.install(system=args.system, home=args.home):
            print(f"wrote {path}")
        print(install.next_steps(args.system))
        missing = available()
        if missing:
            print(f"warning: the engine cannot run yet: {missing}", file=sys.stderr)
        return 0
    if args.action == "uninstall":
        for path in install.uninstall():
            print(f"removed {path}")
        return 0
    missing = available()  # status
    for where in (install.user_dir() / install.FILE_NAME, install.SYSTEM_DIR / install.FILE_NAME):
        print(f"{where}: {'installed' if where.exists() else 'not installed'}")
    print(f"engine command: {' '.join(install.engine_command(args.home))}")
    print("IBus binding: " + (missing or "found"))
    return 0 if not missing else 1


CONVERT_HELP = f"""Convert pinyin read from stdin, one line at a time.

Each input line gets exactly one output line: its candidates, best first, separated by tabs, so input and
output can be pasted side by side. Upper-case letters are read as lower-case (NIHAO = nihao) and ü as v
(lüe = lve). A line of digits only (12345) is passed through unchanged, with a note on stderr. Lines of
any number of syllables convert (what is longer than the model reads is converted in pieces), up to
{MAX_LINE} characters. A line that cannot be converted (not pinyin, not UTF-8, too long) gets an empty
output line and a message on stderr: "line N: what is wrong; what to do".

With --learn FILE (汉字<TAB>pinyin lines, syllables separated by spaces: the format score.py reads), FILE is
first typed as a user would, into a fresh temporary store that is removed at exit (your own data is not
touched): its keys go into the app's session and the candidates that spell each line are picked, so instant
learning learns from the commits; a line no candidate spells is skipped (counted on stderr). --finetune then
personalizes the model on those lines, as the app's Personalize button does (--max-seconds, default 120;
progress on stderr); a run that is not accepted leaves the factory model. Then stdin is converted with what
was learned; the lines converted are not learned. The model fine-tuned from is the one convert uses (--model).

Exit status: 0 when every line was converted, 1 when any line could not be (every line is still answered),
2 for bad options or a --learn FILE that cannot be read."""


def build_parser() -> argparse.ArgumentParser:
    from engine.pinyin import FUZZY_NAMES

    ap = argparse.ArgumentParser(prog="pinyin-ime", description="Pinyin IME engine and trainer.")
    sub = ap.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=None, help="user data folder (default: $PINYIN_IME_HOME or the platform's)")

    for name, n, func, what in (("parse", 8, cmd_parse, "show the segmentations of a key string"),
                                ("lookup", 20, cmd_lookup, "candidates the lexicon proposes for a key string")):
        p = sub.add_parser(name, parents=[common], help=what)
        p.add_argument("keys")
        p.add_argument("-n", type=int, default=n)
        p.add_argument("--fuzzy", nargs="*", default=[], choices=FUZZY_NAMES, metavar="PAIR")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    for name, actions, func in [("history", ["list", "delete", "clear", "pause", "resume", "export", "import"], cmd_history),
                                ("phrases", ["list", "add", "edit", "delete", "clear"], cmd_phrases)]:
        p = sub.add_parser(name, parents=[common], help=f"see and manage your {name}")
        p.add_argument("action", choices=actions)
        p.add_argument("arg", nargs="?")
        if name == "phrases":
            p.add_argument("more", nargs="*", help="add: the pinyin, syllables separated by spaces")
            p.add_argument("--text", default=None, help="edit: new text")
            p.add_argument("--pinyin", default=None, help="edit: new pinyin")
            p.add_argument("--count", type=int, default=1, help="add/edit: how often it counts as picked")
            pin = p.add_mutually_exclusive_group()
            pin.add_argument("--pin", dest="pin", action="store_const", const=True, default=None,
                             help="edit: always show it first for its pinyin")
            pin.add_argument("--unpin", dest="pin", action="store_const", const=False)
        p.add_argument("--search", default=None)
        p.add_argument("--limit", type=int, default=50)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    decoding = argparse.ArgumentParser(add_help=False)  # how convert and eval decode
    decoding.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    decoding.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"],
                          help="decode with ONNX Runtime (auto: when installed) or PyTorch")
    decoding.add_argument("--fp32", action="store_true",
                          help="full-precision weights (default: int8, as the app types; same test accuracy, faster)")
    decoding.add_argument("--no-lm", action="store_true",
                          help="the model alone, without the corpus character LM it is shipped with")
    decoding.add_argument("--beam-search", action="store_true",
                          help="the decoder's beam search (as typing runs), not the two passes of a model with an "
                               "emission head")
    decoding.add_argument("--beam", type=int, default=None, help="beam width (default: the converter's)")
    decoding.add_argument("--typos", action="store_true",
                          help="with --raw: read one-slip typos (zhognguo, nihoa, shenem) as the syllable meant, "
                               "ranked after every exact reading (the app does this by default)")

    p = sub.add_parser("convert", parents=[common, decoding], help="convert pinyin lines on stdin (peer-driver interface)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=CONVERT_HELP)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--segmented", action="store_true", help="syllables separated by spaces")
    mode.add_argument("--raw", action="store_true", help="keys as typed, no spaces")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--timing", action="store_true", help="microseconds per line on stderr")
    p.add_argument("--learn", type=Path, default=None, metavar="FILE",
                   help="first type FILE's 汉字<TAB>pinyin lines as a user would, into a fresh temporary store "
                        "(instant learning), then convert stdin with what was learned")
    p.add_argument("--finetune", action="store_true",
                   help="with --learn: then personalize the model on those lines, as the app's button does")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="with --finetune: the personalization run's time limit (default: the trainer's, 120)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("eval", parents=[common, decoding], help="sentence/character accuracy on a 汉字<TAB>pinyin file")
    p.add_argument("file", type=Path)
    p.add_argument("--raw", action="store_true")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    sub.add_parser("pretrain", help="pretrain a model (options: pinyin-ime pretrain --help)", add_help=False)
    sub.add_parser("jobs", help="background training jobs: list|start OPTIONS|pause|resume|cancel ID",
                   add_help=False)
    sub.add_parser("finetune", help="personalize: fine-tune the model on your own text (options: pinyin-ime "
                   "finetune --help)", add_help=False)

    p = sub.add_parser("models", parents=[common], help="your personal models: list, revert, factory, use VERSION")
    p.add_argument("action", choices=["list", "revert", "factory", "use"])
    p.add_argument("version", nargs="?", help="use: the version (v2, …, or factory)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("corpus", parents=[common], help="build or load the annotated training corpus; print stats")
    p.add_argument("--corpus", type=Path, default=None, help="folder of .txt/.txt.gz/.txt.xz (default: ../shared/data/corpus)")
    p.add_argument("--max-lines", type=int, default=0)
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("ibus", parents=[common], help="the system input method: install|uninstall|status|run")
    p.add_argument("action", choices=["install", "uninstall", "status"],
                   help="install: register the IBus engine (per user; --system as root); run: the engine process")
    p.add_argument("--system", action="store_true", help="install for every user (needs root)")
    p.set_defaults(func=cmd_ibus)

    p = sub.add_parser("info", parents=[common], help="where your data lives and what is installed")
    p.set_defaults(func=cmd_info)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pretrain"]:  # the trainer owns its options (and its --help)
        from trainer import pretrain

        return pretrain.main(argv[1:])
    if argv[:1] == ["finetune"]:  # the trainer owns its options
        from trainer import finetune

        return finetune.main(argv[1:])
    if argv[:1] == ["jobs"]:  # the job registry owns its options
        from trainer import jobs

        return _friendly(lambda: jobs.main(argv[1:]))
    if argv[:2] == ["ibus", "run"]:  # the engine process owns its options
        from ime_app.ibus.gi_loader import IbusUnavailable

        try:
            from ime_app.ibus import engine
        except IbusUnavailable as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return engine.run(argv[2:])
    args = build_parser().parse_args(argv)
    return _friendly(lambda: args.func(args))


def _friendly(run) -> int:
    """Errors the user can fix become one line saying what to do, not a traceback."""
    try:
        return run()
    except (ValueError, FileNotFoundError) as e:  # StoreError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.strerror or e} ({getattr(e, 'filename', '') or ''}); check the path and free disk space",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
