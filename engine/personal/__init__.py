"""The user's personal models and data: on disk, in the store, and in the running app (no torch).

A personal model is a folder ``<home>/models/<version>/`` (``v1``, ``v2`` …) holding ``model.safetensors``,
``config.json``, ``onnx/`` (the graphs the typing path runs, so no torch is needed to use it) and ``meta.json``
(base model, metrics before/after, time, device, lines used). Its life:

1. **staged**: a personalization run writes it into a private staging folder under ``<home>/models/``
   (``files.new_staging_dir``), every file fsynced;
2. **installed**: ``versions.install`` renames it into place in one step and registers it in the store's
   ``models`` table;
3. **active**: in the same transaction it becomes the active model; ``versions.revert_to_previous``,
   ``versions.use_version`` and ``versions.use_factory`` switch between versions, and ``loading.reload_active``
   hot-swaps the active one into the running pipeline;
4. **pruned**: ``versions.prune`` deletes versions beyond the newest ``versions.KEEP`` (never the active one)
   and what interrupted runs left behind (staging folders of dead processes, folders no record names).

A crash or kill at any moment leaves either the old state or the new one. The factory model
(``assets/model``) is always there to fall back to: when the active record points at a folder that is missing
or damaged, ``versions.resolve_active`` moves that folder aside to ``<home>/models/broken/`` (never deletes
it), switches to the factory model and says so in ``note``.

The modules:

* ``files``: the models folder on disk: ``models_dir``, staging folders, fsync, ``meta.json``,
  ``check_model_dir`` (is a folder a model the typing path can load);
* ``versions``: the registry and the active model's lifecycle: ``next_version``, ``install``,
  ``resolve_active``/``recorded_active``, ``list_versions``, ``use_factory``, ``use_version``,
  ``revert_to_previous``, ``prune``, ``fall_back_to_factory``, ``ActiveModel``;
* ``run_lock``: one personalization run at a time per home;
* ``runs``: what the last personalization run saw (``new_text_since_last_run``, ``mark_run``);
* ``loading``: the app's pipeline with the user's active model (``build_user_pipeline``, ``reload_active``);
* ``privacy``: delete all my data (the store, personal models, jobs, caches) in one call.
"""
