"""SQLite user store: committed text, learned phrases, model versions, settings.

Design, in the spirit of sqlite-utils: plain functions that take a ``Database`` first and return plain
dicts/lists; no ORM. Use it as ``from engine import store; store.record_commit(db, ...)``: this package
re-exports every public function and constant of its modules.

* One file, ``<home>/user.db`` (home: explicit arg > ``$PINYIN_IME_HOME`` > platformdirs), private to the
  user (dir 0700, file 0600 on POSIX).
* WAL + ``synchronous=FULL``: once a write function returns, its data survives a crash or SIGKILL. Every
  write runs in one ``BEGIN IMMEDIATE`` transaction (``database.write``), so a failure mid-write leaves the
  db as it was before.
* Schema versioning: ``meta.schema_version`` and ``MIGRATIONS`` (index i migrates version i -> i+1, run in
  one transaction with the version bump).
* All input is validated up front; bad input raises ``StoreError`` (a ``ValueError``) with a message saying
  what to do.

Modules (each imports only the ones listed before it, never this package):

    database    ``Database``, ``StoreError``, ``transaction``/``write`` (the write transaction), ``query_all``
    migrations  the schema: ``MIGRATIONS``, ``SCHEMA_VERSION``, ``schema_version``, ``migrate``
    opening     the data dir (``home_dir``, ``cache_dir``, ``store_path``), ``open_store`` (a damaged file is
                moved aside), ``open_memory_store``
    validate    the input checks (``check_str``, ``check_pinyin``, ``check_phrase``, ...) and their limits
    settings    the ``settings`` table and the recording-paused switch
    commits     the ``commits`` table
    phrases     the ``phrases`` table (learned phrases)
    pairs       the ``pairs`` table (word picked after word)
    models      the ``models`` table (model versions, one active)
    jobs        the ``jobs`` table (background training jobs)
    export      export and import of the user's data
"""

from engine.store.commits import (
    commits_after,
    count_commits,
    delete_all_commits,
    delete_commit,
    latest_text_by_keys,
    list_commits,
    newest_commits,
    record_commit,
)
from engine.store.database import Database, StoreError, integrity_ok, transaction
from engine.store.export import EXPORT_FORMAT, EXPORT_VERSION, export_data, import_data
from engine.store.jobs import JOB_KINDS, JOB_STATES, add_job, delete_job, get_job, list_jobs, update_job
from engine.store.migrations import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from engine.store.models import (
    MODEL_KINDS,
    active_model,
    add_model,
    delete_model_record,
    list_models,
    set_active_model,
)
from engine.store.opening import (
    APP_NAME,
    ENV_HOME,
    cache_dir,
    home_dir,
    open_memory_store,
    open_store,
    store_path,
)
from engine.store.pairs import delete_all_pairs, learn_pair, list_pairs
from engine.store.phrases import (
    delete_all_phrases,
    delete_phrase,
    get_phrase,
    learn_phrase,
    list_phrases,
    phrases_for_pinyin,
    update_phrase,
)
from engine.store.settings import (
    PAUSED_KEY,
    get_setting,
    is_recording_paused,
    set_recording_paused,
    set_setting,
)
from engine.store.validate import MAX_AUX, MAX_COUNT, MAX_PHRASE, MAX_TEXT

__all__ = [
    "APP_NAME", "ENV_HOME", "EXPORT_FORMAT", "EXPORT_VERSION", "JOB_KINDS", "JOB_STATES", "MAX_AUX", "MAX_COUNT",
    "MAX_PHRASE", "MAX_TEXT", "MIGRATIONS", "MODEL_KINDS", "PAUSED_KEY", "SCHEMA_VERSION",
    "Database", "StoreError",
    "active_model", "add_job", "add_model", "cache_dir", "commits_after", "count_commits", "delete_all_commits",
    "delete_all_pairs", "delete_all_phrases", "delete_commit", "delete_job", "delete_model_record",
    "delete_phrase", "export_data", "get_job", "get_phrase", "get_setting", "home_dir", "import_data",
    "integrity_ok", "is_recording_paused", "latest_text_by_keys", "learn_pair", "learn_phrase", "list_commits",
    "list_jobs", "list_models", "list_pairs", "list_phrases", "migrate", "newest_commits", "open_memory_store",
    "open_store", "phrases_for_pinyin", "record_commit", "schema_version", "set_active_model",
    "set_recording_paused", "set_setting", "store_path", "transaction", "update_job", "update_phrase",
]
