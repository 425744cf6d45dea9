"""Instant learning through the real session, pipeline and a real SQLite store file."""

import pytest

from engine import store
from engine.lexicon import default_lexicon
from engine.ime.pipeline import build_pipeline
from engine.ime.session import Session


@pytest.fixture
def db(tmp_path):
    return store.open_store(tmp_path)


def new_session(db):
    pipe = build_pipeline(model_dir=None, db=db)  # lexicon translator + the user's learning
    return Session(pipe, on_commit=pipe.commit), pipe


def texts(s):
    return [c.text for c in s.all_candidates]


def type_keys(s, keys):
    for k in keys:
        s.press(k)


def pick(s, text):
    idx = texts(s).index(text)
    s.highlight = idx
    s.press("space")


def test_a_correction_goes_first_for_the_same_keys_at_once(db):
    s, _ = new_session(db)
    type_keys(s, "shiyan")
    before = texts(s)
    target = before[4]  # something the lexicon ranks fifth
    pick(s, target)
    assert s.committed == [target]
    assert store.count_commits(db) == 1 and store.get_phrase(db, target, "shi yan")["count"] == 1
    type_keys(s, "shiyan")
    assert texts(s)[0] == target  # the same keys: one correction is enough
    pick(s, before[0])  # a slip undoes itself: the next pick for these keys takes its place
    type_keys(s, "shiyan")
    assert texts(s)[:2] == [before[0], target]


def test_typed_with_other_keys_a_pick_rises_to_second_then_first_once_confirmed(db):
    s, _ = new_session(db)
    type_keys(s, "shiyan")
    target = texts(s)[4]
    pick(s, target)
    type_keys(s, "sy")  # the abbreviation: one pick is not trusted to override
    assert texts(s)[1] == target and texts(s)[0] != target
    s.press("escape")
    type_keys(s, "shi'yan")
    pick(s, target)
    type_keys(s, "sy")
    assert texts(s)[0] == target


def test_a_correction_of_a_sentence_built_from_parts_holds_for_its_keys(db, tmp_path):
    pipe = build_pipeline(db=db)  # the shipped model: 日本才 is its sentence for ribencai
    s = Session(pipe, on_commit=pipe.commit)
    type_keys(s, "ribencai")
    assert texts(s)[0] != "日本菜"
    pick(s, "日本")
    pick(s, "菜")
    assert s.committed == ["日本菜"]
    type_keys(s, "ribencai")
    assert texts(s)[0] == "日本菜"
    s.press("escape")
    s2, _ = new_session(store.open_store(tmp_path))  # after a restart, from the store
    type_keys(s2, "ribencai")
    assert texts(s2)[0] == "日本菜"


def test_picking_the_first_candidate_once_keeps_it_first(db):
    s, _ = new_session(db)
    type_keys(s, "shiyan")
    first = texts(s)[0]
    pick(s, first)  # a phrase picked once ranks "second" — but never below what was already first
    type_keys(s, "shiyan")
    assert texts(s)[0] == first


def test_learned_phrase_built_from_partial_picks_is_proposed(db):
    s, _ = new_session(db)
    for _ in range(2):
        type_keys(s, "wangxiaoming")
        for ch in "王小明":
            first_syllable_chars = [c for c in s.all_candidates if c.source == "char" or len(c.text) == 1]
            pick(s, next(c.text for c in first_syllable_chars if c.text == ch))
    assert s.committed == ["王小明", "王小明"]
    type_keys(s, "wangxiaoming")
    assert texts(s)[0] == "王小明"
    type_keys(s, "'")  # still composing; abbreviations find it too
    s.press("escape")
    type_keys(s, "wxm")
    assert "王小明" in texts(s)[:2]


def test_junk_is_not_learned(db):
    s, _ = new_session(db)
    type_keys(s, "nihao")
    s.press("enter")  # raw letters: history only
    assert store.count_commits(db) == 1 and store.list_phrases(db) == []
    type_keys(s, "hahahaha")
    for _ in range(4):
        pick(s, "哈")
    assert s.committed[-1] == "哈哈哈哈"
    learned = {p["text"] for p in store.list_phrases(db)}
    assert "哈" in learned and "哈哈哈哈" not in learned


def test_paused_recording_keeps_and_learns_nothing(db):
    store.set_recording_paused(db, True)
    s, _ = new_session(db)
    type_keys(s, "shiyan")
    target = texts(s)[3]
    pick(s, target)
    assert s.committed == [target]
    assert store.count_commits(db) == 0 and store.list_phrases(db) == []
    type_keys(s, "shiyan")
    assert texts(s)[3] == target  # ranking unchanged


def test_pairing_with_the_previous_word_confirms_a_phrase(db):
    s, pipe = new_session(db)
    type_keys(s, "women")
    pick(s, "我们")
    type_keys(s, "shiyan")
    target = texts(s)[4]
    pick(s, target)
    type_keys(s, "women")
    pick(s, "我们")
    type_keys(s, "sy")  # other keys than the pick's: the pairing, not the correction, puts it first
    assert texts(s)[0] == target  # picked once, but right after 我们 as before
    assert {"prev": "我们", "text": target} in [{"prev": p["prev"], "text": p["text"]} for p in store.list_pairs(db)]
    s.press("escape")
    pipe.ranker.forget_context()
    type_keys(s, "sy")
    assert texts(s)[0] != target  # once again, without the context: second place


def test_learning_survives_a_restart_and_deleting_forgets(db, tmp_path):
    s, _ = new_session(db)
    for _ in range(2):
        type_keys(s, "shiyan")
        target = texts(s)[4] if _ == 0 else target
        pick(s, target)
    db2 = store.open_store(tmp_path)  # another process opening the same file
    s2, pipe2 = new_session(db2)
    type_keys(s2, "shiyan")
    assert texts(s2)[0] == target
    phrase = store.get_phrase(db2, target, "shi yan")
    store.delete_phrase(db2, phrase["id"])
    pipe2.ranker.reload()
    s2.press("escape")
    type_keys(s2, "shiyan")
    assert texts(s2)[0] != target


def test_learned_sentences_from_the_model_have_their_real_pinyin(tmp_path):
    db = store.open_store(tmp_path)
    pipe = build_pipeline(db=db)
    s = Session(pipe, on_commit=pipe.commit)
    type_keys(s, "zgrm")  # abbreviated: the learned pinyin is the full reading, not the initials
    first = s.all_candidates[0]
    s.press("space")
    assert s.committed == [first.text]
    rows = store.list_phrases(db)
    assert rows and all(len(r["pinyin"].split()) == len(r["text"]) for r in rows)
    lex = default_lexicon()
    assert all(lex.can_spell(r["text"], r["pinyin"].split()) for r in rows)


def test_a_pinned_phrase_stays_first_whatever_is_picked(db):
    s, pipe = new_session(db)
    type_keys(s, "shiyan")
    pinned, other = texts(s)[5], texts(s)[3]
    pick(s, pinned)
    store.update_phrase(db, store.get_phrase(db, pinned, "shi yan")["id"], pinned=True)
    pipe.ranker.reload()
    for _ in range(3):  # the user keeps picking something else: the pin holds
        type_keys(s, "shiyan")
        assert texts(s)[0] == pinned
        pick(s, other)
    type_keys(s, "shiyan")
    assert texts(s)[:2] == [pinned, other]


def test_a_commit_its_phrases_and_pairs_are_one_transaction(db, monkeypatch):
    """Learning from one commit writes the history row, the phrases (each pick and the whole) and the pairing
    with the previous word in one transaction: one BEGIN/COMMIT on the typing thread, and a failing write
    keeps none of them (nor the in-memory learning)."""
    import sqlite3

    s, pipe = new_session(db)
    type_keys(s, "women")
    pick(s, "我们")
    statements = []
    db.conn.set_trace_callback(statements.append)
    type_keys(s, "shiyan")
    pick(s, texts(s)[1])  # a second commit: a phrase, and a pair with 我们
    db.conn.set_trace_callback(None)
    begins = [q for q in statements if q.startswith("BEGIN")]
    assert len(begins) == 1 and sum(q == "COMMIT" for q in statements) == 1
    assert store.count_commits(db) == 2 and len(store.list_pairs(db)) == 1

    def disk_full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "learn_pair", disk_full)
    type_keys(s, "women")
    target = texts(s)[2]
    with pytest.raises(sqlite3.OperationalError):
        pipe.ranker.learn(target, [c for c in s.all_candidates if c.text == target][:1], "women")
    assert store.count_commits(db) == 2 and store.get_phrase(db, target, "wo men") is None
    assert target not in pipe.ranker.phrases.get(("wo", "men"), {})
