"""Draw the app icon with Qt, offscreen: ``python packaging/make_icon.py`` writes ``pinyin-ime.png`` (256 px,
Linux .desktop and hicolor theme), ``pinyin-ime.ico`` (Windows) and ``pinyin-ime.icns`` (macOS) beside
itself. The outputs are committed; rerun only to change the design. Needs a CJK font for 拼 (e.g.
fonts-wqy-microhei); without one it draws "py".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def draw(size: int):
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QLinearGradient, QPainter, QPen

    img = QImage(size, size, QImage.Format_ARGB32)
    img.fill(Qt.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.Antialiasing)
    p.setRenderHint(QPainter.TextAntialiasing)
    m = size * 0.06
    rect = QRectF(m, m, size - 2 * m, size - 2 * m)
    grad = QLinearGradient(rect.topLeft(), rect.bottomRight())
    grad.setColorAt(0, QColor("#d7263d"))
    grad.setColorAt(1, QColor("#9e1b2f"))
    p.setPen(Qt.NoPen)
    p.setBrush(grad)
    p.drawRoundedRect(rect, size * 0.2, size * 0.2)
    cjk = [f for f in QFontDatabase.families(QFontDatabase.SimplifiedChinese)]
    text = "拼" if cjk else "py"
    font = QFont(cjk[0] if cjk else "Sans", 10, QFont.Bold)
    font.setPixelSize(int(size * (0.58 if cjk else 0.46)))
    p.setFont(font)
    p.setPen(QPen(QColor("white")))
    p.drawText(rect.adjusted(0, -size * 0.04, 0, -size * 0.04), Qt.AlignCenter, text)
    # a caret under the glyph: "input"
    p.setPen(QPen(QColor(255, 255, 255, 200), max(1.0, size * 0.035), Qt.SolidLine, Qt.RoundCap))
    y = rect.bottom() - size * 0.14
    p.drawLine(int(rect.left() + size * 0.3), int(y), int(rect.right() - size * 0.3), int(y))
    p.end()
    return img


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (fonts need an app)
    big = draw(256)
    for name, fmt in (("pinyin-ime.png", "PNG"), ("pinyin-ime.ico", "ICO"), ("pinyin-ime.icns", "ICNS")):
        out = HERE / name
        if not big.save(str(out), fmt):
            print(f"could not write {out} (no Qt image plugin for {fmt}?)", file=sys.stderr)
            return 1
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
