"""The running app's pipeline with the user's active model: ``pipe = build_user_pipeline(db, home)`` at
start; after a personalization run, or after ``versions.revert_to_previous``/``use_factory``/``use_version``,
``reload_active(pipe, db, home)`` hot-swaps the model in the running pipeline (``Pipeline.swap_model``)."""

from __future__ import annotations

from pathlib import Path

from engine.personal.versions import fall_back_to_factory, resolve_active


def build_user_pipeline(db, home: str | Path, **kw):
    """``engine.ime.pipeline.build_pipeline`` with the user's active model and store; when that model loads
    but fails to run, it is put aside and the factory model is used (the status says so)."""
    from engine.ime.pipeline import build_pipeline

    active = resolve_active(db, home)
    pipe = build_pipeline(active.path, db=db, **kw)
    if active.kind == "personal" and pipe.model_dir is None:  # it could not be loaded
        active = fall_back_to_factory(db, home, active, pipe.status)
        pipe = build_pipeline(active.path, db=db, **kw)
    if active.note:
        pipe.status = f"{pipe.status}; {active.note}"
    return pipe


def reload_active(pipe, db, home: str | Path) -> str:
    """Hot-swap the store's active model into a running pipeline (after a personalization run, a revert or a
    switch to the factory model); returns the new status. A personal model that fails to load is put aside
    and the factory model is swapped in instead."""
    active = resolve_active(db, home)
    try:
        status = pipe.swap_model(active.path)
    except (OSError, ValueError) as e:
        if active.kind != "personal":
            raise
        active = fall_back_to_factory(db, home, active, str(e))
        status = pipe.swap_model(active.path)
    if active.note:
        pipe.status = status = f"{status}; {active.note}"
    return status
