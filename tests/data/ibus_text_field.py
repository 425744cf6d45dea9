"""A plain Qt text field for the IBus end-to-end test: a QLineEdit in a window titled ``ibus-text-field``,
using whatever input method Qt's ``QT_IM_MODULE`` names. Every change of its text is written (atomically) to
the file given as the first argument, so the test reads what arrived in the field."""

import os
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication, QLineEdit

out = Path(sys.argv[1])
app = QApplication(sys.argv[:1])
field = QLineEdit()
field.setWindowTitle("ibus-text-field")
field.resize(900, 60)


def save(text: str) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)


field.textChanged.connect(save)
save("")
field.show()
field.activateWindow()
field.setFocus()
sys.exit(app.exec())
