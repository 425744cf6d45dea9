"""Frozen entry point of both commands, for PyInstaller (see ``build.spec``): one executable, two names.

    pinyin-ime-app …   the desktop app (ime_app.main)
    pinyin-ime …       the command line (ime_app.cli: convert, pretrain, corpus, …)

The name it was started as decides (on Linux ``pinyin-ime-app`` is a symlink to ``pinyin-ime`` in the
bundle, so the libraries and Python modules are there once; on Windows and macOS they are two executables
built from this script). ``multiprocessing.freeze_support()`` comes first: a worker process started with
the spawn method (Windows, macOS; the corpus pipeline, training) re-runs this executable, and
freeze_support turns it into that worker instead of a second app.
"""

import multiprocessing
import os
import sys


def command_name(argv0: str) -> str:
    name = os.path.basename(argv0).lower()
    return name[:-4] if name.endswith(".exe") else name


if __name__ == "__main__":
    multiprocessing.freeze_support()
    if command_name(sys.argv[0]).startswith("pinyin-ime-app"):
        from ime_app.main import main
    else:
        from ime_app.cli import main
    sys.exit(main())
