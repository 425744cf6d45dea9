"""The system input method on Linux: our session, pipeline, model and instant learning behind IBus.

  ``keys``     IBus key events → the session's key names (no IBus import: tested anywhere)
  ``backend``  one input field's composition over the shared pipeline and the user store (no IBus import)
  ``engine``   the ``IBus.Engine`` that draws the backend's state as preedit and lookup table (needs gi)
  ``install``  the component file that tells ibus-daemon how to start us, per user or system-wide

The engine process is started by ibus-daemon (``pinyin-ime ibus run --ibus``); it opens the same store as the
app, so commits typed into any program land in the app's history, and the app's Personalize installs a model
the running engine picks up at the next focus change.
"""
