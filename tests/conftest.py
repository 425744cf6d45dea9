"""Qt runs headless in the tests (real widgets, offscreen platform)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
